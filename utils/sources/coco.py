"""MS-COCO images from a user-given folder (chapter 03's natural-image VAE)."""

from __future__ import annotations

from pathlib import Path

from utils.data import ImageSet, register, unavailable
from utils.imagefiles import read_image_folder
from utils.sources.common import (
    NATURAL_IMAGE_SIZE,
    env_path,
    report_skipped,
)

COCO_ENV_VAR = "COURSE_COCO_DIR"


@register(
    "coco",
    "MS-COCO 2017 photos from a folder you supply (train2017/, val2017/), center-cropped and resized "
    "to 64x64 RGB, unlabelled",
    ("train", "validation"),
    by_hand="download train2017.zip and val2017.zip from https://cocodataset.org/#download, unzip them into "
    f"<data root>/coco/ (giving coco/train2017/ and coco/val2017/), or set {COCO_ENV_VAR} to the folder "
    "holding train*/ and val*/ folders of images.",
)
def _build_coco(folder: Path, download: bool) -> dict[str, ImageSet]:
    base = env_path(COCO_ENV_VAR) or folder
    if not base.is_dir():
        raise unavailable("coco", f"there is no folder {base}")
    splits = {}
    for split, prefix in (("train", "train"), ("validation", "val")):
        split_dir = _find_subfolder(base, prefix)
        if split_dir is None:
            raise unavailable("coco", f"{base} has no {prefix}*/ folder of images")
        read = read_image_folder(split_dir, NATURAL_IMAGE_SIZE)
        report_skipped("coco", read.skipped)
        if not len(read.images):
            raise unavailable("coco", f"{split_dir} holds no readable images")
        splits[split] = ImageSet("coco", split, read.images, None, ())
    return splits


def _find_subfolder(base: Path, prefix: str, max_depth: int = 2) -> Path | None:
    """The shallowest folder (by name within a depth) whose name starts with ``prefix``: ``x/train2017/``."""
    level = [base]
    for _ in range(max_depth):
        level = sorted(d for parent in level for d in parent.iterdir() if d.is_dir() and d.name[0] != ".")
        match = next((d for d in level if d.name.lower().startswith(prefix)), None)
        if match is not None:
            return match
    return None
