"""VAE losses, per image: closed-form KL, Bernoulli reconstruction (BCE summed over pixels)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, exp(logvar)) || N(0, I))`` of each row: ``-1/2 sum(1 + logvar - mu^2 - exp(logvar))``."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)


def elbo_terms(logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor):
    """Per-sample ``(bce, kl)``: BCE summed over pixels (targets in [0, 1]) and the KL of each row."""
    bce = F.binary_cross_entropy_with_logits(logits, x.flatten(1), reduction="none").sum(dim=1)
    return bce, gaussian_kl(mu, logvar)


def elbo_loss(logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> dict[str, torch.Tensor]:
    """Negative ELBO per image (batch mean of BCE(sum) + KL), with its two parts.

    The seed sums over the batch and divides by the data-set size when it reports;
    the batch mean is the same number per image, and Adam's step is the same either way.
    """
    bce, kl = elbo_terms(logits, x, mu, logvar)
    return {"loss": (bce + kl).mean(), "bce": bce.mean(), "kl": kl.mean()}
