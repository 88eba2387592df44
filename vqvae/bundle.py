"""``model.pt`` of ``python -m vqvae train``: the VQ-VAE and both priors in one file, and sampling from it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from utils.config import from_stored
from utils.training import load_checkpoint, save_checkpoint
from vqvae.models import VQVAE
from vqvae.prior_runs import CodeGANRun, PixelCNNRun, sample_code_gan, sample_pixelcnn
from vqvae.priors import CodeGenerator, GatedPixelCNN
from vqvae.train import VQVAEConfig, VQVAERun, build_vqvae, decode

BUNDLE_FORMAT = 1


def save_bundle(path: str | Path, vq: VQVAERun, pixelcnn: PixelCNNRun, gan: CodeGANRun) -> Path:
    """``model.pt`` of ``python -m vqvae train``: the VQ-VAE and both priors, with their configurations."""
    return save_checkpoint(path, {
        "format": BUNDLE_FORMAT,
        "kind": "vqvae",
        "vqvae": {"state": vq.model.state_dict(), "config": vq.trainer.config},
        "pixelcnn": {"state": pixelcnn.prior.state_dict(), "config": pixelcnn.trainer.config},
        "dcgan": {"state": gan.generator.state_dict(), "config": gan.trainer.config},
    })


@dataclass
class Bundle:
    vqvae: VQVAE
    pixelcnn: GatedPixelCNN
    generator: CodeGenerator
    config: dict[str, Any]  # the VQ-VAE's run configuration
    map_shape: tuple[int, int]


def load_bundle(path: str | Path, device: torch.device | str = "cpu") -> Bundle:
    """The three models of a ``model.pt`` written by :func:`save_bundle`, in eval mode."""
    state = load_checkpoint(path, map_location=device)
    if not isinstance(state, dict) or state.get("kind") != "vqvae":
        raise ValueError(f"{path} is not a vqvae checkpoint (python -m vqvae train writes DIR/model.pt)")
    vq_config = state["vqvae"]["config"]
    model = build_vqvae(from_stored(VQVAEConfig, vq_config), vq_config["image_shape"][0])
    model.load_state_dict(state["vqvae"]["state"])
    p_config = state["pixelcnn"]["config"]
    pixelcnn = GatedPixelCNN(p_config["num_codes"], p_config["channels"], p_config["layers"],
                             num_classes=p_config.get("num_classes"))
    pixelcnn.load_state_dict(state["pixelcnn"]["state"])
    g_config = state["dcgan"]["config"]
    generator = CodeGenerator(g_config["num_codes"], g_config["map_shape"][-1], g_config["z_dim"], g_config["width"])
    generator.load_state_dict(state["dcgan"]["state"])
    return Bundle(model.to(device).eval(), pixelcnn.to(device).eval(), generator.to(device).eval(), vq_config,
                  tuple(p_config["map_shape"]))


def sample_prior(bundle: Bundle, prior: str, n: int, seed: int = 0, label: int | None = None) -> torch.Tensor:
    """uint8 images decoded from ``n`` code maps of ``prior`` (``pixelcnn`` or ``dcgan``).

    ``label``: draw every map of a class-conditional PixelCNN given this class (default: all classes in turn).
    """
    if label is not None and (prior != "pixelcnn" or bundle.pixelcnn.num_classes is None):
        raise ValueError(f"--label needs a class-conditional PixelCNN prior; this {prior} prior takes no label")
    if prior == "pixelcnn":
        maps = sample_pixelcnn(bundle.pixelcnn, n, bundle.map_shape, seed, labels=label)
    elif prior == "dcgan":
        maps = sample_code_gan(bundle.generator, n, seed)
    else:
        raise ValueError(f"unknown prior {prior!r}; choose pixelcnn or dcgan")
    return decode(bundle.vqvae, maps)


PRIORS = ("pixelcnn", "dcgan")
