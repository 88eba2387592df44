"""Helpers the data-set sources share: environment paths, downloads and archives, skipped-file reports."""

from __future__ import annotations

import os
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from utils.data import unavailable
from utils.downloads import DownloadError, UnsafeArchiveError, extract_archive
from utils.imagefiles import SkippedFile

NATURAL_IMAGE_SIZE = 64  # Food-101 and COCO, as in the reference write-up's natural-image VAE
SHOWN_SKIPS = 10


def first_existing(candidates: list[Path], kind: str = "file") -> Path | None:
    test = Path.is_file if kind == "file" else Path.is_dir
    return next((c for c in candidates if test(c)), None)


def env_path(variable: str) -> Path | None:
    value = os.environ.get(variable, "").strip()
    return Path(value).expanduser() if value else None


def downloaded(name: str, download: Callable[[], Path]) -> Path:
    try:
        return download()
    except DownloadError as error:
        raise unavailable(name, str(error)) from None


def extract(name: str, archive: Path, target: Path) -> None:
    try:
        extract_archive(archive, target)
    except (UnsafeArchiveError, tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as error:
        raise unavailable(name, f"could not extract {archive} ({first_line(error)})") from None


def report_skipped(name: str, skipped: list[SkippedFile]) -> None:
    """Unreadable files are left out, never silently: say which and why."""
    if not skipped:
        return
    print(f"{name}: skipped {len(skipped)} unreadable file(s):")
    for entry in skipped[:SHOWN_SKIPS]:
        print(f"  {entry}")
    if len(skipped) > SHOWN_SKIPS:
        print(f"  ... and {len(skipped) - SHOWN_SKIPS} more")




def first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
