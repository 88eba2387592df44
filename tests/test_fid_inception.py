"""The Inception path end to end, with a tiny TorchScript stand-in for ``inception-2015-12-05.pt``.

The stand-in (``tests/inception_stand_in.py``) has the interface clean-fid's ``InceptionV3W`` uses, so the
course loads and runs it exactly as the real file.  Everything happens under a temporary data root
(``COURSE_DATA``).
"""

from __future__ import annotations

import http.server
import json
import tempfile
import threading
from pathlib import Path

import cleanfid
import numpy as np
import pytest
import torch
from cleanfid.resize import build_resizer
from cli_checks import run_command
from inception_stand_in import save_stand_in, stand_in
from PIL import Image

import gan.__main__ as gan_cli
import utils.fid as fid_module
import utils.inception as inception_module


@pytest.fixture
def data_root(tmp_path, monkeypatch) -> Path:
    """A data root without weights, clean-fid's own place empty, and no download tried."""
    root = tmp_path / "data"
    monkeypatch.setenv("COURSE_DATA", str(root))
    monkeypatch.setattr(inception_module, "cleanfid_weights_path", lambda: tmp_path / "cleanfid_tmp" / "none.pt")
    monkeypatch.setattr(inception_module, "_inception_download_failed", True)
    return root


@pytest.fixture
def weights(data_root) -> Path:
    path = inception_module.inception_weights_path()
    assert path == data_root / inception_module.INCEPTION_FILE
    save_stand_in(path)
    return path


def images(n: int, size: int = 16, channels: int = 3, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=generator)


def statistics_files(root: Path) -> list[Path]:
    folder = root / "fid_statistics"
    return sorted(folder.iterdir()) if folder.exists() else []


def test_image_features_run_the_weights_file_on_clean_fid_preprocessing(weights):
    batch = images(5, size=28, channels=1)
    features = fid_module.image_features(batch, "inception", "cpu", batch_size=2)
    assert features.shape == (5, 2048) and features.dtype == np.float32
    pil = build_resizer("clean")
    resized = np.stack([pil(image.permute(1, 2, 0).numpy()) for image in batch.expand(-1, 3, -1, -1)])
    with torch.no_grad():
        expected = stand_in().layers((torch.from_numpy(resized.transpose(0, 3, 1, 2)) - 128) / 128).flatten(1)
    np.testing.assert_allclose(features, expected.numpy(), atol=1e-4)


def test_fid_scorer_stores_statistics_once_per_reference_content(weights, data_root, monkeypatch):
    computed = []
    original = fid_module.image_features

    def counting(batch, *args, **kwargs):
        computed.append(len(batch))
        return original(batch, *args, **kwargs)

    monkeypatch.setattr(fid_module, "image_features", counting)
    reference = images(12)
    score = fid_module.fid_scorer(reference, "inception", "cpu")
    files = statistics_files(data_root)
    assert computed == [12] and len(files) == 1 and files[0].name.startswith("inception_")
    with np.load(files[0]) as stored:
        assert stored["mu"].shape == (2048,) and stored["sigma"].shape == (2048, 2048)
    assert score(reference) == pytest.approx(0.0, abs=1e-6)
    assert score(images(12, seed=1)) > 0

    computed.clear()
    fid_module._statistics_memo.clear()  # a new process: read back from disk
    fid_module._features_memo.clear()
    fid_module.fid_scorer(reference, "inception", "cpu")
    assert computed == [] and statistics_files(data_root) == files

    changed = reference.clone()
    changed[0, 0, 0, 0] ^= 1  # one pixel: other content, other statistics
    fid_module.fid_scorer(changed, "inception", "cpu")
    assert computed == [12] and len(statistics_files(data_root)) == 2


def test_the_inception_path_writes_nothing_to_the_temp_folder_nor_into_clean_fid(weights, tmp_path, monkeypatch):
    """Nothing new in the temp folder (``tempfile`` pointed at an empty folder for the test, since other processes
    share the real one; in the real one, nothing named like clean-fid's weights), nor in clean-fid's package."""
    private_tmp = tmp_path / "system_tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    system_tmp = Path("/tmp")
    system_before = {p.name for p in system_tmp.iterdir()} if system_tmp.is_dir() else set()
    package = Path(cleanfid.__file__).parent

    def package_files() -> set[Path]:
        return {p for p in package.rglob("*") if "__pycache__" not in p.parts}

    package_before = package_files()

    assert fid_module.choose_fid_features("full", "cub") == "inception"
    reference, fake = images(10), images(10, seed=3)
    fid_module.fid_scorer(reference, "inception", "cpu")(fake)
    fid_module.fid(reference, fake, "inception", "cpu")
    fid_module.per_class_fid(reference, torch.arange(10) % 2, fake, torch.arange(10) % 2, "inception", "cpu",
                             num_classes=2)
    for name, batch in (("real", reference), ("fake", fake)):
        (tmp_path / name).mkdir()
        for index, image in enumerate(batch):
            Image.fromarray(image.permute(1, 2, 0).numpy()).save(tmp_path / name / f"{index}.png")
    assert fid_module.fid_folders(tmp_path / "real", tmp_path / "fake", "inception", "cpu") > 0

    assert tempfile.gettempdir() == str(private_tmp) and list(private_tmp.iterdir()) == []
    assert package_files() == package_before
    system_new = {p.name for p in system_tmp.iterdir()} - system_before if system_tmp.is_dir() else set()
    assert not {name for name in system_new if "inception" in name.lower() or "fid" in name.lower()}


def test_choose_fid_features_gives_no_fid_rather_than_a_meaningless_one(data_root, capsys):
    assert fid_module.choose_fid_features("full", "cub") is None
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and line.startswith("FID not computed") and "cub" in line
    assert str(inception_module.inception_weights_path()) in line and inception_module.inception_url in line
    assert fid_module.choose_fid_features("quick", "cub") is None
    assert fid_module.choose_fid_features("quick") == "classifier"
    assert fid_module.choose_fid_features("full", "mnist") == "classifier"
    assert fid_module.choose_fid_features("full", "mnist5k", verbose=False) == "classifier"


def test_choose_fid_features_takes_inception_when_the_weights_are_there(weights, capsys):
    assert fid_module.choose_fid_features("full", "cub") == "inception"
    assert fid_module.choose_fid_features("full") == "inception"
    assert fid_module.choose_fid_features("quick") == "classifier"  # offline digits: the quick classifier
    assert "Inception" in capsys.readouterr().out


def test_weights_are_found_at_clean_fids_place_too(data_root, tmp_path, monkeypatch):
    elsewhere = tmp_path / "cleanfid" / inception_module.INCEPTION_FILE
    monkeypatch.setattr(inception_module, "cleanfid_weights_path", lambda: elsewhere)
    assert inception_module.find_inception_weights() is None
    save_stand_in(elsewhere)
    assert inception_module.find_inception_weights() == elsewhere
    assert fid_module.image_features(images(3), "inception", "cpu").shape == (3, 2048)


def test_a_download_goes_to_the_data_root(data_root, monkeypatch):
    payload = b"stand-in weights"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(inception_module, "inception_url", f"http://127.0.0.1:{server.server_port}/weights.pt")
        monkeypatch.setattr(inception_module, "_inception_download_failed", False)
        assert inception_module.inception_available(timeout=5.0) is True
    finally:
        server.shutdown()
    assert (data_root / inception_module.INCEPTION_FILE).read_bytes() == payload
    assert [p.name for p in data_root.iterdir()] == [inception_module.INCEPTION_FILE]  # no temporary file left


def test_missing_weights_say_where_to_get_them_and_where_to_put_them(data_root):
    with pytest.raises(inception_module.InceptionUnavailableError) as raised:
        inception_module.inception_feature_extractor("cpu")
    message = str(raised.value)
    assert inception_module.inception_url in message and str(data_root / inception_module.INCEPTION_FILE) in message
    with pytest.raises(fid_module.InceptionUnavailableError, match="features='classifier'"):
        fid_module.image_features(images(2), "inception", "cpu")


def test_the_gan_cli_records_no_fid_when_there_is_none_to_trust(data_root, tmp_path, capsys, monkeypatch):
    """``python -m gan train`` asks for the FID of its data set; ``None`` (CUB without weights) skips it, saying why."""
    def as_if_cub(profile, dataset=None, verbose=True):
        return fid_module.choose_fid_features(profile, "cub", verbose)

    monkeypatch.setattr(gan_cli, "choose_fid_features", as_if_cub)
    code, out, _ = run_command(gan_cli.main, capsys, "train", "--loss", "lsgan", "--profile", "smoke",
                               "--out", str(tmp_path / "run"), "--iters", "2", "--fid-samples", "20")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert code == 0 and "fid" not in metrics and "fid_features" not in metrics
    assert "FID not computed" in out and inception_module.inception_url in out
