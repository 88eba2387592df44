"""Figures for the notebooks: image grids, labelled rows, loss curves, latent scatters, class bars.

Every function returns its matplotlib ``Figure``.  Given ``ax``, it draws there and the caller owns
the figure; otherwise it makes a new figure and closes it in pyplot, so a notebook shows it exactly
once: when the call is the cell's last expression, or with ``display(fig)``.  Never ``plt.show()``.

Images are uint8, ``N x C x H x W`` tensors (as the data sets hold them) or the ``N x H x W (x C)``
arrays of ``samples.npz``; gray and RGB both work.  An empty batch is a picture that says "0 images"
(a widget showing an empty split stays usable); a figure that cannot mean anything without images
(an interpolation grid) raises a ``ValueError`` naming the count.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from PIL import Image, ImageDraw
from torchvision.utils import make_grid

History = Mapping[str, Sequence]  # metric name -> list of (step, value), as utils.training records it
IMAGE_INCHES = 0.7  # on-screen size of one small image in a grid
PAD_VALUE = 255
NO_IMAGES = "0 images"  # what an empty picture says


# --------------------------------------------------------------------------- helpers


def grid_png(images: torch.Tensor, nrow: int = 8, scale: int = 2, padding: int = 2) -> bytes:
    """uint8 ``N x C x H x W`` (or ``C x H x W``) -> PNG bytes of a grid, upscaled ``scale`` times (nearest).

    No images (``N = 0``) give a small picture that says "0 images".
    """
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if len(images) == 0:
        picture = _empty_picture(*images.shape[-2:])
    else:
        grid = make_grid(images.detach().cpu(), nrow=nrow, padding=padding, pad_value=255)
        picture = Image.fromarray(grid.permute(1, 2, 0).numpy())
    if scale != 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()




def _empty_picture(height: int, width: int) -> Image.Image:
    """A white picture about one image high (at least 28 pixels) with "0 images" written on it."""
    picture = Image.new("RGB", (max(72, width), max(28, height)), (255, 255, 255))
    ImageDraw.Draw(picture).text((4, picture.height // 2 - 6), NO_IMAGES, fill=(90, 90, 90))
    return picture


def _say_no_images(ax: Axes, title: str | None) -> None:
    ax.text(0.5, 0.5, NO_IMAGES, ha="center", va="center", color="0.35", transform=ax.transAxes)
    _show_picture(ax, np.full((1, 1, 3), PAD_VALUE, dtype=np.uint8), title)


def _figure(ax: Axes | None, figsize: tuple[float, float], projection: str | None = None) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig = plt.figure(figsize=figsize)
    plt.close(fig)  # the caller shows it (last expression or display): never twice
    return fig, fig.add_subplot(projection=projection)


def as_image_batch(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 ``N x C x H x W`` from a tensor or array in that layout, ``N x H x W`` or ``N x H x W x C``."""
    batch = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    if batch.dtype != torch.uint8:
        raise TypeError(f"images must be uint8 (see utils.data.to_uint8), got {batch.dtype}")
    if batch.dim() == 3:
        batch = batch.unsqueeze(1)
    if batch.dim() != 4:
        raise ValueError(f"expected a batch of images N x C x H x W, got shape {tuple(batch.shape)}")
    if batch.shape[1] not in (1, 3) and batch.shape[-1] in (1, 3):
        batch = batch.permute(0, 3, 1, 2)
    return batch.detach().cpu()


def _grid(images: torch.Tensor, nrow: int, padding: int = 2) -> np.ndarray:
    """One H x W x 3 uint8 picture of the batch, ``nrow`` images per row."""
    grid = make_grid(images, nrow=nrow, padding=padding, pad_value=PAD_VALUE)
    return grid.permute(1, 2, 0).numpy()


def _grid_figsize(rows: int, cols: int, height: int, width: int) -> tuple[float, float]:
    """About IMAGE_INCHES per image, at most 12 inches wide, room for a title."""
    inches_per_pixel = min(IMAGE_INCHES, 12 / max(cols, 1)) / max(height, width)
    return max(2.0, cols * width * inches_per_pixel), max(1.0, rows * height * inches_per_pixel) + 0.4


def _show_picture(ax: Axes, picture: np.ndarray, title: str | None) -> None:
    ax.imshow(picture, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title)


def _to_numpy(values: torch.Tensor | np.ndarray | Sequence) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


def _class_colors(num_classes: int) -> list:
    cmap = plt.get_cmap("tab10" if num_classes <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(num_classes)]


# --------------------------------------------------------------------------- image figures


def show_images(
    images: torch.Tensor | np.ndarray,
    nrow: int = 8,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """A grid of images, ``nrow`` per row (a figure that says "0 images" for an empty batch)."""
    batch = as_image_batch(images)
    if len(batch) == 0:
        fig, ax = _figure(ax, (2.0, 1.0))
        _say_no_images(ax, title)
        return fig
    rows = -(-len(batch) // nrow)
    fig, ax = _figure(ax, _grid_figsize(rows, min(nrow, len(batch)), *batch.shape[-2:]))
    _show_picture(ax, _grid(batch, nrow), title)
    return fig


def interpolation_grid(
    images: torch.Tensor | np.ndarray,
    n_rows: int,
    n_cols: int,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """``n_rows`` interpolation paths of ``n_cols`` steps each, given row by row."""
    batch = as_image_batch(images)
    if n_rows < 1 or n_cols < 1:
        raise ValueError(f"an interpolation grid needs at least one row and one column, got {n_rows} x {n_cols}")
    if len(batch) != n_rows * n_cols:
        raise ValueError(f"{n_rows} x {n_cols} grid needs {n_rows * n_cols} images, got {len(batch)}")
    fig, ax = _figure(ax, _grid_figsize(n_rows, n_cols, *batch.shape[-2:]))
    _show_picture(ax, _grid(batch, n_cols), title)
    return fig


def image_rows(
    rows: Mapping[str, torch.Tensor | np.ndarray],
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Labelled rows of images, e.g. ``{"original": x, "reconstruction": x_hat}``; short rows are left blank.

    Rows without images stay blank; when every row is empty the figure says "0 images".
    """
    if not rows:
        raise ValueError("image_rows needs at least one row, e.g. {'samples': images}")
    batches = [as_image_batch(images) for images in rows.values()]
    cols = max(len(batch) for batch in batches)
    if cols == 0:
        fig, ax = _figure(ax, (2.0, 1.0))
        _say_no_images(ax, title)
        return fig
    channels = max(batch.shape[1] for batch in batches)
    height, width = batches[0].shape[-2:]
    padded = []
    for batch in batches:
        if batch.shape[-2:] != (height, width):
            raise ValueError(f"all rows need images of one size; got {tuple(batch.shape[-2:])} and {(height, width)}")
        blank = torch.full((cols - len(batch), channels, height, width), PAD_VALUE, dtype=torch.uint8)
        padded.append(torch.cat([batch.expand(-1, channels, -1, -1), blank]))
    padding = 2
    fig, ax = _figure(ax, _grid_figsize(len(batches), cols, height, width))
    _show_picture(ax, _grid(torch.cat(padded), cols, padding), title)
    centres = [padding + row * (height + padding) + height / 2 for row in range(len(batches))]
    ax.set_yticks(centres, labels=list(rows))
    ax.tick_params(axis="y", length=0)
    return fig


# --------------------------------------------------------------------------- curves and scatters


def _steps_and_values(points: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) from a list of (step, value) pairs or of plain values (steps 0, 1, ...)."""
    array = np.asarray(points, dtype=np.float64)
    if array.ndim == 2 and array.shape[1] == 2:
        return array[:, 0], array[:, 1]
    return np.arange(len(array)), array.reshape(-1)


def _curves(histories: Mapping[str, History | Sequence], metrics: Sequence[str] | None) -> dict[str, Sequence]:
    """Flatten ``{run: {metric: points}}`` (or ``{run: points}``) into ``{legend label: points}``."""
    curves = {}
    for run, history in histories.items():
        if not isinstance(history, Mapping):
            curves[run] = history
            continue
        chosen = [name for name in (metrics or history) if name in history]
        for metric in chosen:
            if len(histories) == 1:
                label = metric
            elif len(chosen) == 1:
                label = run
            else:
                label = f"{run}: {metric}"
            curves[label] = history[metric]
    return curves


def loss_curves(
    histories: Mapping[str, History | Sequence],
    metrics: Sequence[str] | None = None,
    title: str | None = None,
    ax: Axes | None = None,
    log_scale: bool = False,
    xlabel: str = "step",
    ylabel: str = "loss",
) -> Figure:
    """Several runs on one axes: ``{run: {metric: [(step, value), ...]}}`` or ``{run: [(step, value), ...]}``.

    ``metrics`` picks which metrics of each history to draw (all by default).
    """
    fig, ax = _figure(ax, (6.4, 4.0))
    for label, points in _curves(histories, metrics).items():
        steps, values = _steps_and_values(points)
        ax.plot(steps, values, label=label)
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if ax.lines:
        ax.legend()
    if title:
        ax.set_title(title)
    return fig


def latent_scatter(
    codes: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
    ax: Axes | None = None,
    point_size: float = 4.0,
    alpha: float = 0.6,
) -> Figure:
    """2-D or 3-D latent codes (N x 2 or N x 3) coloured by class, with a legend of class names."""
    points = _to_numpy(codes).astype(np.float64)
    if points.ndim != 2 or points.shape[1] not in (2, 3):
        raise ValueError(f"latent_scatter draws N x 2 or N x 3 codes, got shape {points.shape}")
    dims = points.shape[1]
    fig, ax = _figure(ax, (6.5, 5.0), projection="3d" if dims == 3 else None)
    if len(points) == 0:
        title = f"{title} (0 codes)" if title else "0 codes"
    elif labels is None:
        ax.scatter(*points.T, s=point_size, alpha=alpha)
    else:
        classes = _to_numpy(labels).astype(np.int64)
        names = list(class_names) if class_names is not None else [str(c) for c in range(classes.max() + 1)]
        for label, color in zip(range(len(names)), _class_colors(len(names)), strict=True):
            members = points[classes == label]
            if len(members):
                ax.scatter(*members.T, s=point_size, alpha=alpha, color=color, label=names[label])
        ax.legend(markerscale=3, fontsize="small", loc="upper left", bbox_to_anchor=(1.02 if dims == 2 else 1.1, 1))
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    if dims == 3:
        ax.set_zlabel("z3")
    if title:
        ax.set_title(title)
    return fig


def class_bars(
    counts_by_name: Mapping[str, torch.Tensor | np.ndarray | Sequence[int]],
    class_names: Sequence[str] | None = None,
    title: str | None = None,
    ax: Axes | None = None,
    normalize: bool = True,
) -> Figure:
    """Grouped bars of class counts, e.g. ``{"training set": ..., "generated": ...}``.

    ``normalize`` shows fractions, so sets of different sizes compare.
    """
    counts = {name: _to_numpy(values).astype(np.float64).reshape(-1) for name, values in counts_by_name.items()}
    if not counts or not any(len(values) for values in counts.values()):
        raise ValueError("class_bars needs at least one set of class counts, e.g. {'generated': counts}")
    num_classes = max(len(values) for values in counts.values())
    names = list(class_names) if class_names is not None else [str(c) for c in range(num_classes)]
    width = 0.8 / len(counts)
    fig, ax = _figure(ax, (max(6.0, 0.5 * num_classes * len(counts)), 3.5))
    positions = np.arange(num_classes)
    for index, (name, values) in enumerate(counts.items()):
        heights = np.zeros(num_classes)
        heights[: len(values)] = values / values.sum() if normalize and values.sum() > 0 else values
        ax.bar(positions + (index - (len(counts) - 1) / 2) * width, heights, width, label=name)
    ax.set_xticks(positions, labels=names)
    ax.set_ylabel("fraction of images" if normalize else "images")
    ax.legend()
    if title:
        ax.set_title(title)
    return fig


def save_figure(fig: Figure, path: Path | str, dpi: int = 150) -> Path:
    """Write ``fig`` (PNG, PDF or SVG by the suffix), making the folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path
