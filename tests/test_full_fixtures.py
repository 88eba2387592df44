"""The ``full`` profile's eight data sets, written small in their real formats, load through ``utils.data``."""

from __future__ import annotations

import os
from unittest import mock

import pytest
import torch
from full_fixtures import (
    CIFAR_CLASSES,
    DEFAULT_PER_CLASS,
    DIGIT_SETS,
    FULL_SETS,
    cifar_pictures,
    digit_rows,
    fixture_counts,
    write_data_root,
)
from image_fixtures import CUB_GOOD, FOOD_CLASSES, keep_offline

from utils.data import DIGIT_CLASSES, cache_path, dataset_info, load_dataset

SHAPES = {
    "mnist": (1, 28, 28), "fashion_mnist": (1, 28, 28), "kmnist": (1, 28, 28), "cifar10": (3, 32, 32),
    "cub": (3, 32, 32), "food101": (3, 64, 64), "coco": (3, 64, 64), "oasis": (1, 256, 256),
}


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    keep_offline(monkeypatch, tmp_path)


def _classes(name: str) -> tuple[str, ...]:
    import torchvision.datasets

    return {
        "mnist": DIGIT_CLASSES,
        "fashion_mnist": tuple(torchvision.datasets.FashionMNIST.classes),
        "kmnist": tuple(torchvision.datasets.KMNIST.classes),
        "cifar10": CIFAR_CLASSES,
        "cub": tuple(sorted(CUB_GOOD)),
        "food101": FOOD_CLASSES,
        "coco": (),
        "oasis": (),
    }[name]


def test_every_full_set_loads_from_the_written_root_without_downloading(tmp_path):
    per_class = DEFAULT_PER_CLASS  # what a manual run writes: 600 / 200 digits, 97 OASIS train slices ...
    root = write_data_root(tmp_path / "data", per_class=per_class)
    counts = fixture_counts(per_class)
    assert set(counts) == set(FULL_SETS) and {p.name for p in root.iterdir()} >= set(FULL_SETS)
    assert not any(cache_path(name, root).exists() for name in FULL_SETS if name != "cifar10")
    for name in FULL_SETS:
        assert set(counts[name]) == set(dataset_info(name).splits), name
        for split, count in counts[name].items():
            images = load_dataset(name, split, root=root, download=False)
            assert (images.name, images.split, len(images)) == (name, split, count), (name, split)
            assert images.image_shape == SHAPES[name] and images.images.dtype == torch.uint8, (name, split)
            assert images.classes == _classes(name), (name, split)
            if images.classes:
                assert images.labels.dtype == torch.int64 and images.labels.max() < len(images.classes)
                assert (images.class_counts() > 0).all(), (name, split)
            else:
                assert images.labels is None, (name, split)
            if name in DIGIT_SETS:  # the mnist5k digits written, balanced
                digits, labels = digit_rows(name, split, per_class)
                assert torch.equal(images.images, digits) and torch.equal(images.labels, labels)
                assert images.class_counts().tolist() == [count // 10] * 10
            if name == "cifar10":
                pictures, labels = cifar_pictures(split, per_class)
                assert torch.equal(images.images, torch.from_numpy(pictures).permute(0, 3, 1, 2))
                assert images.labels.tolist() == labels
    # the three sets hold different digits; the root can be written again over itself
    assert not torch.equal(digit_rows("mnist", "train", per_class)[0], digit_rows("kmnist", "train", per_class)[0])
    write_data_root(root, per_class=3)
    assert len(load_dataset("coco", "validation", root=root, download=False)) == fixture_counts(3)["coco"]["validation"]


def test_cifar10_files_are_what_torchvision_reads_but_for_its_md5_check(tmp_path):
    """torchvision checks the MD5 of CIFAR-10's files even offline: only the real files pass, so the fixture
    leaves the course's cache; with the check lifted, torchvision reads the pickles as it reads the real ones."""
    import torchvision.datasets

    root = write_data_root(tmp_path / "data", per_class=5)
    folder = root / "cifar10"
    with pytest.raises(RuntimeError, match="not found or corrupted"):
        torchvision.datasets.CIFAR10(str(folder), train=True, download=False)
    with mock.patch("torchvision.datasets.cifar.check_integrity", lambda path, md5=None: os.path.isfile(path)):
        theirs = torchvision.datasets.CIFAR10(str(folder), train=False, download=False)
    ours = load_dataset("cifar10", "test", root=root, download=False)
    assert tuple(theirs.classes) == CIFAR_CLASSES and theirs.data.shape == (len(ours), 32, 32, 3)
    assert torch.equal(torch.from_numpy(theirs.data).permute(0, 3, 1, 2), ours.images)
    assert theirs.targets == ours.labels.tolist()


def test_a_folder_it_did_not_write_is_left_alone(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        write_data_root(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]
