"""The chapter's models: the published convolutional AE and VAE, the MLP VAE for digits, the 64 px natural-image VAE.

* :class:`Autoencoder` and :class:`ConvVAE`: the CIFAR-10 set-up of reference write-up W1 (REFERENCES.md).  Encoder
  Conv3x3 ``C -> w`` (stride 1), ``w -> 2w -> 4w -> 8w`` (stride 2, ReLU between), flatten, Linear; decoder
  Linear -> ``8w x 4 x 4`` -> [ReLU, ConvT4x4 stride 2] x 3 -> ReLU, Conv3x3 -> ``C``.  ``w = 32`` is the
  seed's (flatten size 4096 at 32 px); the ``quick`` profile narrows it.  Outputs are pixel values in
  ``[-1, 1]`` with no squashing (the write-up's): the loss is the sum of squared errors.  A 28 px digit gives the
  same ``4 x 4`` feature map (``28 -> 14 -> 7 -> 4``); the decoder's 32 px output is centre-cropped to 28.
* :class:`MLPVAE` (``vae.mlp``): 784 -> hidden -> latent, Bernoulli logits out (BCE loss).
* :class:`NaturalImageVAE`: the 64 px VAE of reference write-up W2: four Conv5x5 stride-2 layers with batch norm,
  latent 128, a mirror decoder of transposed convolutions ending in ``tanh``.

Every VAE has ``encode(x) -> (mu, logvar)``, ``decode(z)`` and ``forward(x, generator=None) ->
(output, mu, logvar)``; the AE has ``encode(x) -> z``, ``decode(z)``, ``forward(x) -> output``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from vae.losses import reparameterize
from vae.mlp import MLPVAE

SEED_WIDTH = 32  # channels of the first conv layer in the reference write-up's CIFAR-10 nets
NATURAL_WIDTHS = (32, 64, 128, 256)


class ConvEncoder(nn.Module):
    """The published encoder: 4 Conv3x3 layers (strides 1, 2, 2, 2), flatten, ``Linear -> out_features``."""

    def __init__(self, out_features: int, channels: int = 3, image_size: int = 32, width: int = SEED_WIDTH):
        super().__init__()
        w = width
        self.side = math.ceil(image_size / 8)
        self.flat = 8 * w * self.side * self.side
        self.convs = nn.Sequential(
            nn.Conv2d(channels, w, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(2 * w, 4 * w, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(4 * w, 8 * w, 3, 2, 1),
        )
        self.fc = nn.Linear(self.flat, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.convs(x).flatten(1))


class ConvDecoder(nn.Module):
    """The published decoder: ``Linear -> 8w x s x s``, [ReLU, ConvT4x4 s2] x 3, ReLU, Conv3x3; centre crop to size."""

    def __init__(self, latent: int, channels: int = 3, image_size: int = 32, width: int = SEED_WIDTH):
        super().__init__()
        w = width
        self.side, self.image_size, self.width = math.ceil(image_size / 8), image_size, w
        self.fc = nn.Linear(latent, 8 * w * self.side * self.side)
        self.deconvs = nn.Sequential(
            nn.ReLU(), nn.ConvTranspose2d(8 * w, 4 * w, 4, 2, 1),
            nn.ReLU(), nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1),
            nn.ReLU(), nn.ConvTranspose2d(2 * w, w, 4, 2, 1),
            nn.ReLU(), nn.Conv2d(w, channels, 3, 1, 1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.deconvs(self.fc(z).view(-1, 8 * self.width, self.side, self.side))
        start = (out.shape[-1] - self.image_size) // 2
        return out[..., start : start + self.image_size, start : start + self.image_size]


class Autoencoder(nn.Module):
    """The reference write-up's deterministic AE: ``z = enc(x)``, ``x_hat = dec(z)``, pixels in [-1, 1]."""

    kind = "ae"
    variational = False
    likelihood = "gaussian"  # pixels in [-1, 1]; the loss is the sum of squared errors

    def __init__(self, latent: int = 128, channels: int = 3, image_size: int = 32, width: int = SEED_WIDTH):
        super().__init__()
        self.latent, self.image_shape = latent, (channels, image_size, image_size)
        self.encoder = ConvEncoder(latent, channels, image_size, width)
        self.decoder = ConvDecoder(latent, channels, image_size, width)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class GaussianVAE(nn.Module):
    """A VAE whose encoder ends in ``2 * latent`` numbers, read as ``(mu, logvar)``."""

    variational = True
    likelihood = "gaussian"  # pixels in [-1, 1]; the loss is the sum of squared errors
    encoder: nn.Module
    decoder: nn.Module

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        """``(x_hat, mu, logvar)``; ``x_hat`` decodes one reparameterised sample of ``q(z | x)``."""
        mu, logvar = self.encode(x)
        return self.decode(reparameterize(mu, logvar, generator)), mu, logvar


class ConvVAE(GaussianVAE):
    """The reference write-up's VAE: the AE's networks, with an encoder head of ``2 * latent`` outputs."""

    kind = "vae"

    def __init__(self, latent: int = 1024, channels: int = 3, image_size: int = 32, width: int = SEED_WIDTH):
        super().__init__()
        self.latent, self.image_shape = latent, (channels, image_size, image_size)
        self.encoder = ConvEncoder(2 * latent, channels, image_size, width)
        self.decoder = ConvDecoder(latent, channels, image_size, width)


def _down(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 5, 2, 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


def _up(cin: int, cout: int) -> list[nn.Module]:
    return [nn.ConvTranspose2d(cin, cout, 5, 2, 2, output_padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


class NaturalImageVAE(GaussianVAE):
    """reference write-up W2's 64 px VAE: [Conv5x5 s2, BN, ReLU] x 4 -> Linear -> (mu, logvar); mirror decoder, tanh."""

    kind = "natural-vae"

    def __init__(self, latent: int = 128, channels: int = 3, image_size: int = 64,
                 widths: tuple[int, ...] = NATURAL_WIDTHS):
        super().__init__()
        self.image_shape = (channels, image_size, image_size)
        steps = len(widths)
        if image_size % 2**steps:
            raise ValueError(f"the natural-image VAE needs an image size divisible by {2**steps}, got {image_size}")
        self.latent, self.widths = latent, tuple(widths)
        self.side = image_size // 2**steps
        flat = widths[-1] * self.side * self.side
        downs = zip((channels, *widths[:-1]), widths, strict=True)
        layers = [layer for cin, cout in downs for layer in _down(cin, cout)]
        self.encoder = nn.Sequential(*layers, nn.Flatten(), nn.Linear(flat, 2 * latent))
        back = widths[::-1]
        ups = [layer for cin, cout in zip(back[:-1], back[1:], strict=True) for layer in _up(cin, cout)]
        self.decoder = nn.Sequential(
            nn.Linear(latent, flat, bias=False), nn.Unflatten(1, (widths[-1], self.side, self.side)),
            nn.BatchNorm2d(widths[-1]), nn.ReLU(), *ups,
            nn.ConvTranspose2d(widths[0], channels, 5, 2, 2, output_padding=1), nn.Tanh(),
        )


# --------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class ModelKind:
    """How to build one model of the chapter; what its output means is its class's (``variational``,
    ``likelihood``: ``"gaussian"`` = pixels in ``[-1, 1]``, loss = sum of squared errors; ``"bernoulli"`` =
    logits of pixels in ``[0, 1]``, loss = BCE summed over pixels)."""

    model_class: type[nn.Module]
    build: Callable[..., nn.Module]
    default_latent: int
    batch_size: int
    grad_clip: float | None
    description: str

    @property
    def variational(self) -> bool:
        return self.model_class.variational

    @property
    def likelihood(self) -> str:
        return self.model_class.likelihood

    @property
    def value_range(self) -> tuple[float, float]:
        return (-1.0, 1.0) if self.likelihood == "gaussian" else (0.0, 1.0)


def _mlp_vae(latent: int, channels: int, image_size: int, width: int) -> MLPVAE:
    return MLPVAE(latent=latent, hidden=width, image_shape=(channels, image_size, image_size))


def _natural_vae(latent: int, channels: int, image_size: int, width: int) -> NaturalImageVAE:
    return NaturalImageVAE(latent, channels, image_size, tuple(width * 2**k for k in range(4)))


MODELS: dict[str, ModelKind] = {
    "ae": ModelKind(Autoencoder, Autoencoder, 128, 256, 1.0, "the reference write-up's conv autoencoder (SSE)"),
    "vae": ModelKind(ConvVAE, ConvVAE, 1024, 256, 1.0, "the reference write-up's conv VAE (SSE + beta KL)"),
    "mlp-vae": ModelKind(MLPVAE, _mlp_vae, 20, 128, None, "MLP VAE for digits (BCE + beta KL)"),
    "natural-vae": ModelKind(NaturalImageVAE, _natural_vae, 128, 64, None,
                             "64 px natural-image VAE with batch norm (SSE + beta KL)"),
}
DEFAULT_WIDTH = {"ae": SEED_WIDTH, "vae": SEED_WIDTH, "mlp-vae": 400, "natural-vae": NATURAL_WIDTHS[0]}


def model_kind(name: str) -> ModelKind:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[name]


def build_model(name: str, latent: int, channels: int, image_size: int, width: int | None = None) -> nn.Module:
    """One model of the registry; ``width`` = first conv layer's channels (hidden units for ``mlp-vae``)."""
    return model_kind(name).build(latent, channels, image_size, width or DEFAULT_WIDTH[name])
