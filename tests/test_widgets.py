import torch

from utils.data import load_all_splits
from utils.widgets import dataset_browser, grid_png, live_image


def test_grid_png_is_a_png():
    png = grid_png(torch.zeros(4, 3, 8, 8, dtype=torch.uint8), nrow=2)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_browser_picture_follows_the_controls():
    splits = load_all_splits("mnist5k")
    browser = dataset_browser({"train": splits["train"], "test": splits["test"]}, per_page=16)
    first = browser.picture.value
    browser.controls["page"].value = 30  # rows are sorted by digit: page 30 shows other digits
    assert browser.picture.value != first
    browser.controls["name"].value = "test"
    assert browser.controls["page"].value == 0 and browser.controls["page"].max == 62


def test_live_image_redraws_on_change():
    import ipywidgets as widgets

    slider = widgets.IntSlider(value=0, min=0, max=255)
    box = live_image({"level": slider}, lambda level: torch.full((1, 1, 4, 4), level, dtype=torch.uint8))
    before = box.picture.value
    slider.value = 200
    assert box.picture.value != before
