"""Example third-party pcgen plugin: independent particles from a learned Gaussian mixture."""
