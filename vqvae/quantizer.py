"""The vector quantiser: nearest code vector, straight-through gradient, a codebook that stays in use.

Each D-dimensional vector of the encoder's output map ``z_e`` (B x D x H x W) is replaced by the
nearest of K code vectors ``e_k``.  Two ways to learn the codebook:

* ``ema=True`` (default): the codebook is not a trainable parameter; each code moves to an
  exponential moving average of the encoder outputs assigned to it (the paper's appendix,
  Sonnet's ``VectorQuantizerEMA``), which is faster and steadier than the codebook loss;
* ``ema=False``: the codebook is an ``nn.Parameter`` trained by the codebook loss.

Either way a code that the encoder stops choosing (its moving-average count falls below
``dead_fraction`` of a fair share) is restarted at a random encoder output of the current
batch, and on the first training batch the whole codebook starts from encoder outputs.
So the codebook stays used: :attr:`QuantizerOutput.perplexity` and ``counts`` report how well.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vqvae.losses import codebook_loss, commitment_loss, perplexity, straight_through


@dataclass
class QuantizerOutput:
    z_q: torch.Tensor  # B x D x H x W, straight-through: the code vectors forward, z_e's gradient backward
    indices: torch.Tensor  # B x H x W, int64 in [0, K)
    codebook_loss: torch.Tensor
    commitment_loss: torch.Tensor
    counts: torch.Tensor  # K, how often each code was chosen in this batch
    perplexity: torch.Tensor  # exp(entropy) of this batch's code usage


class VectorQuantizer(nn.Module):
    def __init__(self, num_codes: int, code_dim: int, ema: bool = True, decay: float = 0.99,
                 dead_fraction: float = 0.1, epsilon: float = 1e-5):
        super().__init__()
        self.num_codes, self.code_dim, self.ema = num_codes, code_dim, ema
        self.decay, self.dead_fraction, self.epsilon = decay, dead_fraction, epsilon
        self.codebook = nn.Parameter(torch.randn(num_codes, code_dim) / code_dim**0.5, requires_grad=not ema)
        self.register_buffer("cluster_size", torch.zeros(num_codes))  # moving average of counts per batch
        self.register_buffer("code_sum", self.codebook.detach().clone())  # moving average of assigned vectors
        self.register_buffer("initialised", torch.tensor(False))
        self.register_buffer("restarts", torch.tensor(0))  # codes restarted so far

    # ----- look-ups
    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code (squared Euclidean distance) for each row of ``flat`` (N x D)."""
        codebook = self.codebook.detach()
        distances = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ codebook.t() + codebook.pow(2).sum(1))
        return distances.argmin(dim=1)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Code vectors of an index map: B x H x W -> B x D x H x W."""
        return F.embedding(indices, self.codebook).permute(0, 3, 1, 2).contiguous()

    # ----- forward
    def forward(self, z_e: torch.Tensor) -> QuantizerOutput:
        batch, dim, height, width = z_e.shape
        if dim != self.code_dim:
            raise ValueError(f"encoder output has {dim} channels, the codebook {self.code_dim}")
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, dim)
        if self.training and not bool(self.initialised):
            self._initialise(flat.detach().float())
        indices = self.nearest(flat.detach().float())
        counts = torch.bincount(indices, minlength=self.num_codes).to(flat.dtype)
        if self.training:
            self._update(flat.detach().float(), indices, counts.float())
        z_q = self.lookup(indices.view(batch, height, width)).to(z_e.dtype)
        return QuantizerOutput(
            z_q=straight_through(z_e, z_q),
            indices=indices.view(batch, height, width),
            codebook_loss=codebook_loss(z_e, z_q),
            commitment_loss=commitment_loss(z_e, z_q),
            counts=counts.detach(),
            perplexity=perplexity(counts.detach()),
        )

    # ----- keeping the codebook in use
    @torch.no_grad()
    def _initialise(self, flat: torch.Tensor) -> None:
        """Start every code at an encoder output of the first batch (the data's own scale)."""
        chosen = flat[torch.randint(len(flat), (self.num_codes,), device=flat.device)]
        self.codebook.data.copy_(chosen)
        fair = len(flat) / self.num_codes
        self.cluster_size.fill_(fair)
        self.code_sum.copy_(chosen * fair)
        self.initialised.fill_(True)

    @torch.no_grad()
    def _update(self, flat: torch.Tensor, indices: torch.Tensor, counts: torch.Tensor) -> None:
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        if self.ema:
            assigned = torch.zeros_like(self.code_sum).index_add_(0, indices, flat)
            self.code_sum.mul_(self.decay).add_(assigned, alpha=1 - self.decay)
            total = self.cluster_size.sum()
            smoothed = (self.cluster_size + self.epsilon) / (total + self.num_codes * self.epsilon) * total
            self.codebook.data.copy_(self.code_sum / smoothed.unsqueeze(1))
        self._restart_dead_codes(flat)

    @torch.no_grad()
    def _restart_dead_codes(self, flat: torch.Tensor) -> None:
        """Codes chosen less than ``dead_fraction`` of a fair share (on average) move to random encoder outputs."""
        fair = len(flat) / self.num_codes
        dead = torch.nonzero(self.cluster_size < self.dead_fraction * fair).flatten()
        if not len(dead):
            return
        chosen = flat[torch.randint(len(flat), (len(dead),), device=flat.device)]
        self.codebook.data[dead] = chosen
        self.cluster_size[dead] = fair
        self.code_sum[dead] = chosen * fair
        self.restarts += len(dead)

    def extra_repr(self) -> str:
        return f"num_codes={self.num_codes}, code_dim={self.code_dim}, ema={self.ema}, decay={self.decay}"
