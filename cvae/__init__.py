"""Conditional VAE vs VAE (chapter 05): the MLP models of ``vae.mlp``, the chapter's set-up, sampling."""

from cvae.losses import elbo_loss
from cvae.models import CVAE, VAE, build_model
from cvae.train import chapter_datasets, config_for
from vae.mlp import MLPVAEConfig, MLPVAERun

__all__ = ["CVAE", "VAE", "MLPVAEConfig", "MLPVAERun", "build_model", "chapter_datasets", "config_for", "elbo_loss"]
