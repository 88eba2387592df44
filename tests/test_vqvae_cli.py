"""``python -m vqvae train / sample / reconstruct`` and the OASIS set-up on a fixture of its real layout.

The commands run in this process through ``run_cli`` (the exact ``__main__`` path); one real
subprocess proves ``python -m vqvae`` itself works.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_checks import assert_sample_k_ignores_n, one_line, run_command
from image_fixtures import make_oasis_tree

from utils.cli import run_cli
from utils.data import load_dataset
from vqvae.__main__ import main
from vqvae.bundle import load_bundle
from vqvae.prior_runs import CodeGANRun, PixelCNNRun
from vqvae.train import CodeGANConfig, PixelCNNConfig, VQVAERun, config_for, encode, load_images, map_labels

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vqvae_cli") / "run"
    with pytest.raises(SystemExit) as exited:  # module scope: no capsys, so run_cli itself
        run_cli(main, ["train", "--dataset", "mnist5k", "--profile", "smoke", "--epochs", "1", "--prior-epochs", "1",
                       "--gan-steps", "5", "--out", str(folder)])
    assert exited.value.code == 0
    return folder


def test_train_writes_the_run_folder(run):
    assert {"model.pt", "vqvae.pt", "pixelcnn.pt", "dcgan.pt", "metrics.json", "samples.png"} <= {
        p.name for p in run.iterdir()}
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["dataset"] == "mnist5k" and metrics["num_codes"] == 128 and metrics["code_dim"] == 16
    assert 0.3 < metrics["test_reconstruction_ssim"] <= 1.0  # one epoch already draws digits
    assert 1.0 <= metrics["test_perplexity"] <= 128 and metrics["test_codes_used"] > 32  # restarts keep codes in use
    assert 0 < metrics["pixelcnn_test_nll"] < np.log(128)  # better than a uniform guess
    assert metrics["images_per_second"] > 0 and metrics["config"]["epochs"] == 1


@pytest.mark.parametrize("prior", ["pixelcnn", "dcgan"])
def test_sample_writes_decoded_maps(run, tmp_path, capsys, prior):
    code, out, _ = run_command(main, capsys, "sample", "--ckpt", str(run / "model.pt"), "-n", "7", "--prior", prior,
                       "--out", str(tmp_path / "s.npz"), "--seed", "3")
    assert code == 0 and f"7 samples of the {prior} prior" in out
    with np.load(tmp_path / "s.npz") as saved:
        assert saved["images"].dtype == np.uint8 and saved["images"].shape == (7, 28, 28)
        assert "labels" not in saved and saved["images"].max() > 100  # strokes, not a blank page
        first = saved["images"].copy()
    run_command(main, capsys, "sample", "--ckpt", str(run / "model.pt"), "-n", "7", "--prior", prior,
        "--out", str(tmp_path / "again.npz"), "--seed", "3")
    with np.load(tmp_path / "again.npz") as again:
        assert np.array_equal(first, again["images"])  # the seed fixes the samples


@pytest.mark.parametrize("prior, extra", [("pixelcnn", []), ("pixelcnn", ["--label", "6"]), ("dcgan", [])])
def test_sample_k_is_the_same_image_whatever_n(run, tmp_path, capsys, prior, extra):
    # the priors used to draw every position of the whole batch from one stream (21-30 grey levels apart)
    assert_sample_k_ignores_n(main, capsys, tmp_path, "sample", "--ckpt", str(run / "model.pt"), "--prior", prior,
                              "--seed", "5", *extra, k=3)


def test_the_digit_pixelcnn_is_label_conditional_and_sample_takes_a_label(run, tmp_path, capsys):
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["pixelcnn_num_classes"] == 10 and metrics["config"]["epochs"] == 1
    assert load_bundle(run / "model.pt").pixelcnn.num_classes == 10
    code, out, _ = run_command(main, capsys, "sample", "--ckpt", str(run / "model.pt"), "-n", "4", "--label", "3",
                               "--out", str(tmp_path / "three.npz"))
    assert code == 0 and "given the label 3" in out
    with np.load(tmp_path / "three.npz") as saved:
        assert saved["images"].shape == (4, 28, 28)


def test_map_labels_follow_the_order_of_augmented_codes():
    labels = map_labels("mnist5k", copies=2)
    train = load_dataset("mnist5k", "train").labels
    assert labels.num_classes == 10 and len(labels.train) == 3 * len(train)
    assert all(torch.equal(block, train) for block in labels.train.chunk(3))  # images, then each moved copy
    assert torch.equal(labels.test, load_dataset("mnist5k", "test").labels)


def test_reconstruct_keeps_the_canonical_test_order(run, tmp_path, capsys):
    code, out, _ = run_command(main, capsys, "reconstruct", "--ckpt", str(run / "model.pt"), "--dataset", "mnist5k",
                       "--split", "test", "--out", str(tmp_path / "recon.npz"))
    assert code == 0 and "mean SSIM" in out
    test = load_dataset("mnist5k", "test").images[:, 0].numpy()
    with np.load(tmp_path / "recon.npz") as saved:
        assert np.array_equal(saved["originals"], test)
        assert saved["reconstructions"].shape == test.shape and saved["reconstructions"].dtype == np.uint8
        error = np.abs(saved["reconstructions"].astype(float) - test).mean()
        assert error < np.abs(test.astype(float) - test.mean()).mean()  # closer than a constant image


@pytest.mark.parametrize("argv, message", [
    (["sample", "--ckpt", "MODEL", "-n", "4", "--out", "s.png"], "must end in .npz"),
    (["sample", "--ckpt", "MODEL", "-n", "4", "--out", "s.npz", "--prior", "vae"], "invalid choice"),
    (["sample", "--ckpt", "MODEL", "-n", "0", "--out", "s.npz"], "positive whole number"),
    (["sample", "--ckpt", "MODEL", "-n", "4", "--out", "s.npz", "--label", "10"], "labels in 0..9"),
    (["sample", "--ckpt", "MODEL", "-n", "4", "--out", "s.npz", "--prior", "dcgan", "--label", "1"], "takes no label"),
    (["sample", "--ckpt", "no/such/model.pt", "-n", "4", "--out", "s.npz"], "no checkpoint"),
    (["sample", "--ckpt", "VQVAE_PT", "-n", "4", "--out", "s.npz"], "not a vqvae checkpoint"),
    (["reconstruct", "--ckpt", "MODEL", "--split", "validate", "--out", "r.npz"], "has no split 'validate'"),
    (["train", "--dataset", "no_such_set", "--out", "run"], "unknown data set 'no_such_set'"),
    (["train", "--epochs", "0", "--out", "run"], "positive whole number"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments_exit_2_with_one_line(run, tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    argv = [str(run / "model.pt") if a == "MODEL" else str(run / "vqvae.pt") if a == "VQVAE_PT" else a for a in argv]
    code, _, err = run_command(main, capsys, *argv)
    assert code == 2 and message in one_line(err)
    assert not any(tmp_path.iterdir())  # nothing written


def test_python_dash_m_vqvae_runs(run, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "vqvae", "sample", "--ckpt", str(run / "model.pt"), "-n", "3", "--prior", "gan",
         "--out", str(tmp_path / "s.npz")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2 and "invalid choice: 'gan'" in one_line(result.stderr)


def test_the_oasis_set_up_trains_on_the_oasis_folders(tmp_path, monkeypatch):
    """Kaggle's OASIS layout through the registry: 256 px slices -> 64 x 64 maps of 512 codes, both priors."""
    make_oasis_tree(tmp_path / "oasis")
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    settings = config_for("smoke", "oasis")
    assert settings.vqvae.preset == "oasis" and settings.vqvae.decay == 0.99
    vq = VQVAERun(replace(settings.vqvae, epochs=1), device="cpu").train(progress=False)
    assert vq.trainer.step == 1 and vq.history["test_codes_used"]  # 4 train slices: one batch; 2 test slices
    train_codes = encode(vq.model, load_images("oasis", "train"))
    assert train_codes.shape == (4, 64, 64) and int(train_codes.max()) < 512
    pixelcnn = PixelCNNRun(PixelCNNConfig(epochs=1, channels=8, layers=2), vq, train_codes).train(progress=False)
    gan = CodeGANRun(CodeGANConfig(steps=1, batch_size=2, width=32, d_width=8), vq, train_codes).train(progress=False)
    assert pixelcnn.prior(train_codes[:1]).shape == (1, 512, 64, 64)
    assert gan.generator(torch.randn(1, 64)).shape == (1, 512, 64, 64)
    assert pixelcnn.trainer.config["vqvae"]["preset"] == "oasis"  # a prior names the VQ-VAE it was fitted to
    labels = map_labels("oasis", copies=0)
    assert labels.train is None and labels.num_classes is None  # unlabelled slices
    assert pixelcnn.trainer.config["num_classes"] is None and pixelcnn.prior.condition is None
