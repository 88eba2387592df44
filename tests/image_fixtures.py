"""Small on-disk fixtures in the real formats: a CUB-like folder with bad files, OASIS, Food-101, COCO."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

CUB_GOOD = {  # class folder -> readable files (one grayscale, one CMYK, one palette PNG among them)
    "001.Black_footed_Albatross": ["Black_Footed_Albatross_0001.jpg", "Black_Footed_Albatross_0002.jpg"],
    "002.Laysan_Albatross": [
        "Laysan_Albatross_0001.jpg",
        "Laysan_Albatross_gray.jpg",
        "Laysan_Albatross_cmyk.jpg",
    ],
    "003.Sooty_Albatross": ["Sooty_Albatross_0001.jpg", "Sooty_Albatross_palette.png"],
}
CUB_BAD = {
    "003.Sooty_Albatross/Sooty_Albatross_truncated.jpg",
    "003.Sooty_Albatross/Sooty_Albatross_fake.jpg",
}
CUB_TEST = {
    "001.Black_footed_Albatross/Black_Footed_Albatross_0002",
    "002.Laysan_Albatross/Laysan_Albatross_0001",
}


def random_rgb(height: int = 30, width: int = 40, seed: int = 0) -> np.ndarray:
    """A smooth colour gradient plus noise: compresses like a photo, differs by seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, np.full_like(x, rng.integers(0, 256))], axis=-1)
    noisy = base + rng.normal(0, 10, size=base.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def save_rgb(path: Path, height: int = 30, width: int = 40, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(random_rgb(height, width, seed)).save(path)
    return path


def save_truncated_jpeg(path: Path, seed: int = 0) -> Path:
    save_rgb(path, 60, 80, seed)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def save_fake_image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("<html>Google Drive quota exceeded</html>\n")
    return path


def save_palette_png(path: Path) -> Path:
    """A palette PNG whose colour 0 is transparent (its pixels must come out white)."""
    image = Image.new("P", (24, 24), 0)
    image.putpalette([0, 0, 0, 200, 30, 30] + [0] * 762)
    image.paste(1, (0, 0, 12, 24))
    image.info["transparency"] = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, transparency=0)
    return path


def cub_extra_names(extra_per_class: int) -> list[str]:
    """``class/name`` of the plain RGB JPEGs :func:`make_cub_images` adds to each class of ``CUB_GOOD``."""
    return [
        f"{folder}/{folder.split('.', 1)[1]}_{1000 + i:04d}.jpg" for folder in CUB_GOOD for i in range(extra_per_class)
    ]


def make_cub_images(images_dir: Path, extra_per_class: int = 0, bad: bool = True) -> Path:
    """``images/<class>/*``: good RGB, grayscale, CMYK and palette files, a truncated JPEG and a fake one.

    ``extra_per_class`` more RGB JPEGs in every class (:func:`cub_extra_names`); ``bad=False`` leaves out the
    truncated and the fake file.
    """
    seed = 0
    for folder, names in CUB_GOOD.items():
        for name in names:
            path = images_dir / folder / name
            seed += 1
            if "gray" in name:
                save_rgb(path, seed=seed)
                Image.open(path).convert("L").save(path)
            elif "cmyk" in name:
                save_rgb(path, seed=seed)
                Image.open(path).convert("CMYK").save(path)
            elif "palette" in name:
                save_palette_png(path)
            else:
                save_rgb(path, 30 + seed, 40, seed=seed)
    for index, name in enumerate(cub_extra_names(extra_per_class)):
        save_rgb(images_dir / name, 48, 64, seed=1000 + index)
    if bad:
        save_truncated_jpeg(images_dir / "003.Sooty_Albatross" / "Sooty_Albatross_truncated.jpg")
        save_fake_image(images_dir / "003.Sooty_Albatross" / "Sooty_Albatross_fake.jpg")
    return images_dir


def cub_extra_test_names(extra_per_class: int) -> set[str]:
    """The extra images (``class/name`` without suffix) that :func:`make_cub_tree` marks as test: every second."""
    return {str(Path(n).with_suffix("")) for n in cub_extra_names(extra_per_class)[1::2]}


def make_cub_tree(root: Path, extra_per_class: int = 0, bad: bool = True) -> Path:
    """``root/CUB_200_2011/`` with ``images/``, ``images.txt`` and ``train_test_split.txt``.

    ``CUB_TEST`` and every second extra image (:func:`cub_extra_test_names`) are test images.
    """
    cub = root / "CUB_200_2011"
    make_cub_images(cub / "images", extra_per_class, bad)
    names = sorted(f"{folder}/{name}" for folder, files in CUB_GOOD.items() for name in files)
    names += sorted(cub_extra_names(extra_per_class)) + (sorted(CUB_BAD) if bad else [])
    (cub / "images.txt").write_text("".join(f"{i} {n}\n" for i, n in enumerate(names, 1)))
    test = CUB_TEST | cub_extra_test_names(extra_per_class)
    flags = ["0" if str(Path(n).with_suffix("")) in test else "1" for n in names]
    (cub / "train_test_split.txt").write_text("".join(f"{i} {f}\n" for i, f in enumerate(flags, 1)))
    return cub


OASIS_SLICES = {"train": 3, "test": 2, "validate": 1}
OASIS_EXPECTED = {"train": 4, "test": 2, "validate": 1}  # train also has one 128 px RGB slice


def make_oasis_tree(base: Path, slices: dict[str, int] | None = None) -> Path:
    """Kaggle's layout: ``keras_png_slices_data/keras_png_slices_{split,seg_split}/case_*.nii.png``.

    ``slices``: 256 x 256 slices per split (``OASIS_SLICES`` by default); train also gets one 128 px RGB slice.
    """
    data = base / "keras_png_slices_data"
    rng = np.random.default_rng(0)
    for split, count in (slices or OASIS_SLICES).items():
        for i in range(count):
            slice_ = rng.integers(0, 256, size=(256, 256), dtype=np.uint8)
            _save_png(data / f"keras_png_slices_{split}" / f"case_{i:03d}_slice_0.nii.png", slice_)
            _save_png(
                data / f"keras_png_slices_seg_{split}" / f"seg_{i:03d}_slice_0.nii.png", slice_ // 85 * 85
            )
        _save_png(
            data / f"keras_png_slices_seg_{split}" / "seg_extra.nii.png", np.zeros((256, 256), np.uint8)
        )
    # a slice of another size and mode: resized to 256 x 256 and made gray
    Image.fromarray(random_rgb(128, 128)).save(data / "keras_png_slices_train" / "case_099_slice_0.nii.png")
    return base


def _save_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


FOOD_CLASSES = ("apple_pie", "baby_back_ribs", "waffles")


def make_food101_tree(root: Path, train_per_class: int = 3, test_per_class: int = 1) -> Path:
    """``root/food-101/`` as torchvision's ``Food101`` reads it: meta/<split>.json, classes.txt, images/.

    ``FOOD_CLASSES`` with ``train_per_class`` / ``test_per_class`` images each; the first waffle is grayscale.
    """
    base = root / "food-101"
    listing: dict[str, dict[str, list[str]]] = {"train": {}, "test": {}}
    seed = 100
    for name in FOOD_CLASSES:
        for split, count in (("train", train_per_class), ("test", test_per_class)):
            stems = []
            for _ in range(count):
                seed += 1
                stem = f"{name}/{seed}"
                save_rgb(base / "images" / f"{stem}.jpg", 90, 120, seed)
                stems.append(stem)
            listing[split][name] = stems
    gray = base / "images" / listing["train"]["waffles"][0]
    Image.open(f"{gray}.jpg").convert("L").save(f"{gray}.jpg")
    (base / "meta").mkdir(parents=True)
    for split, classes in listing.items():
        (base / "meta" / f"{split}.json").write_text(json.dumps(classes))
    (base / "meta" / "classes.txt").write_text("\n".join(FOOD_CLASSES) + "\n")
    return base


def make_coco_tree(base: Path, train: str = "train2017", validation: str = "val2017", train_count: int = 3,
                   validation_count: int = 2) -> Path:
    """COCO's ``train2017/`` and ``val2017/`` folders of JPEGs named by image id; the first validation one is gray."""
    first_validation = max(10, train_count)  # ids are unique across both folders, as COCO's are
    for i in range(train_count):
        save_rgb(base / train / f"{i:012d}.jpg", 48, 64, seed=200 + i)
    for i in range(validation_count):
        save_rgb(base / validation / f"{first_validation + i:012d}.jpg", 64, 48, seed=300 + train_count + i - 3)
    gray = base / validation / f"{first_validation:012d}.jpg"
    if validation_count:
        Image.open(gray).convert("L").save(gray)
    return base


def keep_offline(monkeypatch, tmp_path: Path) -> None:
    """No test may reach the network or read the user's folders: downloads fail, ``COURSE_DATA`` is a tmp folder."""
    import utils.sources.cub
    import utils.sources.food101
    from utils.downloads import DownloadError

    def no_network(*args, **kwargs):
        raise DownloadError("offline in tests")

    monkeypatch.setattr(utils.sources.cub, "gdown_download", no_network)
    monkeypatch.setattr(utils.sources.cub, "download_file", no_network)
    monkeypatch.setattr(utils.sources.food101, "download_file", no_network)
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "default_root"))
    for variable in ("COURSE_COCO_DIR", "COURSE_OASIS"):
        monkeypatch.delenv(variable, raising=False)
