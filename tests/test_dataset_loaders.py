"""The registry's image-folder sets (cub, food101, coco, oasis) on small fixtures in their real layouts."""

from __future__ import annotations

import tarfile
import zipfile
from collections import Counter
from pathlib import Path

import pytest
import torch
from cli_checks import load_tool
from image_fixtures import (
    CUB_BAD,
    CUB_GOOD,
    CUB_TEST,
    FOOD_CLASSES,
    OASIS_EXPECTED,
    keep_offline,
    make_coco_tree,
    make_cub_tree,
    make_food101_tree,
    make_oasis_tree,
    save_rgb,
)

import utils.sources.cub
import utils.sources.food101
from utils.data import DatasetUnavailableError, cache_path, load_all_splits, load_dataset

CUB_COUNT = sum(len(names) for names in CUB_GOOD.values())


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    keep_offline(monkeypatch, tmp_path)


def _one_clear_line(error: pytest.ExceptionInfo, *words: str) -> None:
    message = str(error.value)
    assert "\n" not in message and "mnist5k" in message
    for word in words:
        assert word in message
    assert error.value.__cause__ is None  # no chained traceback under the message
    assert error.value.__context__ is None or error.value.__suppress_context__


# --------------------------------------------------------------------------- cub


def test_cub_from_an_extracted_folder_in_the_root(tmp_path, capsys):
    make_cub_tree(tmp_path)
    splits = load_all_splits("cub", root=tmp_path)
    train, test = splits["train"], splits["test"]
    assert tuple(train.images.shape) == (CUB_COUNT, 3, 32, 32) and train.images.dtype == torch.uint8
    assert train.classes == tuple(sorted(CUB_GOOD))
    assert train.class_counts().tolist() == [len(CUB_GOOD[c]) for c in sorted(CUB_GOOD)]
    assert len(test) == len(CUB_TEST) and test.split == "test"
    printed = capsys.readouterr().out
    assert "skipped 2" in printed and all(Path(bad).name in printed for bad in CUB_BAD)
    assert cache_path("cub", tmp_path).is_file()
    assert (tmp_path / "cub" / "images_32" / "002.Laysan_Albatross" / "Laysan_Albatross_cmyk.png").is_file()


def test_cub_second_load_reads_the_cache(tmp_path, monkeypatch):
    make_cub_tree(tmp_path)
    first = load_dataset("cub", root=tmp_path)
    monkeypatch.setattr(utils.sources.cub, "resize_folder", lambda *a, **k: pytest.fail("rebuilt instead of cached"))
    second = load_dataset("cub", root=tmp_path)
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)


def test_cub_from_the_tarball_without_downloading(tmp_path):
    source = make_cub_tree(tmp_path / "elsewhere")
    root = tmp_path / "root"
    root.mkdir()
    with tarfile.open(root / "CUB_200_2011.tgz", "w:gz") as tar:
        tar.add(source, arcname="CUB_200_2011")
    train = load_dataset("cub", root=root)
    assert len(train) == CUB_COUNT and len(train.classes) == len(CUB_GOOD)
    assert (root / "cub" / "CUB_200_2011" / "images").is_dir()


def test_cub_from_the_seeds_flat_resized_folder(tmp_path):
    for i in range(4):
        save_rgb(tmp_path / "CUB_200_2011_32" / f"Bird_{i}.jpg", 32, 32, seed=i)
    splits = load_all_splits("cub", root=tmp_path)
    assert tuple(splits["train"].images.shape) == (4, 3, 32, 32) and splits["train"].labels is None
    assert len(splits["test"]) == 0


def test_cub_offline_is_one_clear_message(tmp_path):
    with pytest.raises(DatasetUnavailableError) as raised:
        load_all_splits("cub", root=tmp_path)
    _one_clear_line(raised, "'cub'", "Google Drive", "CaltechDATA", "offline in tests")
    with pytest.raises(DatasetUnavailableError) as raised:
        load_all_splits("cub", root=tmp_path, download=False)
    _one_clear_line(raised, "downloading is off")


# --------------------------------------------------------------------------- food101


def test_food101_layout_is_read_at_64_pixels(tmp_path):
    make_food101_tree(tmp_path / "food101")
    splits = load_all_splits("food101", root=tmp_path)
    assert set(splits) == {"train", "test"}
    train, test = splits["train"], splits["test"]
    assert tuple(train.images.shape) == (3 * len(FOOD_CLASSES), 3, 64, 64)
    assert tuple(test.images.shape) == (len(FOOD_CLASSES), 3, 64, 64)
    assert train.classes == FOOD_CLASSES and train.class_counts().tolist() == [3, 3, 3]
    waffle = train.images[train.labels == FOOD_CLASSES.index("waffles")][0]
    assert torch.equal(waffle[0], waffle[1]) and torch.equal(waffle[1], waffle[2])  # the gray file, now RGB


def test_food101_fixture_is_what_torchvision_reads(tmp_path):
    torchvision_datasets = pytest.importorskip("torchvision.datasets")
    make_food101_tree(tmp_path / "food101")
    ours = load_dataset("food101", "train", root=tmp_path)
    theirs = torchvision_datasets.Food101(str(tmp_path / "food101"), split="train", download=False)
    assert tuple(theirs.classes) == ours.classes
    assert Counter(theirs[i][1] for i in range(len(theirs))) == Counter(ours.labels.tolist())


def test_food101_in_the_data_root_itself(tmp_path):
    make_food101_tree(tmp_path)
    assert len(load_dataset("food101", "test", root=tmp_path)) == len(FOOD_CLASSES)


def test_food101_offline_is_one_clear_message(tmp_path):
    with pytest.raises(DatasetUnavailableError) as raised:
        load_all_splits("food101", root=tmp_path)
    _one_clear_line(raised, "'food101'", "offline in tests", "food-101")


# --------------------------------------------------------------------------- coco


def test_coco_folder_in_the_root(tmp_path):
    make_coco_tree(tmp_path / "coco")
    splits = load_all_splits("coco", root=tmp_path)
    assert tuple(splits["train"].images.shape) == (3, 3, 64, 64)
    assert tuple(splits["validation"].images.shape) == (2, 3, 64, 64)
    assert splits["train"].labels is None and splits["train"].classes == ()


def test_coco_from_the_environment_variable_in_the_seeds_layout(tmp_path, monkeypatch):
    base = tmp_path / "my_coco"
    make_coco_tree(base, train="coco_train2017/train2017", validation="coco_valid2017/val2017")
    monkeypatch.setenv("COURSE_COCO_DIR", str(base))
    assert len(load_dataset("coco", "validation", root=tmp_path / "root")) == 2


def test_coco_absent_says_where_to_put_it(tmp_path):
    with pytest.raises(DatasetUnavailableError) as raised:
        load_all_splits("coco", root=tmp_path)
    _one_clear_line(raised, "cocodataset.org", "COURSE_COCO_DIR")


# --------------------------------------------------------------------------- oasis


def _check_oasis(splits):
    assert {name: len(s) for name, s in splits.items()} == OASIS_EXPECTED
    for split in splits.values():
        assert tuple(split.image_shape) == (1, 256, 256) and split.labels is None


def test_oasis_folder_ignores_segmentation_masks(tmp_path):
    make_oasis_tree(tmp_path / "oasis")
    _check_oasis(load_all_splits("oasis", root=tmp_path))


def _zip_folder(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(folder.rglob("*")):
            zipped.write(path, path.relative_to(folder).as_posix())
    return archive


def test_oasis_zip_in_the_root_is_extracted(tmp_path):
    make_oasis_tree(tmp_path / "source")
    root = tmp_path / "root"
    root.mkdir()
    _zip_folder(tmp_path / "source", root / "oasis.zip")
    _check_oasis(load_all_splits("oasis", root=root))
    assert (root / "oasis" / "keras_png_slices_data" / "keras_png_slices_train").is_dir()


def test_oasis_zip_from_the_environment_variable(tmp_path, monkeypatch):
    make_oasis_tree(tmp_path / "source")
    monkeypatch.setenv("COURSE_OASIS", str(_zip_folder(tmp_path / "source", tmp_path / "slices.zip")))
    _check_oasis(load_all_splits("oasis", root=tmp_path / "root"))


def test_oasis_seed_layout_of_split_folders(tmp_path):
    for split in ("train", "test", "validate"):
        save_rgb(
            tmp_path / "oasis" / split / f"keras_png_slices_{split}" / "case_001_slice_0.nii.png", 64, 64
        )
    splits = load_all_splits("oasis", root=tmp_path)
    assert [len(s) for s in splits.values()] == [1, 1, 1]


def test_oasis_zip_escaping_its_folder_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "oasis.zip", "w") as zipped:
        zipped.writestr("keras_png_slices_train/a.png", b"x")
        zipped.writestr("../../evil.png", b"x")
    with pytest.raises(DatasetUnavailableError) as raised:
        load_all_splits("oasis", root=tmp_path)
    _one_clear_line(raised, "refusing to extract")
    assert not (tmp_path.parent / "evil.png").exists()


def test_oasis_absent_says_what_to_do(tmp_path):
    with pytest.raises(DatasetUnavailableError) as raised:
        load_all_splits("oasis", root=tmp_path)
    _one_clear_line(raised, "COURSE_OASIS", "oasis.zip")


def test_mnist_in_torchvisions_files_has_digit_names_and_so_does_an_old_cache(tmp_path):
    """torchvision calls MNIST's classes "0 - zero" ...; the course names them "0" .. "9", as mnist5k does."""
    write_mnist_files = load_tool("bench").write_mnist_files  # the benchmark's writer of MNIST's raw files
    digits = load_dataset("mnist5k", "train")
    write_mnist_files(tmp_path / "root" / "mnist", digits.images[:50], digits.labels[:50])
    train = load_dataset("mnist", "train", root=tmp_path / "root", download=False)
    assert train.classes == tuple(str(d) for d in range(10)) and len(train) == 50
    assert torch.equal(train.images, digits.images[:50])
    stale = torch.load(cache_path("mnist", tmp_path / "root"), weights_only=True)
    for split in stale.values():
        split["classes"] = [f"{d} - digit" for d in range(10)]  # as a cache written before the fix held them
    torch.save(stale, cache_path("mnist", tmp_path / "root"))
    assert load_dataset("mnist", "test", root=tmp_path / "root").classes == train.classes
