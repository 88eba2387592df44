"""Reading folders of user or downloaded image files into uint8 tensors.

Real folders hold surprises: grayscale, palette, CMYK or 16-bit files among RGB ones,
truncated downloads, and text files with a ``.jpg`` name.  Every file is decoded in
full (``img.load()``; PIL's ``LOAD_TRUNCATED_IMAGES`` stays False), converted to one
mode, center-cropped to a square and resized.  A file that cannot be read is not an
error: it is skipped and reported with its reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from utils.files import atomic_write
from utils.progress import tqdm

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm"})
MODES = ("RGB", "L")
JPEG_QUALITY = 95  # the PIL default of 75 leaves visible blocks on 32 px images
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_WIDE_GRAY_MODES = frozenset({"I", "F", "I;16", "I;16L", "I;16B", "I;16N"})
_HIDDEN_FOLDERS = frozenset({"__MACOSX"})  # resource forks that macOS puts in zips


class UnreadableImageError(Exception):
    """A file that is not a readable image; the message is the one-line reason."""


@dataclass(frozen=True)
class SkippedFile:
    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class FolderImages:
    """The readable images of a folder, in sorted file order."""

    images: torch.Tensor  # uint8, N x C x H x W
    labels: torch.Tensor | None  # int64 index into ``classes`` (None when not labelled)
    classes: tuple[str, ...]
    files: list[Path]  # one per image, relative to the folder
    skipped: list[SkippedFile]


# --------------------------------------------------------------------------- one file


def load_image(path: Path | str, size: int | None = None, mode: str = "RGB", crop: bool = True) -> np.ndarray:
    """Decode one file in full into a uint8 ``H x W x C`` array (C = 3 for RGB, 1 for L).

    With ``size``, the image is center-cropped to a square (or, with ``crop=False``,
    stretched) and resized to ``size x size``.  Raises :class:`UnreadableImageError`.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    try:
        with Image.open(path) as opened:
            if size:
                opened.draft(mode, (2 * size, 2 * size))  # JPEG: decode at a reduced scale, much faster
            opened.load()
            image = convert_mode(ImageOps.exif_transpose(opened), mode)
    except Image.DecompressionBombError as error:
        raise UnreadableImageError(f"too large to decode safely ({error})") from None
    except FileNotFoundError:
        raise UnreadableImageError("file not found") from None
    except Image.UnidentifiedImageError:
        raise UnreadableImageError("not an image file (PIL cannot identify it)") from None
    except Exception as error:  # malformed files make PIL raise many kinds of errors
        raise UnreadableImageError(f"truncated or corrupt ({_one_line(error)})") from None
    if size:
        image = fit_square(image, size, crop)
    array = np.array(image, dtype=np.uint8)  # writable, for torch.from_numpy
    return array[:, :, None] if array.ndim == 2 else array


def convert_mode(image: Image.Image, mode: str) -> Image.Image:
    """Any PIL mode -> ``RGB`` or ``L``; transparency is flattened onto white."""
    if image.mode == mode:
        return image
    if image.mode in _WIDE_GRAY_MODES:
        image = _to_8bit_gray(image)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in _ALPHA_MODES:
        image = _flatten_alpha(image)
    return image.convert(mode)


def _to_8bit_gray(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer or float gray -> 8-bit, keeping the file's full range."""
    values = np.asarray(image, dtype=np.float64)
    low, high = (values.min(), values.max()) if values.size else (0.0, 0.0)
    if image.mode.startswith("I;16") or (low >= 0 and 255 < high <= 65535):
        values = values / 257.0
    elif image.mode == "F" and low >= 0 and high <= 1:
        values = values * 255.0
    elif low < 0 or high > 255:
        values = _stretch(values)
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))  # 2-D uint8: mode L


def _stretch(values: np.ndarray) -> np.ndarray:
    low, high = values.min(), values.max()
    return (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)


def _flatten_alpha(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def fit_square(image: Image.Image, size: int, crop: bool = True) -> Image.Image:
    """Center-crop to a square (``crop=False``: stretch), resize to ``size x size`` (antialiased bicubic)."""
    if crop:
        image = center_crop_square(image)
    if image.size == (size, size):
        return image
    return image.resize((size, size), Image.Resampling.BICUBIC)


def center_crop_square(image: Image.Image) -> Image.Image:
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    if side == width == height:
        return image
    return image.crop((left, top, left + side, top + side))


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


# --------------------------------------------------------------------------- many files


def list_image_files(folder: Path | str, suffixes: frozenset[str] | set[str] = IMAGE_SUFFIXES) -> list[Path]:
    """Image files under ``folder``, recursive, sorted by relative path; hidden files are left out."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist")
    found = []
    for directory, subfolders, names in os.walk(folder):
        subfolders[:] = [d for d in subfolders if not d.startswith(".") and d not in _HIDDEN_FOLDERS]
        images = [n for n in names if not n.startswith(".") and Path(n).suffix.lower() in suffixes]
        found += [Path(directory, n) for n in images]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def read_images(
    paths: Sequence[Path],
    size: int,
    mode: str = "RGB",
    crop: bool = True,
    progress: bool = True,
    workers: int | None = None,
    description: str = "reading images",
) -> tuple[torch.Tensor, list[int], list[SkippedFile]]:
    """Read ``paths`` into a uint8 ``N x C x size x size`` tensor.

    Returns the images of the readable files, their positions in ``paths`` and the skipped files.
    """
    channels = 3 if mode == "RGB" else 1
    images = torch.empty((len(paths), channels, size, size), dtype=torch.uint8)
    kept, skipped = [], []

    def read(path: Path) -> np.ndarray | SkippedFile:
        try:
            return load_image(path, size, mode, crop)
        except UnreadableImageError as error:
            return SkippedFile(Path(path), str(error))

    for index, result in enumerate(_map_with_progress(read, paths, progress, workers, description)):
        if isinstance(result, SkippedFile):
            skipped.append(result)
        else:
            images[len(kept)] = torch.from_numpy(result).permute(2, 0, 1)
            kept.append(index)
    return images[: len(kept)].clone() if skipped else images, kept, skipped


def read_image_folder(
    folder: Path | str,
    size: int,
    mode: str = "RGB",
    labelled: bool = False,
    crop: bool = True,
    files: Sequence[Path] | None = None,
    progress: bool = True,
    workers: int | None = None,
) -> FolderImages:
    """Read every image under ``folder`` (or only ``files``, paths under ``folder``).

    With ``labelled``, the first-level subfolder names are the classes (sorted) and a
    file directly in ``folder`` is skipped.
    """
    folder = Path(folder)
    paths = list_image_files(folder) if files is None else [Path(p) for p in files]
    relative = [p.relative_to(folder) for p in paths]
    skipped: list[SkippedFile] = []
    classes: tuple[str, ...] = ()
    if labelled:
        classes = tuple(sorted({r.parts[0] for r in relative if len(r.parts) > 1}))
        loose = [r for r in relative if len(r.parts) == 1]
        skipped = [SkippedFile(folder / r, "not inside a class folder") for r in loose]
        relative = [r for r in relative if len(r.parts) > 1]
    images, kept, unreadable = read_images(
        [folder / r for r in relative], size, mode, crop, progress, workers, f"reading {folder.name}"
    )
    kept_files = [relative[i] for i in kept]
    labels = None
    if labelled:
        index = {name: i for i, name in enumerate(classes)}
        labels = torch.tensor([index[r.parts[0]] for r in kept_files], dtype=torch.int64)
    return FolderImages(images, labels, classes, kept_files, skipped + unreadable)


def resize_folder(
    input_folder: Path | str,
    output_folder: Path | str,
    res: int,
    mode: str = "RGB",
    crop: bool = True,
    output_format: str = "same",
    progress: bool = True,
    workers: int | None = None,
) -> tuple[list[Path], list[SkippedFile]]:
    """Write every readable image under ``input_folder`` as a ``res x res`` file under ``output_folder``.

    The relative folder structure is kept.  ``output_format``: ``"same"`` (JPEG stays
    JPEG, anything else becomes PNG), ``"png"`` or ``"jpg"``.  Returns the written
    files and the skipped ones with their reasons.  Nothing is ever written outside
    ``output_folder``, and it may not be the input folder or lie inside it.
    """
    source, target = Path(input_folder), Path(output_folder)
    if not source.is_dir():
        raise FileNotFoundError(f"input folder {source} does not exist")
    _check_output_folder(source, target)
    inputs = list_image_files(source)
    outputs, skipped = _output_paths(source, target, inputs, output_format)
    planned = [(i, o) for i, o in zip(inputs, outputs, strict=True) if o is not None]
    _make_output_folders(target, [o for _, o in planned])

    def convert(pair: tuple[Path, Path]) -> Path | SkippedFile:
        path, out = pair
        try:
            _save(load_image(path, res, mode, crop), out)
        except UnreadableImageError as error:
            return SkippedFile(path, str(error))
        return out

    written = []
    for result in _map_with_progress(convert, planned, progress, workers, f"resizing {source.name}"):
        (skipped if isinstance(result, SkippedFile) else written).append(result)
    return written, sorted(skipped, key=lambda s: str(s.path))


def _check_output_folder(source: Path, target: Path) -> None:
    source_real, target_real = source.resolve(), target.resolve()
    if target_real == source_real or target_real.is_relative_to(source_real):
        raise ValueError(f"the output folder {target} must not be the input folder {source} or lie inside it")


def _output_paths(
    source: Path, target: Path, inputs: list[Path], output_format: str
) -> tuple[list[Path | None], list[SkippedFile]]:
    """One output path per input (None for a skipped one: a name clash or a path leaving ``target``)."""
    if output_format not in ("same", "png", "jpg"):
        raise ValueError(f"output_format must be 'same', 'png' or 'jpg', got {output_format!r}")
    target_real = target.resolve()
    input_files = {p.resolve() for p in inputs}
    claimed: dict[Path, Path] = {}
    outputs: list[Path | None] = []
    skipped = []
    for path in inputs:
        out = target / path.relative_to(source).with_suffix(_output_suffix(path, output_format))
        out_real = out.resolve()
        reason = None
        if not out_real.is_relative_to(target_real):
            reason = f"its output path {out} would leave the output folder"
        elif out_real in input_files:
            reason = f"its output path {out} is an input file"
        elif out in claimed:
            reason = f"same output file {out.name} as {claimed[out].name}"
        if reason:
            skipped.append(SkippedFile(path, reason))
            outputs.append(None)
        else:
            claimed[out] = path
            outputs.append(out)
    return outputs, skipped


def _output_suffix(path: Path, output_format: str) -> str:
    if output_format != "same":
        return f".{output_format}"
    suffix = path.suffix.lower()
    return suffix if suffix in (".jpg", ".jpeg") else ".png"


def _make_output_folders(target: Path, outputs: list[Path]) -> None:
    """Create the folders, then check again: an existing symlink inside ``target`` could point elsewhere."""
    target.mkdir(parents=True, exist_ok=True)
    target_real = target.resolve()
    for folder in sorted({o.parent for o in outputs}):
        folder.mkdir(parents=True, exist_ok=True)
        if not folder.resolve().is_relative_to(target_real):
            raise ValueError(f"{folder} leads outside the output folder {target} (a symbolic link?)")


def _save(array: np.ndarray, out: Path) -> None:
    """Write atomically: a temporary file in the same folder, then ``os.replace``."""
    image = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    is_jpeg = out.suffix in (".jpg", ".jpeg")
    options = {"format": "JPEG", "quality": JPEG_QUALITY} if is_jpeg else {"format": "PNG"}
    with atomic_write(out, suffix=".part") as partial:
        image.save(partial, **options)


def _map_with_progress(
    function: Callable, items: Sequence, progress: bool, workers: int | None, description: str
) -> Iterator:
    """``map`` in input order on a thread pool (PIL decodes and resizes without holding the GIL)."""
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield from tqdm(pool.map(function, items), total=len(items), desc=description, disable=not progress)
