"""Chapter 05's set-up of the MLP VAE and CVAE (reference write-up W3), and the helpers its notebook uses.

The models and their one training loop are ``vae.mlp`` (:class:`~vae.mlp.MLPVAERun`, labels optional); this
module says what each profile trains (:func:`config_for`), loads a trained model back, and encodes,
reconstructs and samples a whole split.  Data are flat floats in ``[0, 1]`` (the Bernoulli targets) with
integer labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from utils.config import by_profile, default_dataset
from utils.data import load_dataset
from utils.training import load_checkpoint
from vae.mlp import (
    EVAL_SEED,
    MLP_MODELS,
    MLPVAE,
    MLPVAEConfig,
    chapter_config,
    decode,
    encode,
    flat_pixels,
    sample,
    split_elbo,
)

PUBLISHED_EPOCHS = 200

__all__ = ["config_for", "chapter_datasets", "default_latent", "Split", "load_split", "evaluate", "load_model",
           "decode", "sample", "encode_means", "reconstruct"]


def default_latent(dataset: str) -> int:
    """The reference write-up's latent sizes: 2 for MNIST digits, 10 for FashionMNIST and KMNIST."""
    return 2 if dataset in ("mnist", "mnist5k") else 10


def chapter_datasets(profile: str) -> list[str]:
    """The data sets chapter 05 trains its VAE and CVAE on: the embedded digits offline, W3's three in ``full``."""
    return by_profile(profile, smoke=["mnist5k"], quick=["mnist5k"], full=["mnist", "fashion_mnist", "kmnist"])


def config_for(profile: str, dataset: str | None = None, model: str = "cvae", **overrides: Any) -> MLPVAEConfig:
    """What ``profile`` trains in chapter 05: the reference write-up's MLP (500 hidden units, Adam 1e-3, batch 128).

    200 epochs in ``full`` (the published runs, on MNIST by default); 100 on mnist5k in ``quick``, where every
    digit's samples pass 90 %; 2 in ``smoke``.  The latent is 2 for digits, else 10 (:func:`default_latent`);
    ``overrides`` replace any :class:`~vae.mlp.MLPVAEConfig` field.
    """
    dataset = dataset or default_dataset(profile, full="mnist")
    settings = {"model": model, "dataset": dataset, "latent": default_latent(dataset), "hidden": 500,
                "epochs": by_profile(profile, smoke=2, quick=100, full=PUBLISHED_EPOCHS)}
    return chapter_config(settings, overrides)  # COURSE_SCALE shrinks the profile's counts


@dataclass
class Split:
    """One split as model inputs: flat floats in [0, 1] and labels, on one device."""

    x: torch.Tensor
    y: torch.Tensor
    image_shape: tuple[int, int, int]
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.x)


def load_split(dataset: str, split: str, device: torch.device | str = "cpu") -> Split:
    data = load_dataset(dataset, split)
    if data.labels is None:
        raise ValueError(f"data set {dataset!r} has no labels; a conditional VAE needs them")
    return Split(flat_pixels(data.images, device), data.labels.to(device), tuple(data.image_shape), data.classes)


def evaluate(model: MLPVAE, data: Split, batch_size: int = 2000, seed: int = EVAL_SEED) -> dict[str, float]:
    """Mean per-image loss, BCE and KL over a whole split (one fixed-seed ``z`` per image)."""
    return split_elbo(model, data.x, data.y, batch_size, seed)


def load_model(path: str | Path, device: torch.device | str = "cpu") -> MLPVAE:
    """The model of a checkpoint written by :class:`~vae.mlp.MLPVAERun` (``DIR/model.pt``), in eval mode."""
    state = load_checkpoint(path, map_location=device)
    config = state.get("config", {})
    try:
        model = MLP_MODELS[config["model"]](config["latent"], config["hidden"], tuple(config["image_shape"]),
                                            config["num_classes"])
        model.load_state_dict(state["modules"]["model"])
    except (KeyError, RuntimeError) as error:
        raise ValueError(f"{path} is not a cvae checkpoint ({type(error).__name__}: {error})") from None
    return model.to(device).eval()


def encode_means(model: MLPVAE, data: Split) -> torch.Tensor:
    """Posterior means ``mu(x, y)`` of a whole split (CPU tensor ``N x latent``)."""
    return encode(model, data.x, data.y)


@torch.no_grad()
def reconstruct(model: MLPVAE, data: Split, index: torch.Tensor | slice) -> torch.Tensor:
    """uint8 reconstructions decoded from the posterior mean (no sampling noise)."""
    labels = data.y[index]
    return decode(model, encode(model, data.x[index], labels), labels)
