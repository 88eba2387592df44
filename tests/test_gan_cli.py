"""``python -m gan``: bad arguments end in one line and exit 2; a tiny run writes its files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gan.__main__ import main
from gan.train import GanConfig, GanRun, load_generator
from utils.cli import run_cli
from utils.data import ImageSet

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--loss", "hinge", "--out", "x"], "invalid choice: 'hinge'"),
        (["train", "--loss", "lsgan", "--dataset", "imagenet", "--out", "x"], "unknown data set 'imagenet'"),
        (["train", "--loss", "lsgan", "--iters", "0", "--out", "x"], "positive whole number"),
        (["train", "--out", "x"], "the following arguments are required: --loss"),
        (["sample", "--ckpt", "missing/model.pt", "--out", "s.npz"], "no checkpoint at missing/model.pt"),
        (["sample", "--ckpt", "missing/model.pt", "--out", "s.png"], "must end in .npz"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        run_cli(main, args)
    stderr = capsys.readouterr().err
    assert stop.value.code == 2
    assert len(stderr.strip().splitlines()) == 1 and message in stderr


def test_tiny_train_then_sample_writes_the_files(tmp_path):
    out = tmp_path / "run"
    command = ["-m", "gan", "train", "--loss", "wgan-gp", "--dataset", "mnist5k", "--profile", "smoke",
               "--out", str(out), "--iters", "6", "--seed", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, *command], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert {"model.pt", "metrics.json", "samples.png"} <= {p.name for p in out.iterdir()}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 6 and metrics["config"]["loss"] == "wgan-gp" and "gp" in metrics

    assert main(["sample", "--ckpt", str(out / "model.pt"), "-n", "7", "--out", str(tmp_path / "s.npz")]) == 0
    images = np.load(tmp_path / "s.npz")["images"]
    assert images.shape == (7, 28, 28) and images.dtype == np.uint8


def test_load_generator_restores_the_trained_weights(tmp_path):
    data = ImageSet("toy", "train", torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8), None, ())
    config = GanConfig(loss="lsgan", dataset="toy", iters=2, batch_size=8, z_dim=8, channels=8)
    run = GanRun(config, path=tmp_path / "model.pt", device="cpu", data=data)
    run.train(progress=False)
    generator, loaded = load_generator(tmp_path / "model.pt")
    assert loaded == config
    for a, b in zip(run.generator.state_dict().values(), generator.state_dict().values(), strict=True):
        assert torch.equal(a, b)
