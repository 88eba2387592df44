"""MLP VAEs for 28 px digits: ``x -> hidden -> (mu, logvar)``, ``z -> hidden -> logits``.

Chapters 03 (VAE), 04 (latent space, 400 hidden units) and 05 (500 hidden units, and the conditional
VAE of ``cvae``, which only differs in concatenating the one-hot label) share this class.  The
decoder returns logits (``sigmoid(logits)`` is the Bernoulli mean): the loss then
is BCE computed from the logits (``vae.losses.bernoulli_nll``), the same number as
sigmoid + BCE without its ``log(0)`` clamp.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from utils.data import chunks, require_images
from utils.devices import autocast
from vae.losses import elbo_loss, elbo_terms, reparameterize


class MLPVAE(nn.Module):
    """``x -> hidden (ReLU) -> (mu, logvar)``; ``z -> hidden (ReLU) -> logits``."""

    conditional = False

    def __init__(self, latent: int = 2, hidden: int = 500, image_size: int = 784, num_classes: int = 10):
        super().__init__()
        self.latent, self.hidden, self.image_size, self.num_classes = latent, hidden, image_size, num_classes
        extra = num_classes if self.conditional else 0
        self.encoder = nn.Sequential(nn.Linear(image_size + extra, hidden), nn.ReLU())
        self.to_mu = nn.Linear(hidden, latent)
        self.to_logvar = nn.Linear(hidden, latent)
        self.decoder = nn.Sequential(nn.Linear(latent + extra, hidden), nn.ReLU(), nn.Linear(hidden, image_size))

    def with_label(self, inputs: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """The CVAE appends the one-hot label; the VAE ignores it."""
        if not self.conditional:
            return inputs
        if labels is None:
            raise ValueError("a conditional VAE needs labels")
        return torch.cat([inputs, F.one_hot(labels, self.num_classes).to(inputs.dtype)], dim=1)

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(self.with_label(x.flatten(1), labels))
        return self.to_mu(hidden), self.to_logvar(hidden)

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of the Bernoulli pixel means, flat (``B x image_size``)."""
        return self.decoder(self.with_label(z, labels))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, generator: torch.Generator | None = None):
        """``(logits, mu, logvar)`` for a batch; ``z`` is one reparameterised sample."""
        mu, logvar = self.encode(x, labels)
        return self.decode(reparameterize(mu, logvar, generator), labels), mu, logvar


def training_loss(model: MLPVAE, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """The batch mean of the negative ELBO, one reparameterised ``z`` per image: what the MLP VAEs minimise.

    With ``COURSE_AMP=1`` the forward pass runs under bfloat16 autocast on the CPU (about twice the
    steps per second on processors with bfloat16 units: ``COURSE_AMP=1 python -m utils.bench mlp_vae --amp``)
    and the loss in float32; never on CUDA, where an H200 trained the MLP VAE slower under AMP.
    """
    with autocast(x.device, enabled=x.device.type == "cpu"):
        logits, mu, logvar = model(x, labels)
    return elbo_loss(logits.float(), x, mu.float(), logvar.float())["loss"]


@torch.no_grad()
def split_elbo(model: MLPVAE, x: torch.Tensor, labels: torch.Tensor | None = None, batch_size: int = 2000,
               seed: int = 1234) -> dict[str, float]:
    """Mean per-image negative ELBO, BCE and KL over flat inputs ``x`` in [0, 1] (labels for a CVAE).

    One ``z`` per image from a generator seeded with ``seed``, so the number is repeatable.  No images
    raise a ``ValueError``.
    """
    require_images(x, 1, "the ELBO of a split", "the split")
    was_training = model.training
    model.eval()
    generator = torch.Generator(device=x.device).manual_seed(seed)
    totals = torch.zeros(2, dtype=torch.float64, device=x.device)
    for part in chunks(len(x), batch_size):
        logits, mu, logvar = model(x[part], None if labels is None else labels[part], generator=generator)
        bce, kl = elbo_terms(logits, x[part], mu, logvar)
        totals += torch.stack([bce.sum(), kl.sum()]).double()
    model.train(was_training)
    bce, kl = (totals / len(x)).tolist()
    return {"loss": bce + kl, "bce": bce, "kl": kl}

