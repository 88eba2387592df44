"""``python -m gan train / sample``: run folders, samples.npz, the final FID, and one-line errors with exit 2.

The commands run in this process through ``run_cli`` (the exact ``__main__`` path); one real
subprocess proves ``python -m gan`` itself works.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_checks import assert_sample_k_ignores_n, one_line, run_command

import utils.fid as fid_module
from gan.__main__ import main
from gan.train import GanConfig, GanRun, config_for, load_generator
from utils.cli import run_cli
from utils.data import ImageSet

REPO = Path(__file__).resolve().parent.parent


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    return run_command(main, capsys, *argv)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("gan_cli") / "wgan"
    with pytest.raises(SystemExit) as exited:
        run_cli(main, ["train", "--loss", "wgan-gp", "--dataset", "mnist5k", "--profile", "smoke",
                       "--out", str(out), "--iters", "6", "--seed", "1"])
    assert exited.value.code == 0
    return out


def test_train_writes_the_run_folder(run_dir):
    assert {"model.pt", "metrics.json", "samples.png"} <= {p.name for p in run_dir.iterdir()}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["steps"] == 6 and metrics["loss"] == "wgan-gp" and metrics["dataset"] == "mnist5k"
    assert {"d_loss", "g_loss", "gp", "wasserstein"} <= set(metrics) and metrics["gp"] >= 0
    smoke = config_for("smoke", loss="wgan-gp")
    assert metrics["config"]["n_critic"] == smoke.n_critic and metrics["config"]["batch_size"] == smoke.batch_size
    assert metrics["config"]["betas"] == [0.0, 0.9] and metrics["config"]["iters"] == 6
    assert metrics["images_per_second"] > 0 and "fid" not in metrics  # smoke: no FID unless asked


def test_train_again_resumes_and_a_changed_set_up_exits_2(run_dir, capsys):
    argv = ["train", "--loss", "wgan-gp", "--dataset", "mnist5k", "--profile", "smoke", "--out", str(run_dir),
            "--seed", "1"]
    code, out, _ = cli(capsys, *argv, "--iters", "6")
    assert code == 0 and "resumed at step 6" in out  # finished: loads, trains nothing
    code, _, err = cli(capsys, *argv, "--iters", "9")
    assert code == 2 and "different configuration (iters: 6 -> 9)" in one_line(err)
    assert json.loads((run_dir / "metrics.json").read_text())["steps"] == 6


def test_train_with_fid_samples_records_the_fid(tmp_path, capsys, monkeypatch):
    def fake_features(images, features, device=None):  # the classifier is tested in test_metrics
        noise = np.random.default_rng(len(images)).normal(size=(len(images), 8))
        return images.float().flatten(1)[:, :8].numpy() + noise

    monkeypatch.setattr(fid_module, "image_features", fake_features)
    code, out, _ = cli(capsys, "train", "--loss", "lsgan", "--profile", "smoke", "--out", str(tmp_path / "run"),
                       "--iters", "2", "--fid-samples", "50")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert code == 0 and metrics["fid_samples"] == 50 and metrics["fid"] > 0
    assert metrics["fid_features"].startswith("classifier-FID") and "classifier-FID" in out


def test_sample_writes_uint8_images_fixed_by_the_seed(run_dir, tmp_path, capsys):
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        code, out, _ = cli(capsys, "sample", "--ckpt", str(run_dir / "model.pt"), "-n", "7",
                           "--out", str(tmp_path / f"{name}.npz"), "--seed", seed)
        assert code == 0 and "7 samples of the wgan-gp GAN" in out
    a, b, c = (np.load(tmp_path / f"{name}.npz")["images"] for name in "abc")
    assert a.shape == (7, 28, 28) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_sample_k_is_the_same_image_whatever_n(run_dir, tmp_path, capsys):
    assert_sample_k_ignores_n(main, capsys, tmp_path, "sample", "--ckpt", str(run_dir / "model.pt"), "--seed", "4",
                              k=5)


def test_unknown_dataset_exits_2_listing_the_known_ones(tmp_path, capsys):
    code, _, err = cli(capsys, "train", "--loss", "lsgan", "--dataset", "imagenet", "--out", str(tmp_path / "run"))
    line = one_line(err)
    assert code == 2 and "unknown data set 'imagenet'" in line and "mnist5k" in line and "cub" in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "--loss", "hinge", "--out", "x"], "invalid choice: 'hinge'"),
    (["train", "--loss", "lsgan", "--iters", "0", "--out", "x"], "positive whole number"),
    (["train", "--loss", "lsgan", "--arch", "vit", "--out", "x"], "invalid choice: 'vit'"),
    (["train", "--loss", "lsgan", "--profile", "huge", "--out", "x"], "invalid choice: 'huge'"),
    (["train", "--out", "x"], "the following arguments are required: --loss"),
    (["sample", "--ckpt", "missing/model.pt", "--out", "s.npz"], "no checkpoint at missing/model.pt"),
    (["sample", "--ckpt", "missing/model.pt", "--out", "s.png"], "must end in .npz"),
    (["sample", "--ckpt", "missing/model.pt", "-n", "-3", "--out", "s.npz"], "positive whole number"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_arguments_exit_2_with_one_line(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, *argv)
    assert code == 2 and message in one_line(err)


def test_a_checkpoint_of_another_family_exits_2(tmp_path, capsys):
    torch.save({"modules": {"model": {}}, "config": {"model": "vae"}}, tmp_path / "vae.pt")
    code, _, err = cli(capsys, "sample", "--ckpt", str(tmp_path / "vae.pt"), "--out", str(tmp_path / "s.npz"))
    assert code == 2 and "is not a GAN checkpoint" in one_line(err)


def test_load_generator_restores_the_trained_weights(tmp_path):
    data = ImageSet("toy", "train", torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8), None, ())
    config = GanConfig(loss="lsgan", dataset="toy", iters=2, batch_size=8, z_dim=8, channels=8)
    run = GanRun(config, path=tmp_path / "model.pt", device="cpu", data=data)
    run.train(progress=False)
    generator, loaded = load_generator(tmp_path / "model.pt")
    assert loaded == config
    for a, b in zip(run.generator.state_dict().values(), generator.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_python_dash_m_gan_runs(run_dir, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "gan", "sample", "--ckpt", str(run_dir / "model.pt"), "-n", "3",
         "--out", str(tmp_path / "s.npz")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert np.load(tmp_path / "s.npz")["images"].shape == (3, 28, 28)


def test_a_tuned_recipe_for_a_loss_without_one_exits_2(tmp_path, capsys):
    code, _, err = cli(capsys, "train", "--loss", "lsgan", "--recipe", "tuned", "--profile", "smoke",
                       "--out", str(tmp_path / "run"))
    assert code == 2 and "no tuned recipe for 'lsgan'" in one_line(err)
    assert not (tmp_path / "run").exists()  # nothing written
