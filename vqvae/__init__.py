"""Chapter 06: a VQ-VAE and two priors over its code maps (a gated PixelCNN and a DCGAN done right)."""

from vqvae.prior_runs import CodeGANRun, PixelCNNRun
from vqvae.train import VQVAERun, config_for

__all__ = ["CodeGANRun", "PixelCNNRun", "VQVAERun", "config_for"]
