"""VAE losses, per image: the reparameterisation trick, closed-form KL, Bernoulli (BCE) and Gaussian (SSE)
reconstruction, beta schedules."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """The reparameterisation trick (Kingma & Welling 2014): ``z = mu + sigma * eps``, ``eps ~ N(0, I)``.

    ``mu`` and ``logvar`` (``B x latent``, ``log sigma^2``) come from the encoder; ``z`` has their shape and
    dtype and is differentiable in both.  ``eps`` comes from ``generator`` when given (repeatable evaluation).
    """
    noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + noise * torch.exp(0.5 * logvar)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, exp(logvar)) || N(0, I))`` of each row: ``-1/2 sum(1 + logvar - mu^2 - exp(logvar))``."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)


class _BCEWithLogitsCPU(torch.autograd.Function):
    """``max(l, 0) - l t + log(1 + exp(-|l|))`` with the gradient ``sigmoid(l) - t`` written out.

    PyTorch's own ``binary_cross_entropy_with_logits`` goes through ``log_sigmoid``, whose CPU kernel is
    not vectorised: on this course's CPU it took a fifth of the MLP VAE's training step. ``log(1 + e)``
    instead of ``log1p(e)`` (``e = exp(-|l|)`` in (0, 1]) differs from it by under 6e-8 per pixel.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(logits, target)
        return logits.clamp(min=0) - logits * target + torch.log(1 + torch.exp(-logits.abs()))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        logits, target = ctx.saved_tensors
        return grad * (torch.sigmoid(logits) - target), None  # targets are data: no gradient


def bernoulli_nll(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-pixel ``BCE(sigmoid(logits), target)`` from logits, as ``F.binary_cross_entropy_with_logits`` gives it.

    On the CPU a vectorised version (:class:`_BCEWithLogitsCPU`, about 4x faster there); elsewhere PyTorch's.
    """
    if logits.device.type == "cpu":
        return _BCEWithLogitsCPU.apply(logits, target)
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none")


def elbo_terms(logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor):
    """Per-sample ``(bce, kl)``: BCE summed over pixels (targets in [0, 1]) and the KL of each row."""
    return bernoulli_nll(logits, x.flatten(1)).sum(dim=1), gaussian_kl(mu, logvar)


def elbo_loss(logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> dict[str, torch.Tensor]:
    """Negative ELBO per image (batch mean of BCE(sum) + KL), with its two parts.

    The reference write-up sums over the batch and divides by the data-set size when it reports;
    the batch mean is the same number per image, and Adam's step is the same either way.
    """
    bce, kl = elbo_terms(logits, x, mu, logvar)
    return {"loss": (bce + kl).mean(), "bce": bce.mean(), "kl": kl.mean()}


# --------------------------------------------------------------------------- the conv AE and VAE (Gaussian decoder)


def sse_per_image(output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Sum of squared errors over all pixels of each image: the published reconstruction loss (before the mean)."""
    return (output.flatten(1) - x.flatten(1)).pow(2).sum(dim=1)


def autoencoder_loss(output: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The reference write-up's AE loss: SSE summed over pixels, divided by the batch size."""
    recon = sse_per_image(output, x).mean()
    return {"loss": recon, "recon": recon}


def beta_vae_loss(recon: torch.Tensor, kl: torch.Tensor, beta: float = 1.0) -> dict[str, torch.Tensor]:
    """Batch means of per-image reconstruction and KL terms, combined as ``recon + beta * KL``."""
    recon, kl = recon.mean(), kl.mean()
    return {"loss": recon + beta * kl, "recon": recon, "kl": kl}


# --------------------------------------------------------------------------- beta schedules

BETA_SCHEDULES = ("constant", "linear", "cyclical")


def beta_at(schedule: str, target: float, epoch: int, epochs: int, cycles: int = 4, ramp: float = 0.5) -> float:
    """The KL weight of epoch ``epoch`` (0-based) in a run of ``epochs`` epochs.

    * ``constant``: ``target`` throughout.
    * ``linear``: ``target * epoch / (epochs - 1)``: 0 at the first epoch and exactly ``target`` at the last.
      (The reference write-up's ``epoch / 20`` with epochs 0..19 stops at 0.95 and never reaches its target.)
    * ``cyclical`` (Fu et al., 2019): training time ``t = epoch / (epochs - 1)`` is cut into ``cycles`` equal
      cycles; in each, beta rises linearly from 0 over the first ``ramp`` of the cycle and then stays at
      ``target``.  The first epoch trains at 0 and the last at ``target``.
    """
    if schedule not in BETA_SCHEDULES:
        raise ValueError(f"unknown beta schedule {schedule!r}; choose one of: {', '.join(BETA_SCHEDULES)}")
    if not 0 <= epoch < epochs:
        raise ValueError(f"epoch {epoch} is outside a run of {epochs} epochs")
    if schedule == "constant" or epochs == 1:
        return float(target)
    progress = epoch / (epochs - 1)
    if schedule == "linear":
        return target * progress
    phase = 1.0 if epoch == epochs - 1 else (progress * cycles) % 1.0
    return target * min(1.0, phase / ramp)
