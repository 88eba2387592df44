"""The non-saturating GAN losses, shared by the GAN chapter (``gan``) and the VQ-VAE's DCGAN prior (``vqvae``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nonsaturating_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-E[log D(x)] - E[log(1 - D(G(z)))] with D = sigmoid(logit)."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def nonsaturating_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating: -E[log D(G(z))], strong gradients while D still wins."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
