"""OmniJet-alpha for pcgen: VQ-VAE tokenizer + GPT (Birk, Hallin, Kasieczka, arXiv:2403.05618)."""
