"""Latent-space analysis (vae.latent): density models, density-quantile selection, tables, training and codes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from utils.classifier import DigitClassifier
from utils.data import load_dataset
from utils.fid import image_features
from utils.image_measures import pcc
from utils.report import markdown_table
from vae.latent import (
    GaussianMixtureSampler,
    NearestNeighbourSampler,
    central_and_marginal,
    compare_sets,
    config_for,
    decode_codes,
    distribution_table,
    encode_set,
    generation_scores,
    manifold_codes,
    mid_gray_share,
    nearest_image_distance,
    prior_codes,
    total_variation,
)
from vae.losses import elbo_loss
from vae.mlp import MLPVAE, MLPVAERun, split_elbo, training_loss


def two_blobs(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A tight blob at (-4, 0) (a quarter of the points) and a wide one at (4, 0), with labels 0 and 1."""
    rng = np.random.default_rng(seed)
    small = rng.normal([-4.0, 0.0], 0.3, size=(n // 4, 2))
    large = rng.normal([4.0, 0.0], 1.0, size=(n - n // 4, 2))
    return np.concatenate([small, large]), np.repeat([0, 1], [n // 4, n - n // 4])


# --------------------------------------------------------------------------- codes


def test_manifold_codes_run_left_to_right_and_bottom_to_top():
    z = manifold_codes(5, latent=3, dims=(0, 2), fixed={1: 0.7})
    assert z.shape == (25, 3)
    grid = z.reshape(5, 5, 3)
    assert torch.all(grid[:, 1:, 0] > grid[:, :-1, 0])  # z1 grows along a row
    assert torch.all(grid[1:, :, 2] < grid[:-1, :, 2])  # the last dim falls from the top row down
    assert torch.allclose(grid[..., 1], torch.full((5, 5), 0.7))
    assert grid[2, 2, 0] == pytest.approx(0.0, abs=1e-6)  # the middle quantile is the prior's median
    assert grid[0, 0, 0].item() == pytest.approx(-1.6449, abs=1e-3)  # the 5% quantile of N(0, 1)


def test_prior_codes_are_seeded():
    assert torch.equal(prior_codes(7, 3, seed=4), prior_codes(7, 3, seed=4))
    assert not torch.equal(prior_codes(7, 3, seed=4), prior_codes(7, 3, seed=5))


# --------------------------------------------------------------------------- density models


def test_gaussian_mixture_density_samples_and_centrality():
    codes, _ = two_blobs()
    with pytest.raises(RuntimeError, match="fit"):
        GaussianMixtureSampler(2).log_density(codes)
    mixture = GaussianMixtureSampler(2, seed=0).fit(torch.from_numpy(codes))
    centres, midway = np.array([[-4.0, 0.0], [4.0, 0.0]]), np.array([[0.0, 0.0]])
    assert np.all(mixture.log_density(centres) > mixture.log_density(midway) + 5)
    # the tight blob is denser at its centre, but both centres are equally central
    assert mixture.log_density(centres)[0] > mixture.log_density(centres)[1] + 1
    assert np.allclose(mixture.centrality(centres), 0.0, atol=0.05)
    assert mixture.centrality(np.array([[4.0, 2.0]]))[0] == pytest.approx(-4.0, rel=0.2)  # 2 std away: -(2^2)
    samples = mixture.sample(4000, seed=1)
    assert samples.shape == (4000, 2) and samples.dtype == torch.float32
    share_small = (samples[:, 0] < 0).float().mean().item()
    assert share_small == pytest.approx(0.25, abs=0.03)  # the blobs' weights
    assert samples[samples[:, 0] < 0].std(dim=0).mean().item() == pytest.approx(0.3, rel=0.15)
    assert torch.equal(samples, mixture.sample(4000, seed=1))


def test_knn_density_matches_a_uniform_square():
    rng = np.random.default_rng(0)
    codes = rng.random((4000, 2))  # density 1 on the unit square
    knn = NearestNeighbourSampler(3).fit(codes)
    inner = rng.uniform(0.2, 0.8, size=(500, 2))
    assert np.exp(np.median(knn.log_density(inner))) == pytest.approx(1.0, rel=0.2)
    own = np.exp(np.median(knn.log_density(codes[:500], exclude_self=True)))
    assert own == pytest.approx(1.0, rel=0.3)
    assert np.all(knn.log_density(np.array([[3.0, 3.0]])) < np.log(0.01))  # far outside


def test_knn_samples_lie_between_neighbouring_codes_and_predict_labels():
    line = np.stack([np.linspace(0, 10, 50), np.zeros(50)], axis=1)  # codes on a segment
    knn = NearestNeighbourSampler(3).fit(line, labels=(line[:, 0] > 5).astype(int))
    samples = knn.sample(500, seed=0).numpy()
    assert np.allclose(samples[:, 1], 0.0)
    assert samples[:, 0].min() >= 0 and samples[:, 0].max() <= 10
    spacing = 10 / 49
    gaps = np.abs(samples[:, 0][:, None] - line[:, 0][None, :]).min(axis=1)
    assert gaps.max() <= 1.5 * spacing + 1e-9  # between a code and one of its 3 nearest codes
    assert list(knn.predict(np.array([[1.0, 0.0], [9.0, 0.0]]))) == [0, 1]
    # at x = 5.05 the 3 nearest codes are 4.9 (label 0), 5.1 and 5.3 (label 1): 2 of 3 agree
    assert knn.agreement(np.array([[1.0, 0.0], [5.05, 0.0]])) == pytest.approx([1.0, 2 / 3])
    with pytest.raises(RuntimeError, match="labels"):
        NearestNeighbourSampler(3).fit(line).predict(line[:2])
    with pytest.raises(ValueError, match="more than k"):
        NearestNeighbourSampler(3).fit(line[:3])


def test_central_and_marginal_take_the_quantiles():
    candidates = torch.arange(10.0).unsqueeze(1)
    log_density = np.array([5.0, 1.0, 9.0, 3.0, 0.0, 7.0, 2.0, 8.0, 6.0, 4.0])
    picked = central_and_marginal(candidates, log_density, fraction=0.2)
    assert picked.marginal.flatten().tolist() == [4.0, 1.0]  # lowest density first
    assert picked.central.flatten().tolist() == [2.0, 7.0]  # highest first
    assert picked.marginal_threshold == 1.0 and picked.central_threshold == 8.0
    centrality = -np.arange(10.0)  # the first candidates are the most central
    picked = central_and_marginal(candidates, log_density, fraction=0.3, centrality=centrality)
    assert picked.central_index.tolist() == [0, 1, 2] and picked.marginal_index.tolist() == [4, 1, 6]
    with pytest.raises(ValueError, match="fraction"):
        central_and_marginal(candidates, log_density, fraction=0.6)
    with pytest.raises(ValueError, match="candidates"):
        central_and_marginal(candidates, log_density[:5])


def test_selection_on_two_blobs_finds_the_gap():
    codes, _ = two_blobs()
    mixture = GaussianMixtureSampler(2, seed=0).fit(codes)
    pool = torch.from_numpy(np.random.default_rng(1).uniform([-5, -1], [5, 1], size=(2000, 2))).float()
    picked = central_and_marginal(pool, mixture.log_density(pool), 0.1, mixture.centrality(pool))
    # marginal: the emptiest strip, between the blobs or beyond; central: near either centre, both blobs included
    assert picked.marginal[:, 0].abs().median() < 2.5
    near = torch.minimum((picked.central[:, 0] + 4).abs(), (picked.central[:, 0] - 4).abs())
    assert near.max() < 1.0 and (picked.central[:, 0] < 0).any() and (picked.central[:, 0] > 0).any()


# --------------------------------------------------------------------------- tables and scores


def test_distribution_table_counts_and_shares():
    table = distribution_table({"train": [1, 3], "generated": torch.tensor([2, 2])}, ["a", "b"])
    lines = table.splitlines()
    assert lines[0] == "| set | a | b | Sum | Avg |"
    assert lines[2] == "| train (#) | 1 | 3 | 4 | 2 |"
    assert lines[4] == "| train (%) | 25.00% | 75.00% | 100% | 50% |"
    assert lines[5] == "| generated (%) | 50.00% | 50.00% | 100% | 50% |"
    assert markdown_table(["x"], [[1], [2]]).splitlines() == ["| x |", "|---|", "| 1 |", "| 2 |"]


def test_blur_and_likeness_measures():
    images = torch.tensor([0, 255, 128, 40, 210, 52], dtype=torch.uint8).view(6, 1, 1, 1)
    assert mid_gray_share(images) == pytest.approx(2 / 6)  # 128 and 52; 40 and 210 are outside 51..204
    reference = torch.stack([torch.zeros(1, 2, 2), torch.full((1, 2, 2), 255.0)]).to(torch.uint8)
    queries = torch.stack([torch.zeros(1, 2, 2), torch.full((1, 2, 2), 204.0)]).to(torch.uint8)
    # nearest to the black image at distance 0; to the white one at sqrt(4 * 0.2^2) = 0.4
    assert nearest_image_distance(queries, reference) == pytest.approx([0.0, 0.4])


def test_total_variation():
    assert total_variation([5, 5], [1, 1]) == 0.0
    assert total_variation([1, 0], [0, 3]) == 1.0
    assert total_variation([3, 1], [1, 1]) == pytest.approx(0.25)


def test_generation_scores_rank_a_copy_above_other_digits_above_noise():
    torch.manual_seed(0)
    classifier = DigitClassifier().eval()  # untrained: the scores only need some features and softmax
    digits = load_dataset("mnist5k", "test").images
    every_other = torch.arange(0, 1000, 2)
    real, other = digits[every_other], digits[every_other + 1]  # both halves hold every digit
    noise = torch.randint(0, 256, real.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    reference = image_features(real, "classifier", "cpu", classifier=classifier)
    sets = {"copy": real, "other digits": other, "noise": noise}
    scores = generation_scores(reference, sets, classifier, device="cpu")
    assert scores["copy"]["fid"] == pytest.approx(0.0, abs=1e-4)
    assert scores["copy"]["fid"] < scores["other digits"]["fid"] < scores["noise"]["fid"]
    assert all(1.0 <= s["is"] <= 10.0 and s["n"] == 500 for s in scores.values())


# --------------------------------------------------------------------------- training and codes


@pytest.fixture(scope="module")
def three_epochs(tmp_path_factory):
    path = tmp_path_factory.mktemp("latent") / "vae.pt"
    config = config_for("quick", latent=3, epochs=3)
    return config, path, MLPVAERun(config, path=path, device="cpu").load_or_train(progress=False)


def test_training_follows_the_course_set_up(three_epochs):
    config, path, run = three_epochs
    model, trainer = run.model, run.trainer
    assert isinstance(model, MLPVAE) and not model.conditional and model.latent == 3 and model.hidden == 400
    assert trainer.optimizers["adam"].param_groups[0]["lr"] == 1e-3  # not the reference write-up's 1e-5
    assert trainer.config["steps_per_epoch"] == math.ceil(4000 / 128) and trainer.step == 3 * 32
    assert 100 < trainer.last("test_loss") < 400 and 100 < trainer.last("train_loss") < 400
    again = MLPVAERun(config, path=path, device="cpu").load_or_train(progress=False)
    assert again.trainer.step == trainer.step and again.history == trainer.history  # a finished run only loads
    assert torch.equal(next(again.model.parameters()), next(model.parameters()))
    full = config_for("full")
    assert (config.hidden, config.epochs, full.epochs, full.dataset) == (400, 3, 100, "mnist")


def test_codes_and_images_of_a_set(three_epochs):
    _, _, run = three_epochs
    model, trainer = run.model, run.trainer
    test = load_dataset("mnist5k", "test")
    codes = encode_set(model, test.images)
    assert codes.shape == (1000, 3)
    images = decode_codes(model, codes[:5])
    assert images.dtype == torch.uint8 and images.shape == (5, 1, 28, 28)
    assert decode_codes(model, np.zeros((2, 3))).shape == (2, 1, 28, 28)
    x = test.images.float().div(255).flatten(1)
    assert split_elbo(model, x, seed=1234)["loss"] == pytest.approx(trainer.last("test_loss"), rel=1e-5)
    # a decoded code correlates better with its own image than with an image of another digit
    picked = torch.arange(0, 1000, 20)  # 5 images of every digit (the split is sorted by digit)
    recon = decode_codes(model, codes[picked])
    own = pcc(recon, test.images[picked])
    other = pcc(recon, test.images[picked.roll(25)])  # 5 digits further on
    assert (own > other).mean() > 0.8


def test_mlp_training_loss_is_the_elbo_and_bfloat16_only_when_asked(monkeypatch):
    torch.manual_seed(0)
    model, x = MLPVAE(latent=2, hidden=32), torch.rand(8, 784)
    monkeypatch.delenv("COURSE_AMP", raising=False)
    torch.manual_seed(1)
    loss = training_loss(model, x)
    torch.manual_seed(1)
    logits, mu, logvar = model(x)
    assert torch.equal(loss, elbo_loss(logits, x, mu, logvar)["loss"])
    monkeypatch.setenv("COURSE_AMP", "1")  # bfloat16 forward pass on the CPU, float32 loss
    torch.manual_seed(1)
    mixed = training_loss(model, x)
    assert mixed.dtype == torch.float32 and not torch.equal(mixed, loss)
    assert mixed.item() == pytest.approx(loss.item(), rel=0.02)


def test_compare_sets_separates_blur_from_likeness():
    torch.manual_seed(0)
    test = load_dataset("mnist5k", "test")  # the reference: every digit
    classifier = DigitClassifier().eval()
    sharp = load_dataset("mnist5k", "train").images[::10][:300]
    blurred = torch.nn.functional.avg_pool2d(sharp.float(), 3, stride=1, padding=1).round().to(torch.uint8)
    codes = {"general": torch.randn(300, 2), "marginal": 3 * torch.randn(300, 2)}
    knn = NearestNeighbourSampler(k=3).fit(torch.randn(200, 2), torch.arange(200) % 10)
    result = compare_sets(sharp, blurred, test.images, test.labels, classifier, least=1, codes=codes, neighbours=knn)
    assert result["marginal"]["mid_gray"] > 2 * result["general"]["mid_gray"]  # blur raises the mid-gray share
    assert result["real"]["mid_gray"] == pytest.approx(mid_gray_share(test.images))
    assert result["shared_digits"] and math.isfinite(result["general"]["per_digit_fid"])
    assert result["marginal"]["radius"] > 2 * result["general"]["radius"]  # codes three times as spread
    itself = compare_sets(sharp, sharp, test.images, test.labels, classifier, least=1)
    assert itself["general"] == itself["marginal"] and "radius" not in itself["general"]
