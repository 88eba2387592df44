"""Measuring instruments: the digit classifier, FID through clean-fid, classifier-IS, histograms, SSIM / PSNR / PCC."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

import utils.classifier as classifier_module
import utils.fid as fid_module
import utils.inception as inception_module
from utils import image_measures, sample_scores
from utils.data import ImageSet, load_dataset

CPU = torch.device("cpu")


@pytest.fixture(scope="session")
def train_set() -> ImageSet:
    return load_dataset("mnist5k", "train")


@pytest.fixture(scope="session")
def test_set() -> ImageSet:
    return load_dataset("mnist5k", "test")


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> tuple[classifier_module.DigitClassifier, float, Path]:
    """The digit classifier, trained once per test session into a temporary checkpoint folder."""
    path = tmp_path_factory.mktemp("checkpoints") / "classifier" / "digit_classifier.pt"
    start = time.perf_counter()
    model, accuracy = classifier_module.get_digit_classifier(device=CPU, verbose=False, path=path)
    print(f"\n{classifier_module.classifier_summary(accuracy)} (trained in {time.perf_counter() - start:.1f} s)")
    return model, accuracy, path


@pytest.fixture(scope="session")
def classifier(trained) -> classifier_module.DigitClassifier:
    return trained[0]


def noise_images(n: int, channels: int = 1, size: int = 28, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, size, size), generator=generator, dtype=torch.uint8)


# --------------------------------------------------------------------------- classifier


def test_classifier_reaches_97_percent_on_the_test_split(trained, test_set):
    model, accuracy, _ = trained
    assert accuracy >= 0.97
    assert classifier_module.classifier_accuracy(model, test_set.images, test_set.labels) == pytest.approx(accuracy)


def test_cached_classifier_is_loaded_not_retrained(trained, monkeypatch, capsys):
    model, accuracy, path = trained

    def no_training(*args, **kwargs):
        raise AssertionError("the cached classifier should have been loaded")

    monkeypatch.setattr(classifier_module, "train_digit_classifier", no_training)
    loaded, loaded_accuracy = classifier_module.get_digit_classifier(device=CPU, path=path)
    assert loaded_accuracy == accuracy
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor)
    assert "Digit classifier (mnist5k train, 4000 images): test accuracy" in capsys.readouterr().out


def test_cache_of_another_version_or_damaged_is_ignored(trained, monkeypatch, tmp_path):
    _, _, path = trained
    assert classifier_module._load_classifier(path, CPU) is not None
    monkeypatch.setattr(classifier_module, "CLASSIFIER_VERSION", classifier_module.CLASSIFIER_VERSION + 1)
    assert classifier_module._load_classifier(path, CPU) is None
    damaged = tmp_path / "digit_classifier.pt"
    damaged.write_bytes(b"not a checkpoint")
    assert classifier_module._load_classifier(damaged, CPU) is None


def test_default_checkpoint_path_follows_course_checkpoints(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_CHECKPOINTS", str(tmp_path))
    assert classifier_module.classifier_checkpoint_path() == tmp_path / "classifier" / "digit_classifier.pt"


def test_classifier_takes_any_size_and_channel_count(classifier):
    gray = torch.rand(4, 1, 32, 32)
    with torch.no_grad():
        assert classifier(gray).shape == (4, 10)
        assert classifier.features(gray).shape == (4, classifier.feature_dim)
        as_rgb = classifier.features(gray.expand(-1, 3, -1, -1))
        assert torch.allclose(as_rgb, classifier.features(gray), atol=1e-4)


def test_training_leaves_the_global_random_stream_alone(train_set):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    classifier_module.train_digit_classifier(train_set.subset(slice(0, 64)), CPU, epochs=1, verbose=False)
    assert torch.equal(torch.rand(3), expected)


# --------------------------------------------------------------------------- FID


def test_fid_of_a_set_with_itself_is_zero(classifier, test_set):
    assert fid_module.fid(test_set.images, test_set.images, classifier=classifier, device=CPU) == pytest.approx(
        0.0, abs=1e-6
    )


def test_fid_ranks_noise_far_behind_real_digits(classifier, train_set, test_set):
    real_vs_real = fid_module.fid(train_set.images, test_set.images, classifier=classifier, device=CPU)
    real_vs_noise = fid_module.fid(train_set.images, noise_images(1000), classifier=classifier, device=CPU)
    print(f"\nclassifier-FID train vs test {real_vs_real:.2f}, train vs noise {real_vs_noise:.1f}")
    assert 0 < real_vs_real < 10
    assert real_vs_noise > 50 * real_vs_real


def test_features_are_deterministic_and_clean_fid_shaped(classifier, test_set):
    images = test_set.images[:300]
    first = fid_module.image_features(images, classifier=classifier, device=CPU)
    second = fid_module.image_features(images, classifier=classifier, device=CPU, batch_size=7)
    assert first.shape == (300, 128)
    np.testing.assert_allclose(first, second, rtol=1e-5, atol=1e-5)
    extract = fid_module.classifier_feature_extractor(classifier, CPU)
    as_gray = extract(images[:5].float()).numpy()
    as_rgb = extract(images[:5].float().expand(-1, 3, -1, -1)).numpy()
    np.testing.assert_allclose(as_gray, first[:5], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(as_rgb, first[:5], rtol=1e-5, atol=1e-5)


def write_pngs(images: torch.Tensor, folder: Path) -> Path:
    folder.mkdir(parents=True)
    for index, image in enumerate(images):
        array = image.permute(1, 2, 0).numpy()
        Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(folder / f"{index:05d}.png")
    return folder


def test_fid_folders_through_clean_fid_equals_in_memory_fid(classifier, train_set, test_set, tmp_path):
    real, fake = train_set.images[::10], test_set.images[::4]
    first, second = write_pngs(real, tmp_path / "real"), write_pngs(fake, tmp_path / "fake")
    from_folders = fid_module.fid_folders(first, second, classifier=classifier, device=CPU)
    in_memory = fid_module.fid(real, fake, classifier=classifier, device=CPU)
    assert from_folders == pytest.approx(in_memory, rel=1e-3)


def test_inception_preprocessing_matches_clean_fid_folder_loading(test_set, tmp_path):
    from cleanfid.utils import ResizeDataset

    images = test_set.images[:2]
    folder = write_pngs(images, tmp_path / "pngs")
    loaded = ResizeDataset(sorted(str(p) for p in folder.iterdir()), mode="clean")
    ours = fid_module.inception_resize(images)
    assert ours.shape == (2, 3, 299, 299)
    for index in range(2):  # batched torch resize vs clean-fid's PIL one: equal to round-off (utils.inception)
        assert (ours[index] - loaded[index]).abs().max() < inception_module.RESIZE_TOLERANCE


def test_per_class_fid_has_every_class_and_nan_for_too_few(classifier, train_set, test_set):
    scores = fid_module.per_class_fid(
        train_set.images, train_set.labels, test_set.images, test_set.labels, classifier=classifier, device=CPU
    )
    assert sorted(scores) == list(range(10))
    assert all(math.isfinite(value) and value >= -1e-6 for value in scores.values())
    fake, fake_labels = test_set.images[:3], torch.tensor([3, 3, 4])
    sparse = fid_module.per_class_fid(
        train_set.images, train_set.labels, fake, fake_labels, classifier=classifier, device=CPU
    )
    assert math.isfinite(sparse[3])
    assert all(math.isnan(sparse[label]) for label in range(10) if label != 3)


def test_feature_labels_never_confuse_the_two_networks():
    classifier_label, inception_label = fid_module.feature_label("classifier"), fid_module.feature_label("inception")
    assert "classifier" in classifier_label and "Inception" not in classifier_label
    assert "Inception" in inception_label and "classifier" not in inception_label
    with pytest.raises(ValueError, match="unknown FID features"):
        fid_module.feature_label("clip")


def test_choose_fid_features_says_which_and_why(monkeypatch, capsys):
    monkeypatch.setattr(fid_module, "inception_available", lambda: True)
    assert fid_module.choose_fid_features("full") == "inception"
    assert fid_module.choose_fid_features("quick") == "classifier"
    monkeypatch.setattr(fid_module, "inception_available", lambda: False)
    assert fid_module.choose_fid_features("full") == "classifier"
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"FID features: {fid_module.feature_label('inception')}")
    assert "offline" in out[1] and "not available" in out[2]


def test_inception_available_answers_false_quickly_when_unreachable(monkeypatch, tmp_path):
    monkeypatch.setattr(inception_module, "inception_weights_path", lambda: tmp_path / "inception.pt")
    monkeypatch.setattr(inception_module, "cleanfid_weights_path", lambda: tmp_path / "cleanfid" / "inception.pt")
    monkeypatch.setattr(inception_module, "inception_url", "http://127.0.0.1:9/inception.pt")
    monkeypatch.setattr(inception_module, "_inception_download_failed", False)
    start = time.perf_counter()
    assert fid_module.inception_available(timeout=2.0) is False
    assert time.perf_counter() - start < 5
    assert fid_module.inception_available(download=False) is False
    (tmp_path / "inception.pt").write_bytes(b"weights")
    assert fid_module.inception_available() is True


def test_inception_fid_without_weights_names_the_fix(monkeypatch, test_set):
    monkeypatch.setattr(fid_module, "inception_available", lambda: False)
    with pytest.raises(fid_module.InceptionUnavailableError, match="features='classifier'"):
        fid_module.fid(test_set.images[:4], test_set.images[4:8], features="inception", device=CPU)


@pytest.mark.skipif(not fid_module.inception_available(download=False), reason="Inception weights not on disk")
def test_inception_fid_of_a_set_with_itself_is_zero(test_set):
    images = test_set.images[:40]
    assert fid_module.fid(images, images, features="inception") == pytest.approx(0.0, abs=1e-3)


def test_metrics_refuse_float_images(classifier):
    with pytest.raises(TypeError, match="uint8"):
        fid_module.fid(torch.rand(4, 1, 28, 28), torch.rand(4, 1, 28, 28), classifier=classifier, device=CPU)


# --------------------------------------------------------------------------- IS and histograms


class FixedLogits(nn.Module):
    """A fake classifier: an image filled with the value k gets the logits ``scale * one_hot(k)``."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        classes = (images[:, 0, 0, 0] * 255).round().long()
        return self.scale * nn.functional.one_hot(classes, 10).float()


def constant_images(values: torch.Tensor) -> torch.Tensor:
    return values.to(torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 4, 4).contiguous()


def test_inception_score_of_unsure_predictions_is_one():
    images = constant_images(torch.arange(1000) % 10)
    mean, std = sample_scores.inception_score(images, FixedLogits(scale=0.0))
    assert mean == pytest.approx(1.0, abs=1e-9) and std == pytest.approx(0.0, abs=1e-9)


def test_inception_score_of_confident_balanced_predictions_is_ten():
    images = constant_images(torch.arange(1000) % 10)
    mean, _ = sample_scores.inception_score(images, FixedLogits(scale=100.0), splits=1)
    assert mean == pytest.approx(10.0, rel=1e-6)
    mean, _ = sample_scores.inception_score(images, FixedLogits(scale=100.0), splits=10)
    assert 9.0 < mean <= 10.0 + 1e-6  # random splits are only roughly balanced


def test_inception_score_of_real_digits_is_high(classifier, test_set):
    mean, std = sample_scores.inception_score(test_set.images, classifier)
    assert 8.5 < mean <= 10 and std < 0.5


def test_predict_and_class_histogram(classifier, test_set):
    labels, confidence = classifier_module.predict(test_set.images, classifier)
    assert labels.shape == confidence.shape == (1000,)
    assert labels.dtype == torch.int64 and 0 < confidence.min() and confidence.max() <= 1
    counts = sample_scores.class_histogram(test_set.images, classifier)
    assert counts.shape == (10,) and counts.sum() == len(test_set)
    assert torch.equal(counts, torch.bincount(labels, minlength=10))


def test_histogram_entropy():
    assert sample_scores.histogram_entropy(torch.full((10,), 7)) == pytest.approx(math.log(10))
    assert sample_scores.histogram_entropy(np.array([0, 5, 0])) == pytest.approx(0.0)
    assert sample_scores.histogram_entropy([1, 1, 0, 0]) == pytest.approx(math.log(2))


# --------------------------------------------------------------------------- SSIM, PSNR, PCC


def test_ssim_of_identical_images_is_one_and_falls_with_noise(test_set):
    images = test_set.images[:8]
    np.testing.assert_allclose(image_measures.ssim(images, images), 1.0)
    noisy = images.int() + torch.randint(-60, 61, images.shape, generator=torch.Generator().manual_seed(0))
    noisy = noisy.clamp(0, 255).to(torch.uint8)
    values = image_measures.ssim(images, noisy)
    assert values.shape == (8,) and (values < 0.95).all() and 0 < values.mean() < 0.9


def test_ssim_handles_rgb_and_small_images():
    rgb = noise_images(3, channels=3, size=32)
    np.testing.assert_allclose(image_measures.ssim(rgb, rgb), 1.0)
    assert image_measures.ssim(rgb, noise_images(3, channels=3, size=32, seed=1)).mean() < 0.1
    tiny = noise_images(2, size=5)
    np.testing.assert_allclose(image_measures.ssim(tiny, tiny), 1.0)
    with pytest.raises(ValueError, match="at least 3x3"):
        image_measures.ssim(noise_images(2, size=2), noise_images(2, size=2))


def test_psnr_of_a_known_noise_level():
    clean = torch.full((2, 1, 28, 28), 100, dtype=torch.uint8)
    shifted = clean + 10  # every pixel off by 10: MSE = 100
    expected = 10 * math.log10(255**2 / 100)  # 28.13 dB
    np.testing.assert_allclose(image_measures.psnr(clean, shifted), expected)
    assert np.isinf(image_measures.psnr(clean, clean)).all()


def test_pcc_matches_numpy_corrcoef():
    a, b = noise_images(5, channels=3, size=16), noise_images(5, channels=3, size=16, seed=1)
    b[:2] = 255 - a[:2]  # two perfectly anti-correlated pairs
    expected = [np.corrcoef(x.flatten().numpy(), y.flatten().numpy())[0, 1] for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(image_measures.pcc(a, b), expected, rtol=1e-10)
    np.testing.assert_allclose(image_measures.pcc(a, b)[:2], -1.0)


def test_paired_metrics_need_equal_shapes():
    with pytest.raises(ValueError, match="differ in shape"):
        image_measures.psnr(noise_images(2), noise_images(3))


def test_fid_works_with_a_scipy_whose_sqrtm_has_no_disp(monkeypatch):
    """Newer SciPy dropped ``sqrtm(..., disp=...)``, which clean-fid 0.1.35 passes: the FID must not break."""
    import scipy.linalg

    from utils.fid import fid_from_features

    original = scipy.linalg.sqrtm
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(200, 8)), rng.normal(0.5, 1.0, size=(200, 8))
    expected = fid_from_features(real, fake)

    def sqrtm_without_disp(matrix, blocksize=64):
        return original(matrix)

    monkeypatch.setattr(scipy.linalg, "sqrtm", sqrtm_without_disp)
    assert fid_from_features(real, fake) == pytest.approx(expected, rel=1e-6)
    assert 1.0 < expected < 4.0  # the mean shift alone gives 8 * 0.5**2 = 2, plus sampling noise
