"""``python -m cvae train / sample``: run folders, samples.npz, and one-line errors with exit status 2.

The commands run in this process through ``run_cli`` (the exact ``__main__`` path, no torch
import per call); one real subprocess proves ``python -m cvae`` itself works.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_checks import assert_sample_k_ignores_n, one_line, run_command

from cvae.__main__ import main
from utils.cli import run_cli

REPO = Path(__file__).resolve().parent.parent


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    return run_command(main, capsys, *argv)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cvae_cli")
    for model in ("cvae", "vae"):
        with pytest.raises(SystemExit) as exited:
            run_cli(main, ["train", "--dataset", "mnist5k", "--latent", "2", "--model", model, "--epochs", "1",
                           "--out", str(root / model), "--profile", "smoke"])
        assert exited.value.code == 0
    return root


def test_train_writes_the_run_folder(runs):
    for model in ("cvae", "vae"):
        folder = runs / model
        assert {"model.pt", "metrics.json", "samples.png"} <= {p.name for p in folder.iterdir()}
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["model"] == model and metrics["dataset"] == "mnist5k" and metrics["epochs"] == 1
        assert 100 < metrics["test_loss"] < 400 and metrics["images_per_second"] > 0
        assert metrics["config"]["latent"] == 2 and metrics["config"]["batch_size"] == 128


def test_sample_cycles_through_the_labels(runs, tmp_path, capsys):
    code, out, _ = cli(capsys, "sample", "--ckpt", str(runs / "cvae" / "model.pt"), "-n", "25",
                       "--out", str(tmp_path / "s.npz"), "--seed", "3")
    assert code == 0 and "25 samples" in out
    with np.load(tmp_path / "s.npz") as saved:
        assert saved["images"].dtype == np.uint8 and saved["images"].shape == (25, 28, 28)
        assert saved["labels"].tolist() == [k % 10 for k in range(25)]


def test_sample_with_a_label(runs, tmp_path, capsys):
    code, _, _ = cli(capsys, "sample", "--ckpt", str(runs / "cvae" / "model.pt"), "-n", "8",
                     "--out", str(tmp_path / "s.npz"), "--label", "7")
    assert code == 0
    with np.load(tmp_path / "s.npz") as saved:
        assert saved["labels"].tolist() == [7] * 8


def test_vae_samples_have_no_labels(runs, tmp_path, capsys):
    code, _, _ = cli(capsys, "sample", "--ckpt", str(runs / "vae" / "model.pt"), "-n", "6",
                     "--out", str(tmp_path / "s.npz"))
    assert code == 0
    with np.load(tmp_path / "s.npz") as saved:
        assert saved["images"].shape == (6, 28, 28) and "labels" not in saved


@pytest.mark.parametrize("model, extra", [("cvae", []), ("cvae", ["--label", "4"]), ("vae", [])])
def test_sample_k_is_the_same_image_whatever_n(runs, tmp_path, capsys, model, extra):
    assert_sample_k_ignores_n(main, capsys, tmp_path, "sample", "--ckpt", str(runs / model / "model.pt"),
                              "--seed", "3", *extra, k=2)


@pytest.mark.parametrize("label", ["10", "-1"])
def test_label_outside_0_to_9_exits_2(runs, tmp_path, capsys, label):
    code, _, err = cli(capsys, "sample", "--ckpt", str(runs / "cvae" / "model.pt"), "-n", "4",
                       "--out", str(tmp_path / "s.npz"), "--label", label)
    assert code == 2 and "--label must be in 0..9" in one_line(err)
    assert not (tmp_path / "s.npz").exists()


def test_label_with_a_plain_vae_exits_2(runs, tmp_path, capsys):
    code, _, err = cli(capsys, "sample", "--ckpt", str(runs / "vae" / "model.pt"), "-n", "4",
                       "--out", str(tmp_path / "s.npz"), "--label", "3")
    assert code == 2 and "plain VAE" in one_line(err)


def test_unknown_dataset_exits_2_listing_the_known_ones(tmp_path, capsys):
    code, _, err = cli(capsys, "train", "--dataset", "no_such_set", "--out", str(tmp_path / "run"))
    line = one_line(err)
    assert code == 2 and "no_such_set" in line and "mnist5k" in line and "fashion_mnist" in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv", [
    ["sample", "--ckpt", "no/such/model.pt", "-n", "4", "--out", "s.npz"],
    ["sample", "--ckpt", "x.pt", "-n", "0", "--out", "s.npz"],
    ["train", "--model", "gan", "--out", "run"],
    ["train", "--latent", "0", "--out", "run"],
    ["frobnicate"],
])
def test_other_bad_arguments_exit_2_with_one_line(tmp_path, capsys, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, *argv)
    assert code == 2
    one_line(err)


def test_python_dash_m_cvae_runs(runs, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "cvae", "sample", "--ckpt", str(runs / "cvae" / "model.pt"), "-n", "3",
         "--label", "12", "--out", str(tmp_path / "s.npz")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2 and one_line(result.stderr).startswith("error: --label must be in 0..9")
