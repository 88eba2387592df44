"""Food-101 (chapter 03's natural-image VAE), through its ``meta/*.json`` listings."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from utils.data import ImageSet, register, unavailable
from utils.downloads import download_file
from utils.imagefiles import read_images
from utils.sources.common import (
    NATURAL_IMAGE_SIZE,
    downloaded,
    extract,
    first_existing,
    first_line,
    report_skipped,
)

FOOD101_ARCHIVE = "food-101.tar.gz"
FOOD101_URL = "http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz"  # the file and MD5 of torchvision's Food101
FOOD101_MD5 = "85eeb15f3717b99a5da872d97d918f87"


@register(
    "food101",
    "Food-101: 101,000 food photos in 101 classes (750 train + 250 test each), "
    "center-cropped and resized to 64x64 RGB",
    ("train", "test"),
    by_hand=f"download {FOOD101_URL} and put {FOOD101_ARCHIVE}, or its extracted food-101/ folder, "
    "into the data root (datasets/ or $COURSE_DATA), or into its food101/ subfolder.",
)
def _build_food101(folder: Path, download: bool) -> dict[str, ImageSet]:
    base = _food101_folder(folder, download)
    listings = {split: _read_food101_listing(base, split) for split in ("train", "test")}
    classes = tuple(sorted(set(listings["train"]) | set(listings["test"])))
    return {split: _read_food101_split(base, split, listing, classes) for split, listing in listings.items()}


def _food101_folder(folder: Path, download: bool) -> Path:
    """The layout torchvision's ``Food101`` reads: ``food-101/meta/<split>.json``, ``food-101/images/``."""
    places = [folder, folder.parent]
    found = [p / "food-101" for p in places if (p / "food-101" / "meta" / "train.json").is_file()]
    if found:
        return found[0]
    archive = first_existing([p / FOOD101_ARCHIVE for p in places])
    if archive is None:
        if not download:
            raise unavailable("food101", f"no food-101/ or {FOOD101_ARCHIVE} in {folder}; downloading is off")
        dest = folder / FOOD101_ARCHIVE
        archive = downloaded("food101", lambda: download_file(FOOD101_URL, dest, md5=FOOD101_MD5))
    extract("food101", archive, folder)
    if not (folder / "food-101" / "meta" / "train.json").is_file():
        raise unavailable("food101", f"{archive} holds no food-101/meta/train.json")
    return folder / "food-101"


def _read_food101_listing(base: Path, split: str) -> dict[str, list[str]]:
    """``{class: ["class/image_id", ...]}`` from ``meta/<split>.json``."""
    path = base / "meta" / f"{split}.json"
    try:
        listing = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise unavailable("food101", f"cannot read {path} ({first_line(error)})") from None
    if not isinstance(listing, dict):
        raise unavailable("food101", f"{path} is not a class -> images mapping")
    return listing


def _read_food101_split(
    base: Path, split: str, listing: dict[str, list[str]], classes: tuple[str, ...]
) -> ImageSet:
    files, labels = [], []
    for label, name in enumerate(classes):
        stems = listing.get(name, [])
        files += [base / "images" / f"{stem}.jpg" for stem in stems]
        labels += [label] * len(stems)
    images, kept, skipped = read_images(files, NATURAL_IMAGE_SIZE, description=f"food101 {split}")
    report_skipped("food101", skipped)
    if not kept:
        raise unavailable("food101", f"none of the {len(files)} {split} images in {base} could be read")
    return ImageSet("food101", split, images, torch.tensor(labels, dtype=torch.int64)[kept], classes)
