"""The files a ``python -m <family> train`` or ``sample`` run leaves in its folder.

``metrics.json`` (:func:`finish_run`, :func:`write_json`), ``samples.png``, ``samples.npz``
(:func:`save_samples_npz`: ``images`` uint8 and, for conditional models, ``labels``) and ``recon.npz``
(:func:`save_reconstructions_npz`); all written atomically (``utils.files.atomic_write``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from utils.files import atomic_write
from utils.training import Trainer


def write_json(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """Write JSON atomically, like checkpoints."""

    path = Path(path)
    with atomic_write(path) as temporary:
        temporary.write_text(json.dumps(payload, indent=2, default=str))
    return path


def images_npz_layout(images: torch.Tensor) -> np.ndarray:
    """uint8 ``N x C x H x W`` -> ``N x H x W`` (gray) or ``N x H x W x C`` (colour), the npz layout."""
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ValueError(f"expected uint8 N x C x H x W images, got {images.dtype} {tuple(images.shape)}")
    array = images.detach().cpu().numpy()
    return array[:, 0] if array.shape[1] == 1 else array.transpose(0, 2, 3, 1)


def save_samples_npz(path: str | Path, images: torch.Tensor, labels: torch.Tensor | None = None) -> Path:
    """``samples.npz``: ``images`` (uint8) and, for conditional models, ``labels``."""
    arrays = {"images": images_npz_layout(images)}
    if labels is not None:
        arrays["labels"] = labels.detach().cpu().numpy().astype(np.int64)
    return _save_npz(path, arrays)


def save_reconstructions_npz(path: str | Path, originals: torch.Tensor, reconstructions: torch.Tensor) -> Path:
    """``recon.npz``: ``originals`` and ``reconstructions`` (uint8, same layout, data-set order)."""
    return _save_npz(path, {"originals": images_npz_layout(originals),
                            "reconstructions": images_npz_layout(reconstructions)})


def _save_npz(path: str | Path, arrays: Mapping[str, np.ndarray]) -> Path:
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"output file must end in .npz, got {path.name}")
    with atomic_write(path, suffix=".npz") as temporary:
        np.savez_compressed(temporary, **arrays)
    return path


def finish_run(out_dir: str | Path, trainer: Trainer, images_seen: int, metrics: Mapping[str, Any],
               samples: torch.Tensor | None = None, nrow: int = 10) -> dict[str, Any]:
    """Write ``metrics.json`` (final metrics, speed, config) and ``samples.png`` into the run folder."""
    out_dir = Path(out_dir)
    summary = {
        **dict(metrics),
        "steps": trainer.step,
        "wall_seconds": round(trainer.wall_seconds, 2),
        "images_per_second": round(images_seen / trainer.wall_seconds, 1) if trainer.wall_seconds else None,
        "config": trainer.config,
    }
    write_json(out_dir / "metrics.json", summary)
    if samples is not None:
        from utils.plotting import grid_png  # matplotlib only when a run writes pictures

        (out_dir / "samples.png").write_bytes(grid_png(samples, nrow=nrow, scale=1))
    return summary
