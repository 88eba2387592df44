"""The course's digit classifier: the instrument that reads generated digits.

A small CNN (:class:`DigitClassifier`) trained once on the embedded ``mnist5k`` train split (about half a
minute on two CPU cores, with random affine augmentation) and cached under ``checkpoints/classifier/``.
Its softmax gives the predictions the chapters count (:func:`predict`); its 128-d embedding gives the
features of classifier-FID (``utils.fid``).  All image arguments are uint8 tensors ``N x C x H x W``.
"""

from __future__ import annotations

import contextlib
import pickle
import time
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from utils.augment import random_affine
from utils.config import checkpoint_dir
from utils.data import (
    EMBEDDED,
    ImageSet,
    IndexBatches,
    check_images,
    chunks,
    load_dataset,
    long_progress,
    require_images,
    to_float,
)
from utils.devices import pick_device, small_model_threads
from utils.files import atomic_write
from utils.progress import tqdm

CLASSIFIER_VERSION = 3  # bump when the architecture or training recipe changes: cached weights retrain


CLASSIFIER_SEED = 0


CLASSIFIER_SIZE = 28


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.MaxPool2d(2),  # before BatchNorm and ReLU: they then run on a quarter of the pixels
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class DigitClassifier(nn.Module):
    """A small CNN for 28x28 digits: three conv blocks, a 128-d embedding, a linear head.

    Takes float images in ``[0, 1]`` of any size (resized to 28x28) and any channel count
    (averaged to gray).  :meth:`features` is the embedding (before the ReLU, so no dead
    dimensions) that classifier-FID uses.
    """

    MEAN, STD = 0.1307, 0.3081  # MNIST pixel statistics

    def __init__(self, width: int = 16, feature_dim: int = 128, num_classes: int = 10, dropout: float = 0.3):
        super().__init__()
        self.feature_dim = feature_dim
        self.embed = nn.Sequential(
            _conv_block(1, width),  # 28 -> 14
            _conv_block(width, 2 * width),  # 14 -> 7
            _conv_block(2 * width, 4 * width),  # 7 -> 3
            nn.Flatten(),
            nn.Linear(4 * width * 9, feature_dim, bias=False),
            nn.BatchNorm1d(feature_dim),
        )
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(dropout), nn.Linear(feature_dim, num_classes))

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        gray = images.mean(dim=1, keepdim=True) if images.shape[1] != 1 else images
        size = (CLASSIFIER_SIZE, CLASSIFIER_SIZE)
        if gray.shape[-2:] != size:
            gray = F.interpolate(gray, size=size, mode="bilinear", antialias=True)
        return (gray - self.MEAN) / self.STD

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.embed(self.prepare(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


def train_digit_classifier(
    train: ImageSet,
    device: torch.device | str | None = None,
    epochs: int = 8,
    batch_size: int = 64,
    max_lr: float = 1e-2,
    seed: int = CLASSIFIER_SEED,
    verbose: bool = True,
) -> DigitClassifier:
    """Train a :class:`DigitClassifier` with in-batch random affine augmentation and a one-cycle schedule."""
    device = pick_device(device)
    cuda_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_devices), small_model_threads(device):  # caller's RNG streams untouched
        torch.manual_seed(seed)
        return _fit_digit_classifier(train, device, epochs, batch_size, max_lr, seed, verbose)


def _fit_digit_classifier(
    train: ImageSet,
    device: torch.device,
    epochs: int,
    batch_size: int,
    max_lr: float,
    seed: int,
    verbose: bool,
) -> DigitClassifier:
    model = DigitClassifier(num_classes=len(train.classes)).to(device)
    images, labels = to_float(train.images, (0.0, 1.0)).to(device), train.labels.to(device)
    batches = IndexBatches(len(images), batch_size, seed=seed)
    steps = epochs * batches.steps_per_epoch
    optimizer = torch.optim.AdamW(model.parameters(), lr=max_lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=steps)
    augment_rng = torch.Generator().manual_seed(seed)
    model.train()
    for step in tqdm(range(steps), desc="digit classifier", leave=False, disable=not verbose):
        index = batches(step).to(device)
        logits = model(random_affine(images[index], augment_rng))
        loss = F.cross_entropy(logits, labels[index])  # no label smoothing: it would cap IS well below 10
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return model.eval()


def classifier_accuracy(classifier: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    predicted, _ = predict(images, classifier)
    return (predicted == labels.cpu()).float().mean().item()


def classifier_checkpoint_path() -> Path:
    """``checkpoints/classifier/digit_classifier.pt`` (``$COURSE_CHECKPOINTS`` overrides the root)."""
    return checkpoint_dir("classifier") / "digit_classifier.pt"


def classifier_summary(accuracy: float, train_size: int = 4000, test_size: int = 1000) -> str:
    """The line printed wherever the classifier's numbers are used."""
    return (
        f"Digit classifier ({EMBEDDED} train, {train_size} images): "
        f"test accuracy {100 * accuracy:.1f}% on the {test_size} {EMBEDDED} test images"
    )


def _save_classifier(path: Path, model: DigitClassifier, payload: dict) -> None:
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    with atomic_write(path) as temporary:
        torch.save({**payload, "version": CLASSIFIER_VERSION, "state_dict": state}, temporary)


def _load_classifier(path: Path, device: torch.device) -> tuple[DigitClassifier, dict] | None:
    """The cached classifier, or None when it is missing, unreadable or from another version."""
    if not path.exists():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("version") != CLASSIFIER_VERSION:
            return None
        model = DigitClassifier()
        model.load_state_dict(payload["state_dict"])
    except (OSError, RuntimeError, KeyError, AttributeError, ValueError, EOFError, pickle.UnpicklingError):
        return None
    return model.to(device).eval(), payload


def get_digit_classifier(
    device: torch.device | str | None = None,
    retrain: bool = False,
    verbose: bool = True,
    path: Path | str | None = None,
) -> tuple[DigitClassifier, float]:
    """The digit classifier and its test accuracy: loaded from the cache, or trained on mnist5k and cached.

    The cache is ``path`` (default :func:`classifier_checkpoint_path`); ``retrain`` ignores it, and so does
    a cache written by another :data:`CLASSIFIER_VERSION`.  ``verbose`` prints :func:`classifier_summary`.
    """
    device = pick_device(device)
    path = Path(path) if path is not None else classifier_checkpoint_path()
    cached = None if retrain else _load_classifier(path, device)
    if cached is not None:
        model, payload = cached
    else:
        train, test = load_dataset(EMBEDDED, "train"), load_dataset(EMBEDDED, "test")
        start = time.perf_counter()
        model = train_digit_classifier(train, device, verbose=verbose)
        payload = {
            "test_accuracy": classifier_accuracy(model, test.images, test.labels),
            "train_size": len(train),
            "test_size": len(test),
            "train_seconds": time.perf_counter() - start,
            "seed": CLASSIFIER_SEED,
        }
        _save_classifier(path, model, payload)
    accuracy = float(payload["test_accuracy"])
    if verbose:
        print(classifier_summary(accuracy, int(payload["train_size"]), int(payload["test_size"])))
    return model, accuracy


def _module_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


@contextlib.contextmanager
def _evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no gradients for the duration; the model's own mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def softmax_predictions(images: torch.Tensor, classifier: nn.Module, batch_size: int = 500,
                        name: str = "the image set") -> torch.Tensor:
    """Class probabilities (N x classes, float64 on the CPU) of uint8 images; ``ValueError`` for none."""
    check_images(images)
    require_images(images, 1, "classifying", name)
    device = _module_device(classifier)
    slices = list(chunks(len(images), batch_size))
    probabilities = []
    with _evaluating(classifier), small_model_threads(device):
        for part in long_progress(slices, len(slices), "classifying"):
            batch = to_float(images[part].to(device), (0.0, 1.0))
            probabilities.append(F.softmax(classifier(batch).double(), dim=1).cpu())
    return torch.cat(probabilities)


def predict(images: torch.Tensor, classifier: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted labels (int64) and the classifier's confidence in them (max softmax probability)."""
    confidence, labels = softmax_predictions(images, classifier).max(dim=1)
    return labels, confidence.float()
