"""The loss of reference write-up W3: Bernoulli reconstruction (BCE summed over pixels) + closed-form KL, per sample.

Both terms come from ``vae.losses``; REFERENCES.md lists the write-up.
"""

from vae.losses import elbo_loss, elbo_terms, gaussian_kl

__all__ = ["elbo_loss", "elbo_terms", "gaussian_kl"]
