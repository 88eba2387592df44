"""One small data root holding every data set of the ``full`` profile, each in its real on-disk format.

``write_data_root(root)`` writes, under ``root`` (what ``$COURSE_DATA`` or ``load_dataset(..., root=)`` names):

* ``mnist/MNIST/raw/``, ``fashion_mnist/FashionMNIST/raw/``, ``kmnist/KMNIST/raw/``: torchvision's four
  uncompressed idx files (``train-images-idx3-ubyte`` ...), holding real digits of the embedded ``mnist5k``
  set (disjoint digits for the three sets while there are enough), ten balanced classes;
* ``cifar10/cifar-10-batches-py/``: ``data_batch_1`` .. ``_5``, ``test_batch`` and ``batches.meta`` pickled
  as CIFAR-10's own files are.  torchvision's ``CIFAR10`` checks the MD5 of every one of them even with
  ``download=False``, so no made-up file passes; the course's own loader is therefore run once on them with
  that check lifted, which writes the course's cache ``cache/cifar10.pt`` that every later load reads;
* ``cub/CUB_200_2011/`` (images/, images.txt, train_test_split.txt), ``food101/food-101/`` (meta/*.json,
  images/), ``coco/train2017/`` + ``coco/val2017/``, ``oasis/keras_png_slices_data/`` (Kaggle's PNG slices
  with their segmentation folders), written by ``tests/image_fixtures.py``.

``per_class`` scales every set (:func:`fixture_counts` gives what each split holds).  A root that already
exists must be empty or one written here (it holds ``FIXTURE_MARKER``): its sets and caches are rewritten.

``python -m tests.full_fixtures DIR [--per-class N]`` writes a root for a manual run
(``COURSE_DATA=DIR COURSE_PROFILE=full ...``) and prints what it holds.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import struct
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also as ``python -m tests.full_fixtures``
from image_fixtures import (  # noqa: E402
    CUB_GOOD,
    CUB_TEST,
    FOOD_CLASSES,
    cub_extra_test_names,
    make_coco_tree,
    make_cub_tree,
    make_food101_tree,
    make_oasis_tree,
    random_rgb,
)

from utils.data import cache_path, load_all_splits, load_dataset

FIXTURE_MARKER = "full_fixtures.json"
DEFAULT_PER_CLASS = 60
FULL_SETS = ("mnist", "fashion_mnist", "kmnist", "cifar10", "cub", "food101", "coco", "oasis")
DIGIT_SETS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "kmnist": "KMNIST"}  # name -> torchvision class
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR_BATCHES = 5
MNIST5K_PER_CLASS = {"train": 400, "test": 100}


def fixture_counts(per_class: int = DEFAULT_PER_CLASS) -> dict[str, dict[str, int]]:
    """Images in each split of each set that :func:`write_data_root` writes (what ``load_dataset`` returns).

    Ten-class sets: ``per_class`` train and ``per_class // 3`` test images per class; CUB: 3 classes of
    ``per_class // 3`` more images (every second one a test image, CUB's test split being a subset of train);
    Food-101: 3 classes; COCO and OASIS: unlabelled (OASIS train has one extra 128 px RGB slice).
    """
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1, got {per_class}")
    test = max(1, per_class // 3)
    cub_extra = _cub_extra(per_class)
    cub_train = sum(len(files) for files in CUB_GOOD.values()) + len(CUB_GOOD) * cub_extra
    food_train, food_test = _food_per_class(per_class)
    coco = _coco_counts(per_class)
    oasis = _oasis_slices(per_class)
    return {
        **{name: {"train": 10 * per_class, "test": 10 * test} for name in DIGIT_SETS},
        "cifar10": {"train": 10 * per_class, "test": 10 * test},
        "cub": {"train": cub_train, "test": len(CUB_TEST) + len(cub_extra_test_names(cub_extra))},
        "food101": {"train": len(FOOD_CLASSES) * food_train, "test": len(FOOD_CLASSES) * food_test},
        "coco": {"train": coco[0], "validation": coco[1]},
        "oasis": {**oasis, "train": oasis["train"] + 1},
    }


def _cub_extra(per_class: int) -> int:
    return max(1, per_class // 3)


def _food_per_class(per_class: int) -> tuple[int, int]:
    return (per_class + 8) // 3, max(1, per_class // 12)  # 60: 3 x 22 = 66 train (a batch of 64), 3 x 5 test


def _coco_counts(per_class: int) -> tuple[int, int]:
    return per_class + 10, max(1, per_class // 6)


def _oasis_slices(per_class: int) -> dict[str, int]:
    return {"train": max(1, per_class * 8 // 5), "test": max(1, per_class // 3), "validate": max(1, per_class // 6)}


# --------------------------------------------------------------------------- MNIST-like sets


def digit_rows(name: str, split: str, per_class: int = DEFAULT_PER_CLASS) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``mnist5k`` digits (images ``N x 1 x 28 x 28`` uint8, labels) written as ``name``'s ``split``.

    Classes take turns (0, 1, ..., 9, 0, 1, ...); each of the three sets takes its own run of every class's
    digits (wrapping round when ``per_class`` asks for more than a third of them).
    """
    count = per_class if split == "train" else max(1, per_class // 3)
    offset = list(DIGIT_SETS).index(name) * count
    digits = load_dataset("mnist5k", split)
    available = MNIST5K_PER_CLASS[split]
    by_class = [torch.nonzero(digits.labels == label).flatten() for label in range(10)]
    rows = torch.stack([by_class[label][(offset + torch.arange(count)) % available] for label in range(10)], 1)
    rows = rows.flatten()
    return digits.images[rows].contiguous(), digits.labels[rows].contiguous()


def write_idx_files(raw: Path, split: str, images: torch.Tensor, labels: torch.Tensor) -> None:
    """MNIST's ``<train|t10k>-images-idx3-ubyte`` and ``-labels-idx1-ubyte`` (big-endian headers, no gzip)."""
    prefix = "train" if split == "train" else "t10k"
    raw.mkdir(parents=True, exist_ok=True)
    count, _, height, width = images.shape
    header = struct.pack(">IIII", 2051, count, height, width)  # magic 2051: unsigned bytes, 3 dimensions
    (raw / f"{prefix}-images-idx3-ubyte").write_bytes(header + images[:, 0].numpy().tobytes())
    (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
        struct.pack(">II", 2049, len(labels)) + labels.to(torch.uint8).numpy().tobytes()
    )


def write_digit_set(root: Path, name: str, per_class: int) -> Path:
    raw = root / name / DIGIT_SETS[name] / "raw"
    for split in ("train", "test"):
        write_idx_files(raw, split, *digit_rows(name, split, per_class))
    return raw


# --------------------------------------------------------------------------- CIFAR-10


def cifar_pictures(split: str, per_class: int = DEFAULT_PER_CLASS) -> tuple[np.ndarray, list[int]]:
    """``N x 32 x 32 x 3`` uint8 smooth random pictures and their labels (classes take turns).

    A class shows in the picture: its channels are rolled by ``label % 3`` and classes 5-9 are upside down.
    """
    count = per_class if split == "train" else max(1, per_class // 3)
    labels = [label for _ in range(count) for label in range(10)]
    first_seed = 0 if split == "train" else 1_000_000
    pictures = []
    for index, label in enumerate(labels):
        picture = np.roll(random_rgb(32, 32, seed=first_seed + index), label % 3, axis=-1)
        pictures.append(picture[::-1] if label >= 5 else picture)
    return np.ascontiguousarray(np.stack(pictures)), labels


def _pickle(path: Path, content: dict) -> None:
    with open(path, "wb") as file:
        pickle.dump(content, file, protocol=2)


def write_cifar10(root: Path, per_class: int) -> Path:
    """``cifar-10-batches-py/`` as CIFAR-10's python tarball holds it, then the course's cache built from it."""
    base = root / "cifar10" / "cifar-10-batches-py"
    base.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        pictures, labels = cifar_pictures(split, per_class)
        rows = pictures.transpose(0, 3, 1, 2).reshape(len(pictures), 3 * 32 * 32)  # 1024 R, 1024 G, 1024 B
        files = [f"data_batch_{b + 1}" for b in range(CIFAR_BATCHES)] if split == "train" else ["test_batch"]
        parts = np.array_split(np.arange(len(rows)), len(files))  # as equal as the count allows
        for number, (name, part) in enumerate(zip(files, parts, strict=True), 1):
            label = f"training batch {number} of {CIFAR_BATCHES}" if split == "train" else "testing batch 1 of 1"
            _pickle(base / name, {
                "batch_label": label,
                "labels": [labels[i] for i in part],
                "data": np.ascontiguousarray(rows[part]),
                "filenames": [f"{CIFAR_CLASSES[labels[i]]}_s_{i:06d}.png" for i in part],
            })
    _pickle(base / "batches.meta", {
        "num_cases_per_batch": int(np.ceil(10 * per_class / CIFAR_BATCHES)),
        "label_names": list(CIFAR_CLASSES),
        "num_vis": 3 * 32 * 32,
    })
    with mock.patch("torchvision.datasets.cifar.check_integrity", lambda path, md5=None: os.path.isfile(path)):
        load_all_splits("cifar10", root, download=False)  # torchvision reads the pickles; utils.data caches them
    return base


# --------------------------------------------------------------------------- the root


def write_data_root(root: Path, per_class: int = DEFAULT_PER_CLASS) -> Path:
    """Write all eight ``full``-profile sets under ``root`` (see the module's docstring); return ``root``."""
    root = Path(root)
    counts = fixture_counts(per_class)
    _clear(root)
    root.mkdir(parents=True, exist_ok=True)
    for name in DIGIT_SETS:
        write_digit_set(root, name, per_class)
    write_cifar10(root, per_class)
    make_cub_tree(root / "cub", extra_per_class=_cub_extra(per_class), bad=False)
    make_food101_tree(root / "food101", *_food_per_class(per_class))
    coco_train, coco_validation = _coco_counts(per_class)
    make_coco_tree(root / "coco", train_count=coco_train, validation_count=coco_validation)
    make_oasis_tree(root / "oasis", _oasis_slices(per_class))
    (root / FIXTURE_MARKER).write_text(json.dumps({"per_class": per_class, "counts": counts}, indent=1) + "\n")
    return root


def _clear(root: Path) -> None:
    """Remove what an earlier :func:`write_data_root` left (never anything from a root it did not write)."""
    if not root.exists():
        return
    if any(root.iterdir()) and not (root / FIXTURE_MARKER).is_file():
        raise FileExistsError(f"{root} is not empty and was not written by write_data_root; choose another folder")
    for name in FULL_SETS:
        shutil.rmtree(root / name, ignore_errors=True)
        cache_path(name, root).unlink(missing_ok=True)


def folder_size(path: Path) -> tuple[int, int]:
    """(files, bytes) under ``path``."""
    files = [f for f in path.rglob("*") if f.is_file()]
    return len(files), sum(f.stat().st_size for f in files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.full_fixtures", description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="the data root to write (empty, new, or written here before)")
    parser.add_argument("--per-class", type=int, default=DEFAULT_PER_CLASS, help="scales every set (default 60)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        root = write_data_root(args.root, args.per_class)
    except (FileExistsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {root} in {time.perf_counter() - start:.1f} s:")
    for name, splits in fixture_counts(args.per_class).items():
        files, size = folder_size(root / name)
        held = ", ".join(f"{split} {count}" for split, count in splits.items())
        print(f"  {name:<14} {held:<36} {files:5d} files {size / 1e6:7.2f} MB  {root / name}")
    files, size = folder_size(root)
    print(f"  {'all':<14} {'':<36} {files:5d} files {size / 1e6:7.2f} MB  (caches in {root / 'cache'})")
    print(f"use it: COURSE_DATA={root} (or load_dataset(name, split, root={str(root)!r}, download=False))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
