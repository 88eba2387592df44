"""The three GAN objectives of the chapter, on discriminator outputs (one score per image).

* vanilla: binary cross-entropy on logits, non-saturating generator loss;
* LSGAN: least squares with targets a = 0 (fake), b = 1 (real), c = 1 (what G wants);
* WGAN-GP: the critic's Wasserstein estimate plus lambda times a gradient penalty
  taken at random points between real and fake images (one eps per sample).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from utils.adversarial import nonsaturating_discriminator_loss, nonsaturating_generator_loss

Scores = torch.Tensor


vanilla_discriminator_loss = nonsaturating_discriminator_loss
vanilla_generator_loss = nonsaturating_generator_loss


def lsgan_discriminator_loss(real_scores: Scores, fake_scores: Scores, a: float = 0.0, b: float = 1.0) -> torch.Tensor:
    """1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2]."""
    return 0.5 * (real_scores - b).pow(2).mean() + 0.5 * (fake_scores - a).pow(2).mean()


def lsgan_generator_loss(fake_scores: Scores, c: float = 1.0) -> torch.Tensor:
    """1/2 E[(D(G(z)) - c)^2]."""
    return 0.5 * (fake_scores - c).pow(2).mean()


def wgan_discriminator_loss(real_scores: Scores, fake_scores: Scores) -> torch.Tensor:
    """-(E[D(x)] - E[D(G(z))]): the critic maximises the Wasserstein estimate (penalty added apart)."""
    return -(real_scores.mean() - fake_scores.mean())


def wgan_generator_loss(fake_scores: Scores) -> torch.Tensor:
    """-E[D(G(z))]."""
    return -fake_scores.mean()


def per_sample_eps(batch_size: int, ndim: int, device: torch.device | str = "cpu",
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """eps ~ U(0, 1), one per sample, shaped ``(B, 1, 1, 1)`` to broadcast over an image."""
    return torch.rand((batch_size,) + (1,) * (ndim - 1), device=device, generator=generator)


def gradient_penalty(critic: Callable[[torch.Tensor], Scores], real: torch.Tensor, fake: torch.Tensor,
                     eps: torch.Tensor | None = None) -> torch.Tensor:
    """E[(||grad D(x_hat)||_2 - 1)^2] at x_hat = eps x + (1 - eps) G(z), one eps per sample.

    ``create_graph`` keeps the gradient differentiable, so the penalty trains the critic.
    """
    if eps is None:
        eps = per_sample_eps(len(real), real.dim(), real.device)
    mixed = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    (grads,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    norms = torch.sqrt(grads.float().flatten(1).pow(2).sum(dim=1) + 1e-12)
    return (norms - 1).pow(2).mean()


@dataclass(frozen=True)
class GanLoss:
    """One variant: the discriminator and generator losses on scores, and the penalty weight."""

    discriminator: Callable[[Scores, Scores], torch.Tensor]
    generator: Callable[[Scores], torch.Tensor]
    penalty_weight: float = 0.0


LOSSES: dict[str, GanLoss] = {
    "vanilla": GanLoss(vanilla_discriminator_loss, vanilla_generator_loss),
    "lsgan": GanLoss(lsgan_discriminator_loss, lsgan_generator_loss),
    "wgan-gp": GanLoss(wgan_discriminator_loss, wgan_generator_loss, penalty_weight=10.0),
}


def get_loss(name: str) -> GanLoss:
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of: {', '.join(LOSSES)}")
    return LOSSES[name]
