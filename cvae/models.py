"""The reference write-up's MLP VAE and CVAE: 500 hidden units, one-hot label on the encoder input and on z.

The VAE is ``vae.mlp.MLPVAE``; the CVAE only differs in what it concatenates.
"""

from __future__ import annotations

from vae.mlp import MLPVAE as VAE


class CVAE(VAE):
    """The VAE with the one-hot label concatenated to the encoder input (784 + 10) and to z (latent + 10)."""

    conditional = True


MODELS = {"vae": VAE, "cvae": CVAE}


def build_model(kind: str, latent: int, hidden: int = 500, image_size: int = 784, num_classes: int = 10) -> VAE:
    if kind not in MODELS:
        raise ValueError(f"unknown model {kind!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[kind](latent=latent, hidden=hidden, image_size=image_size, num_classes=num_classes)
