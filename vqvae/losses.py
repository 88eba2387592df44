"""VQ-VAE losses (van den Oord et al., 2017) and the prior's losses, on plain tensors.

The VQ-VAE objective for one batch, with ``sg`` the stop-gradient:

    L = ||x - x_hat||^2 / var(x)  +  ||sg[z_e] - e||^2  +  beta ||z_e - sg[e]||^2
        (reconstruction)             (codebook)            (commitment)

and the straight-through estimator ``z_e + sg[e - z_e]``, which is ``e`` in the forward pass
and passes the decoder's gradient to the encoder unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from utils.adversarial import nonsaturating_discriminator_loss, nonsaturating_generator_loss


def straight_through(z_e: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """``z_q`` forward, identity gradient to ``z_e`` backward (``z_q`` receives none)."""
    return z_e + (z_q - z_e).detach()


def codebook_loss(z_e: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """``||sg[z_e] - e||^2`` (mean over elements): moves the chosen code vectors towards the encoder outputs."""
    return F.mse_loss(z_q, z_e.detach())


def commitment_loss(z_e: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """``||z_e - sg[e]||^2`` (mean over elements): keeps the encoder close to the code it picked."""
    return F.mse_loss(z_e, z_q.detach())


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor, data_variance: float = 1.0) -> torch.Tensor:
    """Mean squared error divided by the training set's pixel variance (the write-up's and the paper's scaling)."""
    return F.mse_loss(x_hat, x) / data_variance


def vqvae_loss(x_hat: torch.Tensor, x: torch.Tensor, codebook: torch.Tensor, commitment: torch.Tensor,
               beta: float = 0.25, data_variance: float = 1.0) -> dict[str, torch.Tensor]:
    """The total loss and its three terms (``codebook`` and ``commitment`` as returned by the quantiser)."""
    reconstruction = reconstruction_loss(x_hat, x, data_variance)
    loss = reconstruction + codebook + beta * commitment
    return {"loss": loss, "reconstruction": reconstruction, "codebook": codebook, "commitment": commitment}


def perplexity(counts: torch.Tensor) -> torch.Tensor:
    """``exp(entropy)`` of code usage counts: K when all K codes are used equally, 1 when one code takes all."""
    p = counts.double() / counts.sum().clamp_min(1)
    entropy = -(p * torch.log(p.clamp_min(1e-30))).sum()
    return entropy.exp().to(torch.float32)


# --------------------------------------------------------------------------- priors


def code_cross_entropy(logits: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood in nats per position of code maps (``logits``: B x K x H x W)."""
    return F.cross_entropy(logits, indices)


discriminator_loss = nonsaturating_discriminator_loss  # DCGAN's, with D = sigmoid(logit)
generator_loss = nonsaturating_generator_loss
