"""Chapters 02-04: autoencoders, VAEs and beta-VAEs (``vae.train``), MLP VAEs (``vae.mlp``), latent analysis."""

from vae.mlp import MLPVAEConfig, MLPVAERun
from vae.train import VAEConfig, VAERun, config_for

__all__ = ["MLPVAEConfig", "MLPVAERun", "VAEConfig", "VAERun", "config_for"]
