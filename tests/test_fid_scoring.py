"""FID plumbing: the PNG folder is lossless, and the Inception path uses clean-fid's custom statistics."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import utils.fid as fid_module


def test_png_folder_keeps_every_pixel(tmp_path):
    images = torch.randint(0, 256, (3, 3, 5, 4), dtype=torch.uint8)
    folder = fid_module.write_png_folder(images, tmp_path / "pngs")
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == ["000000.png", "000001.png", "000002.png"]
    assert np.array_equal(np.asarray(Image.open(files[1])), images[1].permute(1, 2, 0).numpy())


def test_inception_scorer_builds_custom_stats_once_and_compares_with_them(tmp_path, monkeypatch):
    from cleanfid import features as cleanfid_features
    from cleanfid import fid as cleanfid

    made = {}

    def make_custom_stats(name, fdir, mode, device, num_workers, verbose):
        made[name] = len(list(Path(fdir).iterdir()))

    monkeypatch.setattr(cleanfid, "test_stats_exists", lambda name, mode: name in made)
    monkeypatch.setattr(cleanfid, "make_custom_stats", make_custom_stats)
    monkeypatch.setattr(cleanfid_features, "get_reference_statistics",
                        lambda name, res, mode, split: (np.zeros(2), np.eye(2)))
    monkeypatch.setattr(fid_module, "image_features",
                        lambda images, features, device: np.random.default_rng(0).normal(size=(len(images), 2)))

    reference = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
    score = fid_module.fid_scorer(reference, "inception", "cpu", stats_name="course_test")
    assert made == {"course_test": 4}
    value = score(torch.zeros(500, 3, 8, 8, dtype=torch.uint8))
    assert value == pytest.approx(0.0, abs=0.05)  # N(0, I) features against N(0, I) statistics
    fid_module.fid_scorer(reference, "inception", "cpu", stats_name="course_test")
    assert made == {"course_test": 4}  # the statistics exist now: not made again
