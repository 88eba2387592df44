"""Safe archive extraction and downloads that leave nothing half-written (all offline)."""

from __future__ import annotations

import hashlib
import http.server
import io
import socket
import stat
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from utils import downloads
from utils.downloads import DownloadError, UnsafeArchiveError, download_file, extract_archive, gdown_download


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str, data: bytes = b"bird") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _everything(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return tmp_path / "area" / "target"


def test_good_tar_is_extracted_with_its_top_level_entries(tmp_path, target):
    members = [_file("CUB/images/a.jpg"), _file("attributes.txt"), _link("CUB/l", "images")]
    archive = _tar(tmp_path / "good.tgz", members)
    entries = extract_archive(archive, target)
    assert [e.name for e in entries] == ["CUB", "attributes.txt"]
    assert (target / "CUB" / "images" / "a.jpg").read_bytes() == b"bird"
    assert (target / "CUB" / "l").is_symlink()
    assert {p.name for p in target.iterdir()} == {"CUB", "attributes.txt"}  # the staging folder is gone


@pytest.mark.parametrize(
    "bad_member",
    [
        _file("../evil"),
        _file("ok/../../evil"),
        _file("/tmp/absolute_evil"),
        _link("link", "../../evil"),
        _link("link", "/etc/passwd"),
        _link("hard", "../evil", tarfile.LNKTYPE),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink-out", "symlink-absolute", "hardlink-out"],
)
@pytest.mark.parametrize("mode", ["w:gz", "w"])
def test_tar_escaping_the_target_is_refused_and_nothing_is_written(tmp_path, target, bad_member, mode):
    archive = _tar(tmp_path / "bad.tar", [_file("first.txt"), bad_member, _file("last.txt")], mode)
    before = _everything(tmp_path)
    with pytest.raises(UnsafeArchiveError, match="refusing to extract"):
        extract_archive(archive, target)
    assert _everything(tmp_path) - before == {target.parent, target}  # only the (empty) target folder
    assert list(target.iterdir()) == []


def test_tar_writing_through_its_own_symlink_is_refused(tmp_path, target):
    # each link looks harmless on its own; together they would reach target/..
    members = [_link("a", "."), _link("a/b", ".."), _file("a/b/evil")]
    with pytest.raises(UnsafeArchiveError, match="symbolic link"):
        extract_archive(_tar(tmp_path / "chain.tgz", members), target)
    assert not (tmp_path / "area" / "evil").exists()


def test_tar_device_file_is_refused(tmp_path, target):
    device = tarfile.TarInfo("dev/null")
    device.type = tarfile.CHRTYPE
    with pytest.raises(UnsafeArchiveError, match="device"):
        extract_archive(_tar(tmp_path / "dev.tgz", [(device, None)]), target)


def _zip(path: Path, names: list[str], link: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zipped:
        for name in names:
            zipped.writestr(zipfile.ZipInfo(name), b"slice")
        if link:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zipped.writestr(info, "../../outside")
    return path


def test_good_zip_is_extracted(tmp_path, target):
    archive = _zip(tmp_path / "oasis.zip", ["data/train/a.png", "data/test/b.png"])
    assert [e.name for e in extract_archive(archive, target)] == ["data"]
    assert (target / "data" / "train" / "a.png").read_bytes() == b"slice"


@pytest.mark.parametrize("name", ["../evil.png", "data/../../evil.png", "/abs_evil.png"])
def test_zip_escaping_the_target_is_refused(tmp_path, target, name):
    archive = _zip(tmp_path / "bad.zip", ["data/ok.png", name])
    before = _everything(tmp_path)
    with pytest.raises(UnsafeArchiveError, match="refusing to extract"):
        extract_archive(archive, target)
    assert _everything(tmp_path) - before == {target.parent, target}


def test_zip_symlink_is_refused(tmp_path, target):
    with pytest.raises(UnsafeArchiveError, match="symbolic link"):
        extract_archive(_zip(tmp_path / "link.zip", ["a.png"], link="data/link"), target)


def test_extracting_over_an_existing_entry_is_refused_untouched(tmp_path, target):
    archive = _zip(tmp_path / "a.zip", ["data/a.png"])
    (target / "data").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="already exists"):
        extract_archive(archive, target)
    assert list((target / "data").iterdir()) == []
    assert [p.name for p in target.iterdir()] == ["data"]  # the staging folder is gone


def test_not_an_archive_is_refused(tmp_path, target):
    (tmp_path / "x.tgz").write_text("<html>quota exceeded</html>")
    with pytest.raises(UnsafeArchiveError, match="neither a tar nor a zip"):
        extract_archive(tmp_path / "x.tgz", target)


# --------------------------------------------------------------------------- downloads


def test_download_file_verifies_the_checksum_and_replaces_atomically(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"x" * 3000)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    dest = tmp_path / "dl" / "copy.bin"
    assert download_file(source.as_uri(), dest, sha256=digest, progress=False) == dest
    assert dest.read_bytes() == source.read_bytes()
    assert [p.name for p in dest.parent.iterdir()] == ["copy.bin"]


def test_download_with_a_wrong_checksum_leaves_nothing(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"data")
    dest = tmp_path / "dl" / "copy.bin"
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download_file(source.as_uri(), dest, md5="0" * 32, progress=False)
    assert list(dest.parent.iterdir()) == []


def test_existing_file_is_not_downloaded_again(tmp_path):
    dest = tmp_path / "have.bin"
    dest.write_bytes(b"mine")
    md5 = hashlib.md5(b"mine").hexdigest()
    assert download_file("http://127.0.0.1:1/never", dest, md5=md5, progress=False) == dest
    with pytest.raises(DownloadError, match="delete it"):
        download_file("http://127.0.0.1:1/never", dest, md5="0" * 32, progress=False)
    assert dest.read_bytes() == b"mine"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_server_gives_a_one_line_reason(tmp_path):
    with pytest.raises(DownloadError) as raised:
        download_file(f"http://127.0.0.1:{_closed_port()}/CUB_200_2011.tgz", tmp_path / "a.tgz", timeout=5)
    message = str(raised.value)
    assert "\n" not in message and "could not download" in message and "refused" in message.lower()
    assert list(tmp_path.iterdir()) == []


class _HangsUpEarly(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path == "/missing":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b"partial")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HangsUpEarly)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_connection_closed_mid_file_leaves_nothing(tmp_path, server_url):
    dest = tmp_path / "big.tgz"
    with pytest.raises(DownloadError, match="closed early"):
        download_file(f"{server_url}/big.tgz", dest, timeout=5, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_http_error_is_one_line(tmp_path, server_url):
    with pytest.raises(DownloadError, match=r"HTTP 404") as raised:
        download_file(f"{server_url}/missing", tmp_path / "m.bin", timeout=5, progress=False)
    assert "\n" not in str(raised.value)


def test_gdown_failure_becomes_one_line(tmp_path, monkeypatch):
    import gdown

    def fail(**kwargs):
        Path(kwargs["output"]).write_bytes(b"half")  # gdown may leave a partial file
        raise gdown.exceptions.FileURLRetrievalError(
            "Failed to retrieve file url:\n\n\tCannot retrieve the link"
        )

    monkeypatch.setattr(gdown, "download", fail)
    with pytest.raises(DownloadError) as raised:
        gdown_download("some-id", tmp_path / "CUB_200_2011.tgz", progress=False)
    assert "\n" not in str(raised.value) and "Cannot retrieve the link" in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_gdown_download_checks_the_md5(tmp_path, monkeypatch):
    import gdown

    def fake(**kwargs):
        Path(kwargs["output"]).write_bytes(b"tarball")
        return kwargs["output"]

    monkeypatch.setattr(gdown, "download", fake)
    dest = tmp_path / "CUB_200_2011.tgz"
    with pytest.raises(DownloadError, match="checksum mismatch"):
        gdown_download("id", dest, md5="0" * 32, progress=False)
    assert not dest.exists()
    assert gdown_download("id", dest, md5=hashlib.md5(b"tarball").hexdigest(), progress=False) == dest
    assert dest.read_bytes() == b"tarball"


def test_file_digest_matches_hashlib(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc" * 1000)
    assert downloads.file_digest(path, "md5") == hashlib.md5(b"abc" * 1000).hexdigest()
