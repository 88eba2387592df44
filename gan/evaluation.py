"""FID for the GAN chapter, as a function of a batch of generated uint8 images.

* ``classifier`` features (offline): classifier-FID against the training images, features in memory.
* ``inception`` features (``full``): clean-fid's Inception FID against custom reference statistics
  that clean-fid's ``make_custom_stats`` builds once from the training images (as the seed did for
  CUB), kept in clean-fid's ``stats/`` folder under ``stats_name``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from utils.data import require_images
from utils.metrics import fid_from_features, image_features

FidScore = Callable[[torch.Tensor], float]


def write_png_folder(images: torch.Tensor, folder: str | Path) -> Path:
    """uint8 ``N x C x H x W`` -> ``folder/000000.png`` ... (lossless, so statistics see the exact pixels)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(images.cpu()):
        array = image.permute(1, 2, 0).numpy()
        Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(folder / f"{index:06d}.png")
    return folder


def ensure_custom_stats(stats_name: str, reference: torch.Tensor, device: torch.device | str) -> None:
    """Make clean-fid's Inception statistics of ``reference`` under ``stats_name`` unless they exist."""
    require_images(reference, 2, "FID reference statistics", "the reference set")
    from cleanfid import fid as cleanfid

    if cleanfid.test_stats_exists(stats_name, mode="clean"):
        return
    with tempfile.TemporaryDirectory() as folder:
        write_png_folder(reference, folder)
        cleanfid.make_custom_stats(stats_name, folder, mode="clean", device=torch.device(device), num_workers=0,
                                   verbose=False)


def custom_stats_fid(stats_name: str, fake: torch.Tensor, device: torch.device | str | None = None) -> float:
    """Inception FID of ``fake`` against the custom statistics ``stats_name`` (clean resize, as clean-fid)."""
    from cleanfid.features import get_reference_statistics
    from cleanfid.fid import frechet_distance

    require_images(fake, 2, "FID", "the generated set")
    mu, sigma = get_reference_statistics(stats_name, "na", mode="clean", split="custom")
    features = image_features(fake, "inception", device)
    return float(frechet_distance(features.mean(axis=0), np.cov(features, rowvar=False), mu, sigma))


def fid_scorer(reference: torch.Tensor, features: str, device: torch.device | str | None = None,
               stats_name: str | None = None) -> FidScore:
    """``score(fake) -> FID`` against ``reference`` (uint8 training images) with ``features``.

    Inception with a ``stats_name`` goes through clean-fid's custom statistics; otherwise the
    reference features are computed once and kept in memory.  Fewer than 2 reference images raise a
    ``ValueError`` at once; so does scoring fewer than 2 generated images.
    """
    require_images(reference, 2, "FID", "the reference set")
    if features == "inception" and stats_name:
        ensure_custom_stats(stats_name, reference, device or "cpu")
        return lambda fake: custom_stats_fid(stats_name, fake, device)
    real_features = image_features(reference, features, device)
    return lambda fake: fid_from_features(real_features, image_features(fake, features, device))


def custom_stats_name(dataset: str, image_size: int) -> str:
    """clean-fid statistics of a training set, by data set and resolution (``course_cub_32px_train``)."""
    return f"course_{dataset}_{image_size}px_train".lower()


def training_set_scorer(run, features: str, device: torch.device | str | None = None) -> FidScore:
    """``score(fake) -> FID`` against the training images of a :class:`gan.train.GanRun`."""
    stats_name = custom_stats_name(run.config.dataset, run.config.image_size)
    return fid_scorer(run.real_images, features, device or run.device, stats_name=stats_name)


def markdown_table(rows: dict[str, dict[str, object]], first_column: str) -> str:
    """``{row name: {column: value}}`` -> a Markdown table (columns in first-seen order)."""
    columns = list(dict.fromkeys(column for row in rows.values() for column in row))
    lines = [f"| {first_column} | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(str(row.get(c, "")) for c in columns) + " |" for name, row in rows.items()]
    return "\n".join(lines)
