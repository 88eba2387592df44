"""Conditional VAE vs VAE (chapter 05): MLP models, the per-sample ELBO loss, training and sampling."""

from cvae.losses import elbo_loss
from cvae.models import CVAE, VAE, build_model

__all__ = ["CVAE", "VAE", "build_model", "elbo_loss"]
