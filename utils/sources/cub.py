"""CUB-200-2011 birds, resized to 32x32 (chapter 01's ``full`` set)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from utils.data import ImageSet, register, unavailable
from utils.downloads import DownloadError, download_file, gdown_download
from utils.imagefiles import list_image_files, read_image_folder, resize_folder
from utils.sources.common import (
    extract,
    first_existing,
    report_skipped,
)

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
    extracted = first_existing([p / CUB_FOLDER / "images" for p in places], "dir")
    if extracted is None:
        resized = first_existing([p / f"{CUB_FOLDER}_{CUB_SIZE}" for p in places], "dir")
        if resized is not None:
            return _cub_from_resized_folder(resized)
        archive = first_existing([p / CUB_ARCHIVE for p in places]) or _download_cub(folder, download)
        extract("cub", archive, folder)
        extracted = first_existing([folder / CUB_FOLDER / "images"], "dir")
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
    report_skipped("cub", skipped)
    read = read_image_folder(resized_dir, CUB_SIZE, labelled=True, files=written)
    report_skipped("cub", read.skipped)
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
    report_skipped("cub", read.skipped)
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
