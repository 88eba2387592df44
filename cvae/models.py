"""The reference write-up's MLP VAE and CVAE (W3): 500 hidden units, one-hot label on the encoder input and on z.

Both live in ``vae.mlp`` (the VAE is :class:`~vae.mlp.MLPVAE`; the CVAE only differs in what it concatenates).
"""

from __future__ import annotations

from vae.mlp import CVAE, MLP_MODELS
from vae.mlp import MLPVAE as VAE

MODELS = MLP_MODELS


def build_model(kind: str, latent: int, hidden: int = 500, image_shape: tuple[int, int, int] = (1, 28, 28),
                num_classes: int = 10) -> VAE:
    if kind not in MODELS:
        raise ValueError(f"unknown model {kind!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[kind](latent=latent, hidden=hidden, image_shape=image_shape, num_classes=num_classes)


__all__ = ["CVAE", "MODELS", "VAE", "build_model"]
