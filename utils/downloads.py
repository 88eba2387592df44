"""Downloads that leave nothing half-written, and archive extraction that stays in its folder.

Every network failure becomes a :class:`DownloadError` whose message is one line
(callers wrap it with ``utils.data.unavailable``).  A download goes to a temporary
file next to its destination, is checked against its checksum when one is known,
and only then is moved into place with ``os.replace``.

Archives (``.tar``, ``.tar.gz``, ``.tgz``, ``.zip``) are checked member by member
before anything is written: a path that would leave the target folder (``../x``, an
absolute path, a path through a symbolic link), a link pointing outside, or a
device file refuses the whole archive.  ``tarfile``'s ``"data"`` filter is applied
as well where Python has it, so the behaviour is the same on every version.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import posixpath
import re
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from utils.progress import tqdm

CHUNK_BYTES = 1 << 20
_TAR_FILTER_ERRORS = (tarfile.FilterError,) if hasattr(tarfile, "FilterError") else ()
USER_AGENT = "deep-generative-course (python urllib)"


class DownloadError(RuntimeError):
    """A download that failed; the message is one line saying why."""


class UnsafeArchiveError(ValueError):
    """An archive with a member that would be written outside its target folder (or is a device)."""


# --------------------------------------------------------------------------- checksums


def file_digest(path: Path | str, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksum(path: Path | str, sha256: str | None = None, md5: str | None = None) -> None:
    """Raise :class:`DownloadError` unless ``path`` has the given digests (None: not checked)."""
    for algorithm, expected in (("sha256", sha256), ("md5", md5)):
        if expected:
            actual = file_digest(path, algorithm)
            if actual.lower() != expected.lower():
                raise DownloadError(
                    f"checksum mismatch for {Path(path).name}: expected {algorithm} {expected}, got {actual}"
                )


# --------------------------------------------------------------------------- downloads


def download_file(
    url: str,
    dest: Path | str,
    sha256: str | None = None,
    md5: str | None = None,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download ``url`` to the file ``dest``; an existing ``dest`` with the right checksum is kept as is."""
    dest = Path(dest)
    if _usable_existing(dest, sha256, md5):
        return dest
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with _staging_folder(dest) as staging:
        partial = staging / dest.name
        try:
            _fetch(request, partial, timeout, progress)
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
            raise DownloadError(f"could not download {url}: {_reason(error)}") from None
        verify_checksum(partial, sha256, md5)
        os.replace(partial, dest)
    return dest


def gdown_download(
    file_id: str, dest: Path | str, sha256: str | None = None, md5: str | None = None, progress: bool = True
) -> Path:
    """Download a Google-Drive file with gdown; same guarantees as :func:`download_file`."""
    dest = Path(dest)
    if _usable_existing(dest, sha256, md5):
        return dest
    try:
        import gdown
    except ImportError:
        raise DownloadError("gdown is not installed (pip install gdown)") from None
    with _staging_folder(dest) as staging:
        partial = staging / dest.name
        try:
            result = gdown.download(id=file_id, output=str(partial), quiet=not progress)
        except Exception as error:  # gdown raises requests, gdown and OS errors alike
            raise DownloadError(f"could not download Google-Drive file {file_id}: {_reason(error)}") from None
        if result is None or not partial.is_file():
            raise DownloadError(f"could not download Google-Drive file {file_id}: gdown returned nothing")
        verify_checksum(partial, sha256, md5)
        os.replace(partial, dest)
    return dest


def _usable_existing(dest: Path, sha256: str | None, md5: str | None) -> bool:
    """An existing file is reused; a wrong one is an error rather than silently overwritten."""
    if not dest.is_file():
        return False
    try:
        verify_checksum(dest, sha256, md5)
    except DownloadError as error:
        raise DownloadError(f"{error} (the existing file {dest}: delete it and try again)") from None
    return True


def _fetch(request: urllib.request.Request, partial: Path, timeout: float, progress: bool) -> None:
    with urllib.request.urlopen(request, timeout=timeout) as response, open(partial, "wb") as out:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        received = 0
        with tqdm(total=total, unit="B", unit_scale=True, desc=partial.name, disable=not progress) as bar:
            while chunk := response.read(CHUNK_BYTES):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    # http.client returns b"" rather than raising when the server hangs up early
    if total is not None and received < total:
        raise http.client.IncompleteRead(b"", total - received)


@contextmanager
def _staging_folder(dest: Path) -> Iterator[Path]:
    """A temporary folder beside ``dest`` (same file system: ``os.replace`` is atomic), removed afterwards."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _reason(error: BaseException) -> str:
    if isinstance(error, http.client.IncompleteRead):
        return f"the connection closed early ({error.expected} bytes missing)"
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    detail = error.reason if isinstance(error, urllib.error.URLError) else error
    text = " ".join(str(detail).split()) or type(error).__name__
    system_error = re.search(r"\[Errno [^\]]+\] [^'\")(]+", text)  # the root cause inside requests' wrapping
    if system_error:
        return system_error.group(0).strip()
    return text if len(text) <= 300 else text[:297] + "..."


# --------------------------------------------------------------------------- archives


def extract_archive(archive: Path | str, target: Path | str) -> list[Path]:
    """Extract a ``.tar``/``.tar.gz``/``.tgz``/``.zip`` archive into ``target``; return its top-level entries.

    Raises :class:`UnsafeArchiveError` (nothing written) for a member that would land
    outside ``target``, and ``FileExistsError`` (nothing written) when a top-level entry
    already exists there.  The archive is unpacked in a hidden staging folder inside
    ``target`` first, so an interrupted extraction never looks complete.
    """
    archive, target = Path(archive), Path(target)
    if not archive.is_file():
        raise FileNotFoundError(f"archive {archive} does not exist")
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extracting-", dir=target))
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, staging)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, staging)
        else:
            raise UnsafeArchiveError(f"{archive.name} is neither a tar nor a zip archive")
        return _move_entries(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _extract_tar(archive: Path, staging: Path) -> None:
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        check_tar_members(members, archive.name)
        try:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(staging, members=members, filter="data")
            else:  # Python without PEP 706: our own check above is the whole protection
                tar.extractall(staging, members=members)
        except _TAR_FILTER_ERRORS as error:
            raise UnsafeArchiveError(f"{archive.name}: {error}") from None


def _extract_zip(archive: Path, staging: Path) -> None:
    with zipfile.ZipFile(archive) as zipped:
        members = zipped.infolist()
        check_zip_members(members, archive.name)
        zipped.extractall(staging, members=members)


def check_tar_members(members: list[tarfile.TarInfo], archive_name: str = "archive") -> None:
    """Raise :class:`UnsafeArchiveError` naming the first member that could write outside the target."""
    symlinks = {_normalized(m.name) for m in members if m.issym()}
    for member in members:
        problem = _path_problem(member.name) or _through_symlink(member.name, symlinks)
        if problem is None and member.issym():
            problem = _link_problem(member.linkname, posixpath.dirname(_normalized(member.name)), "symbolic")
        elif problem is None and member.islnk():
            problem = _link_problem(member.linkname, "", "hard")
        elif problem is None and not (member.isfile() or member.isdir()):
            problem = "a device, pipe or other special file"
        if problem:
            raise _refusal(archive_name, member.name, problem)


def check_zip_members(members: list[zipfile.ZipInfo], archive_name: str = "archive") -> None:
    """Raise :class:`UnsafeArchiveError` naming the first member that could write outside the target."""
    for member in members:
        problem = _path_problem(member.filename)
        kind = stat.S_IFMT(member.external_attr >> 16)  # 0 when the zip records no file type
        if problem is None and kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            problem = "a symbolic link or special file (zip links cannot be extracted faithfully)"
        if problem:
            raise _refusal(archive_name, member.filename, problem)


def _refusal(archive_name: str, member_name: str, problem: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(f"refusing to extract {archive_name}: member {member_name!r} is {problem}")


def _normalized(name: str) -> str:
    return posixpath.normpath(name.replace("\\", "/"))


def _is_absolute(name: str) -> bool:
    return name.replace("\\", "/").startswith("/") or re.match(r"^[A-Za-z]:", name) is not None


def _leaves(path: str) -> bool:
    return path == ".." or path.startswith("../")


def _path_problem(name: str) -> str | None:
    if _is_absolute(name):
        return "an absolute path"
    if _leaves(_normalized(name)):
        return "a path leaving the target folder"
    return None


def _through_symlink(name: str, symlinks: set[str]) -> str | None:
    parts = _normalized(name).split("/")
    for depth in range(1, len(parts)):
        if "/".join(parts[:depth]) in symlinks:
            return "a path through a symbolic link in the archive"
    return None


def _link_problem(link: str, base: str, kind: str) -> str | None:
    if _is_absolute(link):
        return f"a {kind} link to an absolute path ({link})"
    if _leaves(_normalized(posixpath.join(base, link))):
        return f"a {kind} link pointing outside the target folder ({link})"
    return None


def _move_entries(staging: Path, target: Path) -> list[Path]:
    entries = sorted(staging.iterdir())
    clashes = [target / e.name for e in entries if os.path.lexists(target / e.name)]
    if clashes:
        raise FileExistsError(f"{clashes[0]} already exists; remove it to extract the archive again")
    for entry in entries:
        os.replace(entry, target / entry.name)
    return [target / e.name for e in entries]
