"""OASIS brain MRI slices from a user-given zip or folder (chapter 06's ``full`` set)."""

from __future__ import annotations

import re
from pathlib import Path

from utils.data import ImageSet, register, unavailable
from utils.imagefiles import list_image_files, read_images
from utils.sources.common import (
    env_path,
    extract,
    first_existing,
    report_skipped,
)

OASIS_ENV_VAR = "COURSE_OASIS"
OASIS_SIZE = 256
OASIS_SPLITS = ("train", "test", "validate")
_OASIS_SPLIT_WORDS = {
    "train": "train",
    "training": "train",
    "test": "test",
    "testing": "test",
    "validate": "validate",
    "validation": "validate",
    "valid": "validate",
    "val": "validate",
}
_OASIS_IGNORED_WORDS = {"seg", "segmentation", "mask", "masks", "label", "labels"}


@register(
    "oasis",
    "OASIS brain MRI slices (PNG) from a zip or folder you supply, 256x256 grayscale, unlabelled; "
    "segmentation masks are ignored",
    OASIS_SPLITS,
    by_hand="put the OASIS PNG-slice zip (e.g. Kaggle's keras_png_slices_data with keras_png_slices_train/, "
    "_test/, _validate/) at <data root>/oasis.zip, or its folders under <data root>/oasis/, "
    f"or set {OASIS_ENV_VAR} to the zip or folder.",
)
def _build_oasis(folder: Path, download: bool) -> dict[str, ImageSet]:
    base = _oasis_folder(folder)
    files = _oasis_split_files(base)
    splits = {}
    for split in OASIS_SPLITS:
        if not files[split]:
            raise unavailable("oasis", f"no PNG slices for the {split!r} split under {base}")
        images, _, skipped = read_images(files[split], OASIS_SIZE, mode="L", description=f"oasis {split}")
        report_skipped("oasis", skipped)
        if not len(images):
            raise unavailable("oasis", f"none of the {split} slices under {base} could be read")
        splits[split] = ImageSet("oasis", split, images, None, ())
    return splits


def _oasis_folder(folder: Path) -> Path:
    given = env_path(OASIS_ENV_VAR)
    if given is not None and given.is_dir():
        return given
    if given is not None and not given.is_file():
        raise unavailable("oasis", f"{OASIS_ENV_VAR}={given} is neither a folder nor a zip file")
    if folder.is_dir() and any(_oasis_split_files(folder).values()):
        return folder
    zips = sorted(folder.glob("*.zip")) if folder.is_dir() else []
    archive = given or first_existing([folder.parent / "oasis.zip", *zips])
    if archive is None:
        raise unavailable("oasis", f"no PNG slices under {folder} and no {folder.parent / 'oasis.zip'}")
    extract("oasis", archive, folder)
    return folder


def _oasis_split_files(base: Path) -> dict[str, list[Path]]:
    """PNG files by split, the split named by the deepest folder that names one; masks left out."""
    files: dict[str, list[Path]] = {split: [] for split in OASIS_SPLITS}
    for path in list_image_files(base, {".png"}):
        split = None
        for part in path.relative_to(base).parts[:-1]:
            words = [w for w in re.split(r"[^a-z]+", part.lower()) if w]
            if _OASIS_IGNORED_WORDS.intersection(words):
                split = None
                break
            split = _OASIS_SPLIT_WORDS.get(words[-1], split) if words else split
        if split is not None:
            files[split].append(path)
    return files
