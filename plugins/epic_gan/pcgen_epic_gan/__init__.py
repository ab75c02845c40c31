"""EPiC-GAN for pcgen: a generator and a critic built from the core's EPiC layers."""
