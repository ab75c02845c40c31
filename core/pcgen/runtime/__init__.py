"""Torch runtime helpers that data checks, metrics, sampling and training all use, so they sit below
them: safe checkpoints, non-finite checks, numerical precision and compilation, CPU memory."""
