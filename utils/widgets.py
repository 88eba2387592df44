"""ipywidgets explorers: a picture that changes as sliders and dropdowns move.

Pictures are ``widgets.Image`` PNGs (not matplotlib figures in an Output), so
they render the same in JupyterLab and Colab, never spill into the cell's
outputs, and a changed picture is visible as a changed ``src`` in a browser test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import ipywidgets as widgets
import torch

from utils.data import ImageSet
from utils.plotting import grid_png  # noqa: F401  (re-exported: explorers and tests use it from here)


def image_widget(images: torch.Tensor, nrow: int = 8, scale: int = 2) -> widgets.Image:
    return widgets.Image(value=grid_png(images, nrow, scale), format="png")


def live_image(controls: Mapping[str, widgets.ValueWidget], render: Callable[..., torch.Tensor],
               nrow: int = 8, scale: int = 2, layout: str = "vertical") -> widgets.Box:
    """Controls plus a picture that ``render(**values)`` redraws whenever a control moves.

    ``render`` returns uint8 images (``N x C x H x W``); the box exposes
    ``.picture`` and ``.controls`` so notebooks and tests can drive it.
    """
    picture = widgets.Image(format="png")

    def redraw(_change=None) -> None:
        picture.value = grid_png(render(**{name: c.value for name, c in controls.items()}), nrow, scale)

    for control in controls.values():
        control.observe(redraw, names="value")
    redraw()
    panel = widgets.VBox(list(controls.values()))
    box = widgets.VBox([panel, picture]) if layout == "vertical" else widgets.HBox([panel, picture])
    box.picture, box.controls, box.redraw = picture, dict(controls), redraw
    return box


def dataset_browser(sets: Mapping[str, ImageSet], per_page: int = 32, nrow: int = 8, scale: int = 2) -> widgets.Box:
    """Browse whole data sets page by page: a dropdown for the set, a slider for the page.

    An empty set shows a picture and a caption that say "0 images"; the other sets stay browsable.
    """
    if not sets:
        raise ValueError("dataset_browser needs at least one data set")
    first = next(iter(sets.values()))
    choose = widgets.Dropdown(options=list(sets), description="data set")
    page = widgets.IntSlider(value=0, min=0, max=_last_page(first, per_page), description="page",
                             continuous_update=False)
    caption = widgets.Label()

    def on_set_change(change) -> None:
        page.max = _last_page(sets[change["new"]], per_page)
        page.value = 0

    choose.observe(on_set_change, names="value")

    def render(name: str, page: int) -> torch.Tensor:
        data = sets[name]
        start = page * per_page
        shown = data.subset(slice(start, start + per_page))
        if len(shown) == 0:  # an empty split (a resized CUB folder has no test images): say so, stay usable
            caption.value = f"{name} ({data.split}): 0 images"
            return shown.images
        labels = "" if shown.labels is None else ", ".join(data.classes[i] for i in shown.labels[:nrow].tolist())
        caption.value = (f"{name} ({data.split}): images {start}-{start + len(shown) - 1} of {len(data)}, "
                         f"{tuple(data.image_shape)}" + (f"; first row: {labels}" if labels else ""))
        return shown.images

    box = live_image({"name": choose, "page": page}, render, nrow=nrow, scale=scale)
    box.children = (*box.children, caption)
    return box


def _last_page(data: ImageSet, per_page: int) -> int:
    return max(0, (len(data) - 1) // per_page)
