"""FID arithmetic: the eigenvalue Frechet distance agrees with SciPy's ``sqrtm``, the batched resize with clean-fid's
PIL one, and per-class FID takes precomputed reference features.  (The Inception path: test_fid_inception.py.)"""

import math

import numpy as np
import pytest
import torch
from cleanfid.resize import build_resizer
from cli_checks import load_tool

import utils.fid as fid_module
from utils.inception import RESIZE_TOLERANCE, inception_resize


def correlated_features(rng: np.random.Generator, n: int, dim: int, shift: float = 0.0, scale: float = 1.0):
    mixing = rng.normal(size=(dim, dim)) / math.sqrt(dim)
    return (rng.normal(size=(n, dim)) * scale + shift) @ mixing


@pytest.mark.parametrize(("n", "dim"), [(300, 64), (30, 64), (65, 64), (2, 16)])  # n <= dim: singular covariances
def test_frechet_distance_agrees_with_scipy_sqrtm(n, dim):
    rng = np.random.default_rng(n)
    real = fid_module.feature_statistics(correlated_features(rng, n, dim))
    fake = fid_module.feature_statistics(correlated_features(rng, n, dim, shift=0.3, scale=1.2))
    ours = fid_module.frechet_distance(*real, *fake)
    assert ours == pytest.approx(fid_module.scipy_frechet_distance(*real, *fake), rel=1e-3)
    assert fid_module.frechet_distance(*real, *real) == pytest.approx(0.0, abs=1e-6)  # identical sets


@pytest.mark.parametrize(("n_real", "n_fake"), [(300, 20), (20, 300), (10, 12), (400, 300)])
def test_every_factor_gives_the_scipy_value(n_real, n_fake):
    """Cholesky (a positive definite covariance), eigh (both singular) or the centred features (few samples)."""
    rng = np.random.default_rng(n_real + n_fake)
    real, fake = correlated_features(rng, n_real, 32), correlated_features(rng, n_fake, 32, shift=0.5)
    expected = fid_module.scipy_frechet_distance(*fid_module.feature_statistics(real),
                                                 *fid_module.feature_statistics(fake))
    assert fid_module.fid_from_features(real, fake) == pytest.approx(expected, rel=1e-6)
    singular = fid_module.feature_statistics(real[:10]), fid_module.feature_statistics(fake[:10])
    assert fid_module.frechet_distance(*singular[0], *singular[1]) == pytest.approx(
        fid_module.fid_from_features(real[:10], fake[:10]), rel=1e-6)


def test_feature_statistics_are_numpy_mean_and_cov():
    values = np.random.default_rng(1).normal(size=(50, 6)).astype(np.float32)
    mu, sigma = fid_module.feature_statistics(values)
    assert mu.dtype == sigma.dtype == np.float64 and mu.shape == (6,) and sigma.shape == (6, 6)
    np.testing.assert_allclose(mu, values.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(sigma, np.cov(values, rowvar=False), rtol=1e-6, atol=1e-12)


def test_frechet_distance_of_shifted_means_and_bad_shapes():
    eye = np.eye(3)
    assert fid_module.frechet_distance(np.zeros(3), eye, np.full(3, 2.0), eye) == pytest.approx(12.0, abs=1e-9)
    assert fid_module.frechet_distance(np.zeros(1), np.eye(1), np.zeros(1), 4 * np.eye(1)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="one D"):
        fid_module.frechet_distance(np.zeros(3), eye, np.zeros(4), np.eye(4))


@pytest.mark.parametrize(("size", "channels"), [(28, 1), (32, 3), (64, 3)])
def test_inception_resize_matches_clean_fids_pil_resize(size, channels):
    generator = torch.Generator().manual_seed(size)
    images = torch.randint(0, 256, (4, channels, size, size), dtype=torch.uint8, generator=generator)
    ours = inception_resize(images, "cpu", batch_size=3)
    assert ours.shape == (4, 3, 299, 299) and ours.dtype == torch.float32
    assert 0 <= ours.min() and ours.max() <= 255
    pil = build_resizer("clean")
    rgb = images.expand(-1, 3, -1, -1)
    expected = torch.from_numpy(np.stack([pil(image.permute(1, 2, 0).numpy()) for image in rgb]).transpose(0, 3, 1, 2))
    assert (ours - expected).abs().max() < RESIZE_TOLERANCE


def test_per_class_fid_takes_precomputed_reference_features(monkeypatch):
    rng = np.random.default_rng(2)
    table = {}

    def fake_features(images, features="classifier", device=None, batch_size=256, classifier=None):
        key = images.data_ptr()
        table.setdefault(key, rng.normal(size=(len(images), 4)))
        return table[key]

    monkeypatch.setattr(fid_module, "image_features", fake_features)
    real, fake = torch.zeros(40, 1, 8, 8, dtype=torch.uint8), torch.ones(30, 1, 8, 8, dtype=torch.uint8)
    real_labels, fake_labels = torch.arange(40) % 2, torch.arange(30) % 2
    computed = fid_module.per_class_fid(real, real_labels, fake, fake_labels, num_classes=2)
    given = fid_module.per_class_fid(real, real_labels, fake, fake_labels, num_classes=2,
                                     real_features=fake_features(real))
    assert computed == given and all(math.isfinite(v) for v in given.values())
    with pytest.raises(ValueError, match="3 real features for 40 real images"):
        fid_module.per_class_fid(real, real_labels, fake, fake_labels, real_features=np.zeros((3, 4)))


def test_fid_bench_prints_both_tables(capsys):
    bench = load_tool("fid_bench")  # tools/fid_bench.py: a script outside the library
    assert bench.main(["--n", "40", "--dim", "16", "--size", "8", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "(a) Frechet distance, 40 x 16" in out and "SciPy sqrtm" in out and "(b) resize of 40" in out
    torch_row = next(line for line in out.splitlines() if line.startswith("torch float64, Cholesky"))
    assert float(torch_row.split()[-2]) < 1e-6  # relative difference to SciPy
    resize_row = next(line for line in out.splitlines() if line.startswith("inception_resize"))
    assert float(resize_row.split()[-1]) < RESIZE_TOLERANCE
