"""MNIST, FashionMNIST, KMNIST and CIFAR-10 through torchvision's own download and files."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import numpy as np
import torch

from utils.data import DIGIT_CLASSES, ImageSet, register, unavailable
from utils.sources.common import (
    first_line,
)

_TORCHVISION_SETS = {
    "mnist": ("MNIST", "70,000 handwritten digits, 28x28 gray", DIGIT_CLASSES),
    "fashion_mnist": ("FashionMNIST", "70,000 Zalando clothing images, 28x28 gray", None),
    "kmnist": ("KMNIST", "70,000 Kuzushiji (cursive Japanese) characters, 28x28 gray", None),
    "cifar10": ("CIFAR10", "60,000 natural images in 10 classes, 32x32 RGB", None),
}


def _torchvision_builder(name: str, class_name: str):
    def build(folder: Path, download: bool) -> dict[str, ImageSet]:
        import torchvision.datasets

        cls = getattr(torchvision.datasets, class_name)
        splits = {}
        for split in ("train", "test"):
            try:
                ds = cls(str(folder), train=split == "train", download=download)
            except (urllib.error.URLError, OSError, RuntimeError) as error:
                verb = "download" if download else "find"
                raise unavailable(name, f"torchvision could not {verb} it ({first_line(error)})") from None
            images = torch.as_tensor(np.asarray(ds.data))
            images = images.unsqueeze(1) if images.dim() == 3 else images.permute(0, 3, 1, 2)
            labels = torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)
            splits[split] = ImageSet(name, split, images.contiguous(), labels, tuple(ds.classes))
        return splits

    return build


for _name, (_class_name, _description, _classes) in _TORCHVISION_SETS.items():
    register(
        _name,
        _description,
        ("train", "test"),
        by_hand=f"download it on a machine with internet (python datasets/download.py {_name}) "
        f"and copy the folder datasets/{_name}/ here.",
        classes=_classes,  # MNIST's labels are the digits "0" .. "9", as in mnist5k (torchvision: "0 - zero" ...)
    )(_torchvision_builder(_name, _class_name))
