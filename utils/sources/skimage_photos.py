"""``skimage_photos``: crops of scikit-image's sample photographs, an offline natural-image set."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from utils.data import ImageSet, register
from utils.sources.common import (
    NATURAL_IMAGE_SIZE,
)

SKIMAGE_PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "coins", "rocket", "hubble_deep_field",
                  "immunohistochemistry", "retina", "moon", "brick", "gravel")
SKIMAGE_CROPS = {"train": 400, "test": 100}  # per photograph
SKIMAGE_TEST_COLUMNS = 0.3  # the right-most 30 % of every photograph is cut only into test crops
SKIMAGE_LONG_SIDE = 512  # larger photographs are first shrunk to this


@register(
    "skimage_photos",
    f"{sum(SKIMAGE_CROPS.values()) * len(SKIMAGE_PHOTOS):,} random square crops (64 to 192 px, resized to 64x64 RGB) "
    f"of {len(SKIMAGE_PHOTOS)} photographs bundled with scikit-image; labelled by photograph; test crops come "
    "from the right-most 30 % of each photograph, which no training crop touches",
    ("train", "test"),
    by_hand="pip install scikit-image.",
    embedded=True,
)
def _build_skimage_photos(folder: Path, download: bool) -> dict[str, ImageSet]:
    return {split: _skimage_crops(split) for split in ("train", "test")}


@functools.lru_cache(maxsize=2)
def _skimage_crops(split: str) -> ImageSet:
    """Crops at random positions and scales, fixed by the photograph's index and the split."""
    import skimage.data
    from PIL import Image

    images, labels = [], []
    for label, name in enumerate(SKIMAGE_PHOTOS):
        photo = np.asarray(getattr(skimage.data, name)())
        picture = Image.fromarray(photo if photo.ndim == 2 else photo[..., :3]).convert("RGB")
        scale = SKIMAGE_LONG_SIDE / max(picture.size)
        if scale < 1:
            picture = picture.resize((round(picture.width * scale), round(picture.height * scale)), Image.BILINEAR)
        width, height = picture.size
        cut = round(width * (1 - SKIMAGE_TEST_COLUMNS))
        left, right = (0, cut) if split == "train" else (cut, width)
        rng = np.random.default_rng([label, split == "test"])
        largest = min(192, height, right - left)
        for _ in range(SKIMAGE_CROPS[split]):
            side = int(rng.integers(NATURAL_IMAGE_SIZE, largest + 1))
            top, start = int(rng.integers(0, height - side + 1)), int(rng.integers(left, right - side + 1))
            crop = picture.crop((start, top, start + side, top + side))
            images.append(np.asarray(crop.resize((NATURAL_IMAGE_SIZE, NATURAL_IMAGE_SIZE), Image.BILINEAR)))
        labels += [label] * SKIMAGE_CROPS[split]
    images = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return ImageSet("skimage_photos", split, images, torch.tensor(labels), SKIMAGE_PHOTOS)
