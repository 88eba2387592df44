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

from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from utils.config import data_root
from utils.files import atomic_write
from utils.progress import tqdm

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

    def _render_traceback_(self) -> list[str]:
        """How IPython shows it when a notebook cell stops on it: the one message, no traceback."""
        return [f"{type(self).__name__}: {self}"]


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
    classes: tuple[str, ...] | None = None  # the course's label names over the source's (MNIST "0", not "0 - zero")


REGISTRY: dict[str, DatasetInfo] = {}


def register(name: str, description: str, splits: tuple[str, ...], by_hand: str, embedded: bool = False,
             classes: tuple[str, ...] | None = None):
    """Decorator: ``build(folder, download) -> {split: ImageSet}`` becomes the data set ``name``.

    ``classes`` (when given) name the labels of every split, whatever the source calls them.
    """

    def decorator(build: Callable[[Path, bool], dict[str, ImageSet]]):
        REGISTRY[name] = DatasetInfo(name, description, splits, build, by_hand, embedded, classes)
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
        f"Data set {name!r} is not available: {reason}. By hand: {info.by_hand} (data root: {data_root()}) "
        f"Without it, train on the embedded digits instead: the quick profile (PROFILE = \"quick\" in a "
        f"notebook, --profile quick on the command line) or dataset '{EMBEDDED}'.",
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
        return _named(info, info.build(root / name, download))
    cached = cache_path(name, root)
    if cached.exists():
        return _named(info, _read_cache(cached, name))
    splits = info.build(root / name, download)
    _write_cache(cached, splits)
    return _named(info, splits)


def _named(info: DatasetInfo, splits: dict[str, ImageSet]) -> dict[str, ImageSet]:
    """The registry's class names on every split (a cache written before they were declared included)."""
    if info.classes is None:
        return splits
    return {split: replace(s, classes=info.classes) for split, s in splits.items()}


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


# every data set registers itself here (after the registry above exists)
from utils import sources  # noqa: E402, F401
