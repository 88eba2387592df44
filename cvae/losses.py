"""The seed's loss: Bernoulli reconstruction (BCE summed over pixels) + closed-form KL, per sample (from ``vae``)."""

from vae.losses import elbo_loss, elbo_terms, gaussian_kl

__all__ = ["elbo_loss", "elbo_terms", "gaussian_kl"]
