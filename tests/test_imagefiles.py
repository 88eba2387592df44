"""Reading odd image files: modes, corrupt files, cropping, folders, resize_folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from image_fixtures import (
    CUB_BAD,
    CUB_GOOD,
    make_cub_images,
    save_fake_image,
    save_palette_png,
    save_rgb,
    save_truncated_jpeg,
)
from PIL import Image, ImageFile

from utils.imagefiles import (
    UnreadableImageError,
    list_image_files,
    load_image,
    read_image_folder,
    resize_folder,
)


def test_rgb_file_keeps_its_pixels(tmp_path):
    path = tmp_path / "a.png"
    save_rgb(path, 30, 40)
    array = load_image(path)
    assert array.dtype == np.uint8 and array.shape == (30, 40, 3)
    assert np.array_equal(array, np.asarray(Image.open(path)))


@pytest.mark.parametrize("mode", ["L", "CMYK", "1", "RGBA", "LA", "I;16", "I", "F"])
def test_every_mode_becomes_rgb_uint8(tmp_path, mode):
    path = tmp_path / ("image.tif" if mode in ("I", "F", "CMYK") else "image.png")
    Image.fromarray(np.full((10, 12, 3), 200, np.uint8)).convert(mode).save(path)
    array = load_image(path)
    assert array.dtype == np.uint8 and array.shape == (10, 12, 3)


def test_gray_file_as_rgb_repeats_the_channel(tmp_path):
    path = tmp_path / "gray.jpg"
    Image.fromarray(np.tile(np.arange(0, 240, 10, dtype=np.uint8), (8, 1))).save(path, quality=100)
    array = load_image(path)
    assert np.array_equal(array[..., 0], array[..., 1]) and np.array_equal(array[..., 0], array[..., 2])


def test_sixteen_bit_gray_keeps_its_range(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.array([[0, 32896, 65535]], dtype=np.uint16)).save(path)
    assert Image.open(path).mode == "I;16"
    assert load_image(path, mode="L")[0, :, 0].tolist() == [0, 128, 255]


def test_transparent_palette_pixels_become_white(tmp_path):
    array = load_image(save_palette_png(tmp_path / "p.png"))
    assert array[0, 0].tolist() == [200, 30, 30]  # opaque colour 1 on the left
    assert array[0, -1].tolist() == [255, 255, 255]  # transparent colour 0 on the right


def test_cmyk_jpeg_is_converted(tmp_path):
    path = save_rgb(tmp_path / "c.jpg")
    Image.open(path).convert("CMYK").save(path)
    assert Image.open(path).mode == "CMYK"
    assert load_image(path, 16).shape == (16, 16, 3)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated_file_is_reported_not_loaded(tmp_path, suffix):
    path = save_truncated_jpeg(tmp_path / "t.jpg")
    if suffix == ".png":
        path = save_rgb(tmp_path / "t.png", 60, 80)
        path.write_bytes(path.read_bytes()[:400])
    with pytest.raises(UnreadableImageError, match="truncated"):
        load_image(path, 32)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_text_file_with_jpg_name_is_reported(tmp_path):
    with pytest.raises(UnreadableImageError, match="not an image"):
        load_image(save_fake_image(tmp_path / "fake.jpg"))


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(UnreadableImageError, match="not found"):
        load_image(tmp_path / "gone.jpg")


def test_center_crop_keeps_the_middle(tmp_path):
    stripes = np.zeros((60, 90, 3), np.uint8)
    stripes[:, :15] = (255, 0, 0)
    stripes[:, 15:75] = (0, 255, 0)
    stripes[:, 75:] = (0, 0, 255)
    path = tmp_path / "wide.png"
    Image.fromarray(stripes).save(path)
    square = load_image(path, 64)
    assert square.shape == (64, 64, 3)
    assert square[..., 1].min() == 255 and square[..., 0].max() == 0 and square[..., 2].max() == 0
    stretched = load_image(path, 64, crop=False)
    assert stretched[:, 0, 0].min() == 255  # the red stripe survives when nothing is cropped


def test_grayscale_target_has_one_channel(tmp_path):
    assert load_image(save_rgb(tmp_path / "a.jpg"), 8, mode="L").shape == (8, 8, 1)


def test_listing_is_recursive_sorted_and_skips_hidden_files(tmp_path):
    for name in [
        "b/2.jpg",
        "a/10.PNG",
        "a/9.jpeg",
        "top.bmp",
        ".hidden.jpg",
        "__MACOSX/a/._9.jpeg",
        "notes.txt",
    ]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    listed = [p.relative_to(tmp_path).as_posix() for p in list_image_files(tmp_path)]
    assert listed == ["a/10.PNG", "a/9.jpeg", "b/2.jpg", "top.bmp"]


def test_listing_a_missing_folder_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list_image_files(tmp_path / "nothing")


def test_folder_reads_into_a_labelled_tensor_and_reports_bad_files(tmp_path):
    images_dir = make_cub_images(tmp_path / "images")
    read = read_image_folder(images_dir, 16, labelled=True, progress=False)
    good = sum(len(names) for names in CUB_GOOD.values())
    assert tuple(read.images.shape) == (good, 3, 16, 16)
    assert read.classes == tuple(sorted(CUB_GOOD))
    assert read.labels.tolist() == [i for i, c in enumerate(sorted(CUB_GOOD)) for _ in CUB_GOOD[c]]
    skipped = {s.path.relative_to(images_dir).as_posix(): s.reason for s in read.skipped}
    assert set(skipped) == CUB_BAD
    assert all(reason for reason in skipped.values())


def _all_files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


def test_resize_folder_converts_good_files_and_lists_bad_ones(tmp_path):
    images_dir = make_cub_images(tmp_path / "in" / "images")
    before = _all_files(tmp_path)
    out = tmp_path / "out"
    written, skipped = resize_folder(images_dir, out, 32, progress=False)
    assert {s.path.relative_to(images_dir).as_posix() for s in skipped} == CUB_BAD
    assert len(written) == sum(len(names) for names in CUB_GOOD.values())
    for path in written:
        assert path.is_relative_to(out)
        with Image.open(path) as image:
            assert image.mode == "RGB" and image.size == (32, 32)
    expected = {
        f"{c}/{Path(n).with_suffix('.png' if n.endswith('.png') else '.jpg')}"
        for c in CUB_GOOD
        for n in CUB_GOOD[c]
    }
    assert {p.relative_to(out).as_posix() for p in written} == expected
    assert _all_files(tmp_path) - before == _all_files(out) | {out}  # nothing written anywhere else


def test_resize_folder_refuses_its_input_folder_or_a_folder_inside_it(tmp_path):
    images_dir = make_cub_images(tmp_path / "images")
    for out in (images_dir, images_dir / "resized", images_dir / "001.Black_footed_Albatross"):
        with pytest.raises(ValueError, match="must not be the input folder"):
            resize_folder(images_dir, out, 8, progress=False)
    assert not (images_dir / "resized").exists()


def test_resize_folder_does_not_follow_a_symlink_out_of_the_output_folder(tmp_path):
    images_dir = tmp_path / "images"
    save_rgb(images_dir / "birds" / "a.jpg")
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "birds").symlink_to(elsewhere, target_is_directory=True)
    written, skipped = resize_folder(images_dir, out, 8, progress=False)
    assert written == [] and "leave the output folder" in skipped[0].reason
    assert list(elsewhere.iterdir()) == []


def test_resize_folder_png_output_is_lossless_and_name_clashes_are_skipped(tmp_path):
    save_rgb(tmp_path / "in" / "a.jpg", 8, 8)
    save_rgb(tmp_path / "in" / "a.bmp", 8, 8, seed=1)
    written, skipped = resize_folder(
        tmp_path / "in", tmp_path / "out", 8, output_format="png", progress=False
    )
    assert [p.name for p in written] == ["a.png"]
    assert len(skipped) == 1 and "same output file" in skipped[0].reason
    assert np.array_equal(load_image(written[0]), load_image(tmp_path / "in" / "a.bmp"))


def test_resize_folder_with_a_missing_input_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resize_folder(tmp_path / "missing", tmp_path / "out", 32)
