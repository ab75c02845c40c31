"""Training: recipes (adversarial, ...), the loop, checkpoints and TensorBoard logging."""
