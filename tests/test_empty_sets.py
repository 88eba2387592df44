"""Zero or one image, handed to every picture, widget, metric and sampler of the course.

Each either does the right thing (a picture that says "0 images", a one-image score) or raises one
``ValueError`` at once that names the set and its count, never numpy's, scipy's or torch's own
error (before, ``make_grid`` raised ``ZeroDivisionError: float division by zero``).
"""

from __future__ import annotations

import io

import ipywidgets as widgets
import numpy as np
import pytest
import torch
from cli_checks import one_line, run_command
from PIL import Image

from cvae.models import build_model as build_cvae
from cvae.train import encode_means as cvae_encode_means
from cvae.train import sample as cvae_sample
from gan.train import GanRun, config_for
from utils.classifier import DigitClassifier, predict, softmax_predictions
from utils.data import ImageSet, chunks, load_dataset, require_images
from utils.fid import fid, fid_folders, fid_from_features, fid_scorer, image_features, per_class_fid
from utils.image_measures import pcc, psnr, ssim
from utils.plotting import class_bars, grid_png, image_rows, interpolation_grid, latent_scatter, show_images
from utils.sample_scores import class_histogram, histogram_entropy, inception_score
from utils.widgets import dataset_browser, image_widget, live_image
from vae.latent import (
    GaussianMixtureSampler,
    NearestNeighbourSampler,
    central_and_marginal,
    decode_codes,
    distribution_table,
    encode_set,
    generation_scores,
    mid_gray_share,
    nearest_image_distance,
    total_variation,
)
from vae.mlp import MLPVAE, split_elbo
from vae.train import Images, VAEConfig, make_model
from vae.train import decode_images as vae_decode
from vae.train import evaluate as vae_evaluate
from vae.train import reconstruct as vae_reconstruct
from vae.train import sample as vae_sample
from vqvae.prior_runs import code_nll, sample_code_gan, sample_pixelcnn
from vqvae.priors import CodeGenerator, GatedPixelCNN
from vqvae.train import VQVAEConfig, build_vqvae, decode, encode, evaluate_vqvae, nearest_real_ssim, pixel_variance

DIGITS = load_dataset("mnist5k", "test").images[:8]
NONE = DIGITS[:0]
ONE = DIGITS[:1]


def png_size(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


def test_require_images_names_the_set_and_the_count():
    with pytest.raises(ValueError, match=r"^FID needs at least 2 images; the real set has 1$"):
        require_images(ONE, 2, "FID", "the real set")
    with pytest.raises(ValueError, match="needs at least 1 image; the split has 0"):
        require_images(0, 1, "evaluation", "the split")
    require_images(ONE, 1, "anything")
    assert [(s.start, s.stop) for s in chunks(0, 5)] == [(0, 0)]  # one empty batch: shaped empty results


# --------------------------------------------------------------------------- pictures and widgets


def test_grid_png_of_no_image_is_a_picture_that_says_so():
    empty = grid_png(NONE, nrow=8, scale=2)
    width, height = png_size(empty)
    assert width >= 72 and height >= 28 * 2
    assert png_size(grid_png(ONE, nrow=8, scale=2)) == (2 * 28, 2 * 28)  # one image: no padding
    assert png_size(grid_png(DIGITS[0], scale=1)) == (28, 28)  # a single C x H x W image


def test_figures_of_no_image_say_so_and_one_image_is_drawn():
    for figure in (show_images(NONE, title="samples"), image_rows({"a": NONE, "b": NONE})):
        texts = [t.get_text() for ax in figure.axes for t in ax.texts]
        assert texts == ["0 images"]
    assert show_images(ONE).axes[0].images[0].get_array().shape[:2] == (28, 28)
    rows = image_rows({"original": ONE, "nothing yet": NONE})  # a short row is left blank
    assert [t.get_text() for t in rows.axes[0].get_yticklabels()] == ["original", "nothing yet"]
    assert interpolation_grid(ONE, 1, 1)
    with pytest.raises(ValueError, match="at least one row and one column"):
        interpolation_grid(NONE, 0, 0)
    with pytest.raises(ValueError, match="at least one row"):
        image_rows({})


def test_latent_scatter_and_class_bars_of_nothing():
    figure = latent_scatter(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), title="codes")
    assert figure.axes[0].get_title() == "codes (0 codes)"
    assert latent_scatter(torch.zeros(1, 3), torch.zeros(1, dtype=torch.long))
    assert class_bars({"generated": torch.zeros(10, dtype=torch.long)})  # no image in any class: zero bars
    with pytest.raises(ValueError, match="at least one set of class counts"):
        class_bars({})


def test_widgets_show_no_image_and_stay_usable():
    assert png_size(image_widget(NONE).value)[0] >= 72
    count = widgets.IntSlider(value=0, min=0, max=3)
    box = live_image({"n": count}, lambda n: DIGITS[:n])
    empty_picture = box.picture.value
    count.value = 2
    assert box.picture.value != empty_picture and png_size(box.picture.value) == (2 * (2 + 2 * 30), 2 * 32)


def test_dataset_browser_with_an_empty_first_set_and_switching_to_an_empty_split():
    data = load_dataset("mnist5k", "test")
    empty = data.subset(slice(0, 0))
    browser = dataset_browser({"empty test": empty, "digits": data, "also empty": empty})
    caption = browser.children[-1]
    assert caption.value == "empty test (test): 0 images"
    browser.controls["name"].value = "digits"
    assert caption.value.startswith("digits (test): images 0-31 of 1000")
    browser.controls["page"].value = 3
    browser.controls["name"].value = "also empty"
    assert caption.value == "also empty (test): 0 images" and browser.controls["page"].value == 0
    one = ImageSet("one", "test", data.images[:1], data.labels[:1], data.classes)
    browser.controls["name"].value = "digits"
    assert dataset_browser({"one": one}).children[-1].value.startswith("one (test): images 0-0 of 1")


# --------------------------------------------------------------------------- metrics


@pytest.fixture(scope="module")
def classifier():
    torch.manual_seed(0)
    return DigitClassifier().eval()


def test_classifier_scores_of_no_image_raise_and_of_one_image_work(classifier):
    for score in (softmax_predictions, predict, class_histogram, inception_score):
        with pytest.raises(ValueError, match="has 0"):
            score(NONE, classifier)
    assert softmax_predictions(ONE, classifier).shape == (1, 10)
    assert class_histogram(ONE, classifier).sum() == 1
    assert inception_score(ONE, classifier) == (pytest.approx(1.0), 0.0)  # one image: p(y|x) = p(y)
    with pytest.raises(ValueError, match="the class histogram has 0"):
        histogram_entropy([0] * 10)
    assert histogram_entropy([0, 1, 0]) == 0.0


def test_fid_needs_two_images_in_each_set_and_says_which(classifier, tmp_path):
    with pytest.raises(ValueError, match="FID features needs at least 1 image; the image set has 0"):
        image_features(NONE, classifier=classifier)
    assert image_features(ONE, classifier=classifier).shape == (1, 128)
    with pytest.raises(ValueError, match="the generated set has 1"):
        fid(DIGITS, ONE, classifier=classifier)
    with pytest.raises(ValueError, match="the real set has 0"):
        fid(NONE, DIGITS, classifier=classifier)
    with pytest.raises(ValueError, match="the real set has 1"):
        fid_from_features(np.zeros((1, 4)), np.zeros((5, 4)))
    labels = torch.arange(8) % 2
    with pytest.raises(ValueError, match="the generated set has 0"):
        per_class_fid(DIGITS, labels, NONE, labels[:0], classifier=classifier, num_classes=2)
    with pytest.raises(ValueError, match="one label per image"):
        per_class_fid(DIGITS, labels, DIGITS, labels[:3], classifier=classifier, num_classes=2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="needs at least 2 images; folder .*empty has 0"):
        fid_folders(tmp_path / "empty", tmp_path / "empty", classifier=classifier)
    score = fid_scorer(DIGITS, "classifier", "cpu")
    with pytest.raises(ValueError, match="the generated set has 1"):
        score(ONE)
    with pytest.raises(ValueError, match="the reference set has 0"):
        fid_scorer(NONE, "classifier", "cpu")


@pytest.mark.parametrize("measure", [ssim, psnr, pcc])
def test_image_comparisons_of_no_pair_raise_and_of_one_pair_work(measure):
    with pytest.raises(ValueError, match="the pair of batches has 0"):
        measure(NONE, NONE)
    assert measure(ONE, 255 - ONE).shape == (1,)


def test_chapter_04_measures_of_empty_sets(classifier):
    with pytest.raises(ValueError, match="the set 'prior' has 1"):
        generation_scores(np.zeros((5, 128)), {"prior": ONE}, classifier)
    with pytest.raises(ValueError, match="the set 'generated' has 0"):
        distribution_table({"generated": [0] * 10}, [str(d) for d in range(10)])
    with pytest.raises(ValueError, match="the class histogram has 0"):
        total_variation([0, 0], [1, 1])
    with pytest.raises(ValueError, match="the image set has 0"):
        mid_gray_share(NONE)
    with pytest.raises(ValueError, match="the reference set has 0"):
        nearest_image_distance(ONE, NONE)
    assert nearest_image_distance(ONE, ONE).tolist() == [0.0]
    with pytest.raises(ValueError, match="the pool has 0"):
        central_and_marginal(torch.zeros(0, 2), np.zeros(0))
    with pytest.raises(ValueError, match="needs at least 10 codes, got 3"):
        GaussianMixtureSampler(components=10).fit(torch.zeros(3, 2))
    knn = NearestNeighbourSampler(k=3).fit(torch.randn(20, 2))
    assert knn.sample(0).shape == (0, 2)


# --------------------------------------------------------------------------- models: encode, decode, sample


def test_vae_functions_on_no_image():
    torch.manual_seed(0)
    model = make_model(VAEConfig(model="vae", latent=8, width=4).resolved(), (1, 28, 28)).eval()
    assert vae_sample(model, 0).shape == (0, 1, 28, 28)
    assert vae_decode(model, torch.zeros(0, 8)).shape == (0, 1, 28, 28)
    split = Images(torch.zeros(0, 1, 28, 28), NONE, None, (), "test")
    assert vae_reconstruct(model, split).shape == (0, 1, 28, 28)
    with pytest.raises(ValueError, match="evaluation needs at least 1 image; the test split has 0"):
        vae_evaluate(model, split)
    mlp = MLPVAE(latent=2, hidden=20)
    with pytest.raises(ValueError, match="the split has 0"):
        split_elbo(mlp, torch.zeros(0, 784))
    assert encode_set(mlp, NONE).shape == (0, 2) and decode_codes(mlp, torch.zeros(0, 2)).shape == (0, 1, 28, 28)
    cvae = build_cvae("cvae", 2, 20, (1, 28, 28), 10)
    assert cvae_sample(cvae, 0, torch.zeros(0, dtype=torch.long)).shape == (0, 1, 28, 28)
    from cvae.train import Split

    assert cvae_encode_means(cvae, Split(torch.zeros(0, 784), torch.zeros(0, dtype=torch.long),
                                         (1, 28, 28), ())).shape == (0, 2)


def test_gan_and_vqvae_on_no_image():
    run = GanRun(config_for("smoke", loss="vanilla"), device="cpu")
    assert run.sample(0, seed=1).shape == (0, 1, 28, 28)
    model = build_vqvae(VQVAEConfig()).eval()
    maps = encode(model, NONE)
    assert maps.shape == (0, 7, 7) and decode(model, maps).shape == (0, 1, 28, 28)
    with pytest.raises(ValueError, match="the split has 0"):
        evaluate_vqvae(model, NONE, 0.1)
    with pytest.raises(ValueError, match="the training set has 0"):
        pixel_variance(NONE)
    prior = GatedPixelCNN(num_codes=128, channels=8, layers=2).eval()
    assert sample_pixelcnn(prior, 0, (7, 7)).shape == (0, 7, 7)
    with pytest.raises(ValueError, match="the set of code maps has 0"):
        code_nll(prior, maps)
    assert sample_code_gan(CodeGenerator(128, 7, 16, 16), 0).shape == (0, 7, 7)
    with pytest.raises(ValueError, match="the sample set has 0"):
        nearest_real_ssim(NONE, DIGITS)
    ssim_values, index = nearest_real_ssim(ONE, DIGITS)
    assert ssim_values.tolist() == [pytest.approx(1.0)] and index.tolist() == [0]


@pytest.mark.parametrize("family", ["gan", "vae", "cvae", "vqvae"])
def test_cli_sample_of_zero_images_exits_2(family, tmp_path, capsys):
    main = __import__(f"{family}.__main__", fromlist=["main"]).main
    code, _, err = run_command(main, capsys, "sample", "--ckpt", str(tmp_path / "model.pt"), "-n", "0",
                               "--out", str(tmp_path / "s.npz"))
    assert code == 2 and "expected a positive whole number, got '0'" in one_line(err)
