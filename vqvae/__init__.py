"""VQ-VAE with learned priors over codebook indices (chapter 06)."""
