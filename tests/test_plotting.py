"""Plotting helpers: each returns one Figure with the expected axes and artists, gray and RGB alike."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

from utils import plotting

DIGITS = [str(d) for d in range(10)]


def images(n: int, channels: int, size: int = 28, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, size, size), generator=generator, dtype=torch.uint8)


@pytest.fixture(autouse=True)
def no_figures_left_open():
    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before, "a plotting helper left a pyplot figure open"


def only_axes(fig: Figure):
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 1
    return fig.axes[0]


@pytest.mark.parametrize("channels", [1, 3])
def test_show_images_draws_one_grid(channels):
    fig = plotting.show_images(images(10, channels), nrow=5, title="samples")
    ax = only_axes(fig)
    assert len(ax.images) == 1 and ax.get_title() == "samples"
    height, width, depth = ax.images[0].get_array().shape
    assert depth == 3 and height == 2 + 2 * 30 and width == 2 + 5 * 30  # 2 rows, 5 columns, 2-px padding


def test_show_images_takes_sample_file_layouts():
    gray = images(4, 1).numpy()[:, 0]  # N x H x W
    rgb = images(4, 3).permute(0, 2, 3, 1).numpy()  # N x H x W x C
    assert len(only_axes(plotting.show_images(gray)).images) == 1
    assert len(only_axes(plotting.show_images(rgb)).images) == 1
    with pytest.raises(TypeError, match="uint8"):
        plotting.show_images(torch.rand(4, 1, 28, 28))


def test_drawing_into_a_given_axes_returns_its_figure():
    fig, (left, right) = plt.subplots(1, 2)
    try:
        assert plotting.show_images(images(4, 1), ax=left) is fig
        assert plotting.class_bars({"train": [1, 2, 3]}, ax=right) is fig
        assert len(left.images) == 1 and len(right.containers) == 1
    finally:
        plt.close(fig)


@pytest.mark.parametrize("channels", [1, 3])
def test_image_rows_labels_each_row(channels):
    rows = {"original": images(6, channels), "reconstruction": images(6, channels, seed=1), "short": images(3, 1)}
    ax = only_axes(plotting.image_rows(rows, title="reconstructions"))
    assert len(ax.images) == 1
    assert [label.get_text() for label in ax.get_yticklabels()] == list(rows)
    assert ax.images[0].get_array().shape[:2] == (2 + 3 * 30, 2 + 6 * 30)


@pytest.mark.parametrize("channels", [1, 3])
def test_interpolation_grid(channels):
    ax = only_axes(plotting.interpolation_grid(images(12, channels), n_rows=2, n_cols=6))
    assert ax.images[0].get_array().shape[:2] == (2 + 2 * 30, 2 + 6 * 30)
    with pytest.raises(ValueError, match="needs 12 images"):
        plotting.interpolation_grid(images(11, channels), n_rows=2, n_cols=6)


def history(scale: float) -> dict[str, list[tuple[int, float]]]:
    steps = range(0, 100, 10)
    return {"recon": [(s, scale / (s + 1)) for s in steps], "kl": [(s, 1 + s / 50) for s in steps]}


def legend_texts(ax) -> list[str]:
    return [text.get_text() for text in ax.get_legend().get_texts()]


def test_loss_curves_of_several_runs():
    ax = only_axes(plotting.loss_curves({"vae": history(100), "cvae": history(80)}, log_scale=True, title="loss"))
    assert len(ax.lines) == 4 and ax.get_yscale() == "log"
    assert legend_texts(ax) == ["vae: recon", "vae: kl", "cvae: recon", "cvae: kl"]
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), np.arange(0, 100, 10))


def test_loss_curves_label_by_run_or_by_metric():
    ax = only_axes(plotting.loss_curves({"vae": history(100), "cvae": history(80)}, metrics=["recon"]))
    assert legend_texts(ax) == ["vae", "cvae"] and ax.get_yscale() == "linear"
    ax = only_axes(plotting.loss_curves({"vae": history(100)}))
    assert legend_texts(ax) == ["recon", "kl"]
    ax = only_axes(plotting.loss_curves({"plain values": [3.0, 2.0, 1.5], "pairs": [(0, 3.0), (5, 2.0)]}))
    assert legend_texts(ax) == ["plain values", "pairs"]
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [0, 1, 2])


def clustered_codes(dims: int, per_class: int = 20) -> tuple[np.ndarray, np.ndarray]:
    labels = np.repeat(np.arange(10), per_class)
    codes = np.random.default_rng(0).normal(size=(len(labels), dims)) + labels[:, None]
    return codes, labels


@pytest.mark.parametrize("dims", [2, 3])
def test_latent_scatter_colours_each_class(dims):
    codes, labels = clustered_codes(dims)
    ax = only_axes(plotting.latent_scatter(torch.as_tensor(codes), torch.as_tensor(labels), DIGITS, title="z"))
    assert len(ax.collections) == 10 and legend_texts(ax) == DIGITS
    assert ax.name == ("3d" if dims == 3 else "rectilinear")


def test_latent_scatter_without_labels_and_bad_shapes():
    codes, _ = clustered_codes(2)
    ax = only_axes(plotting.latent_scatter(codes))
    assert len(ax.collections) == 1 and ax.get_legend() is None
    with pytest.raises(ValueError, match="N x 2 or N x 3"):
        plotting.latent_scatter(np.zeros((5, 4)))


def test_class_bars_groups_sets_side_by_side():
    counts = {"training set": torch.full((10,), 400), "generated": np.arange(10) * 30}
    ax = only_axes(plotting.class_bars(counts, DIGITS, title="digits"))
    bars = [container for container in ax.containers if isinstance(container, BarContainer)]
    assert len(bars) == 2 and all(len(container.patches) == 10 for container in bars)
    for container in bars:
        assert sum(patch.get_height() for patch in container.patches) == pytest.approx(1.0)
    assert [label.get_text() for label in ax.get_xticklabels()] == DIGITS
    raw = only_axes(plotting.class_bars(counts, normalize=False))
    assert raw.containers[0].patches[0].get_height() == 400


def test_save_figure_makes_the_folder(tmp_path):
    path = plotting.save_figure(plotting.show_images(images(4, 3)), tmp_path / "figures" / "grid.png")
    assert path.exists() and path.read_bytes()[:4] == b"\x89PNG"
