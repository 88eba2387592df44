"""``python -m vae train / sample / reconstruct``: run folders, the npz formats, one-line errors (exit 2)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_checks import assert_sample_k_ignores_n, one_line, run_command

from utils.cli import run_cli
from utils.data import load_dataset
from vae.__main__ import main

REPO = Path(__file__).resolve().parent.parent


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    return run_command(main, capsys, *argv)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("vae_cli")
    for model, extra in (("ae", ["--latent", "8"]), ("vae", ["--latent", "8", "--beta", "1.2"]),
                         ("mlp-vae", ["--latent", "20"])):
        with pytest.raises(SystemExit) as exited:
            run_cli(main, ["train", "--model", model, *extra, "--dataset", "mnist5k", "--epochs", "1",
                           "--out", str(root / model), "--profile", "smoke"])
        assert exited.value.code == 0
    return root


def test_train_writes_the_run_folder(runs):
    for model in ("ae", "vae"):
        folder = runs / model
        assert {"model.pt", "metrics.json", "samples.png"} <= {p.name for p in folder.iterdir()}
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["model"] == model and metrics["split"] == "test" and metrics["epochs"] == 1
        assert metrics["test_loss"] > 0 and metrics["images_per_second"] > 0
        assert metrics["config"]["latent"] == 8
    vae = json.loads((runs / "vae" / "metrics.json").read_text())
    assert vae["config"]["beta"] == 1.2
    assert vae["test_loss"] == pytest.approx(vae["test_recon"] + vae["test_kl"])


def test_reconstruct_output_format(runs, tmp_path, capsys):
    out = tmp_path / "recon.npz"
    code, stdout, _ = cli(capsys, "reconstruct", "--ckpt", str(runs / "ae" / "model.pt"), "--dataset", "mnist5k",
                          "--split", "test", "--out", str(out))
    assert code == 0
    match = re.fullmatch(r"mnist5k test: 1000 images, mean SSIM (-?[01]\.\d{4}), mean PCC (-?[01]\.\d{4}); "
                         r"wrote (.+)\n", stdout)
    assert match and Path(match.group(3)) == out
    with np.load(out) as recon:
        assert set(recon.files) == {"originals", "reconstructions"}
        originals, reconstructions = recon["originals"], recon["reconstructions"]
    assert originals.dtype == reconstructions.dtype == np.uint8
    assert originals.shape == reconstructions.shape == (1000, 28, 28)
    test = load_dataset("mnist5k", "test")
    assert np.array_equal(originals, test.images[:, 0].numpy())  # the canonical test order
    assert not np.array_equal(originals, reconstructions)


def test_sample_writes_uint8_images(runs, tmp_path, capsys):
    code, stdout, _ = cli(capsys, "sample", "--ckpt", str(runs / "vae" / "model.pt"), "-n", "12",
                          "--out", str(tmp_path / "s.npz"), "--seed", "2")
    assert code == 0 and "12 samples" in stdout
    with np.load(tmp_path / "s.npz") as samples:
        assert samples["images"].dtype == np.uint8 and samples["images"].shape == (12, 28, 28)
        assert "labels" not in samples.files


@pytest.mark.parametrize("model", ["vae", "mlp-vae"])
def test_sample_k_is_the_same_image_whatever_n(runs, tmp_path, capsys, model):
    # a latent of 8 or 20 numbers: torch's randn(n, 20) fills blocks of 16, so row 0 used to change with n
    assert_sample_k_ignores_n(main, capsys, tmp_path, "sample", "--ckpt", str(runs / model / "model.pt"),
                              "--seed", "0", k=0)
    assert_sample_k_ignores_n(main, capsys, tmp_path, "sample", "--ckpt", str(runs / model / "model.pt"),
                              "--seed", "5", k=3)


@pytest.mark.parametrize("argv, message", [
    (["sample", "--ckpt", "{ae}", "--out", "{tmp}/s.npz"], "no prior"),
    (["sample", "--ckpt", "{vae}", "--out", "{tmp}/s.png"], ".npz"),
    (["reconstruct", "--ckpt", "{tmp}/missing.pt", "--out", "{tmp}/r.npz"], "no checkpoint"),
    (["reconstruct", "--ckpt", "{ae}", "--dataset", "skimage_photos", "--out", "{tmp}/r.npz"], "1x28x28"),
    (["reconstruct", "--ckpt", "{ae}", "--split", "validation", "--out", "{tmp}/r.npz"], "no split"),
    (["train", "--model", "vae", "--beta", "-1", "--out", "{tmp}/x"], "number >= 0"),
    (["train", "--model", "gan", "--out", "{tmp}/x"], "invalid choice"),
    (["train", "--beta-schedule", "exponential", "--out", "{tmp}/x"], "invalid choice"),
    (["train", "--dataset", "nope", "--out", "{tmp}/x"], "unknown data set"),
])
def test_bad_input_exits_2_with_one_line(runs, tmp_path, capsys, argv, message):
    paths = {"ae": runs / "ae" / "model.pt", "vae": runs / "vae" / "model.pt", "tmp": tmp_path}
    code, _, err = cli(capsys, *[a.format(**paths) for a in argv])
    assert code == 2 and message in one_line(err)


def test_python_dash_m_vae(runs, tmp_path):
    done = subprocess.run([sys.executable, "-m", "vae", "reconstruct", "--ckpt", str(runs / "vae" / "model.pt"),
                           "--out", str(tmp_path / "r.npz")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "mean SSIM" in done.stdout and (tmp_path / "r.npz").exists()
