"""Image-generation metrics: FID through clean-fid, classifier-IS, class histograms, SSIM / PSNR / PCC.

FID has two feature networks and every number says which one it used (:func:`feature_label`):

* ``"inception"``: clean-fid's Inception-v3 with its exact "clean" resize, when its weights can be had;
* ``"classifier"``: the 128-d penultimate layer of a small digit classifier trained on the embedded
  ``mnist5k`` train split (offline; about half a minute to train on two CPU cores).  Its numbers are
  on another scale: a classifier-FID is never compared with an Inception FID.

All image arguments are uint8 tensors ``N x C x H x W`` (``utils.data.to_uint8`` converts model outputs).
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import pickle
import platform
import tempfile
import threading
import time
import urllib.request
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from unittest import mock

import cleanfid.fid
import numpy as np
import scipy.linalg
import torch
import torch.nn as nn
import torch.nn.functional as F
from cleanfid.downloads_helper import inception_url
from cleanfid.fid import compute_fid, fid_from_feats
from cleanfid.utils import EXTENSIONS as cleanfid_extensions
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from utils.config import checkpoint_dir
from utils.data import EMBEDDED, ImageSet, IndexBatches, chunks, load_dataset, require_images, to_float
from utils.training import small_model_threads

FEATURES = ("classifier", "inception")
FEATURE_LABELS = {
    "classifier": "classifier-FID (mnist5k digit-classifier features)",
    "inception": "FID (Inception-v3, clean-fid)",
}
CLASSIFIER_IS_LABEL = "classifier-IS (mnist5k digit classifier)"

CLASSIFIER_VERSION = 3  # bump when the architecture or training recipe changes: cached weights retrain
CLASSIFIER_SEED = 0
CLASSIFIER_SIZE = 28
LONG_LOOP = 20  # batches (or images for per-image metrics / 100) before a progress bar is worth showing

INCEPTION_FILE = "inception-2015-12-05.pt"


class InceptionUnavailableError(RuntimeError):
    """clean-fid's Inception weights are not on disk and cannot be downloaded."""


# --------------------------------------------------------------------------- small helpers


def _default_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _device(device: torch.device | str | None) -> torch.device:
    return _default_device() if device is None else torch.device(device)


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


def _progress(iterable: Iterable, total: int, desc: str, long: int = LONG_LOOP) -> Iterable:
    return tqdm(iterable, total=total, desc=desc, leave=False) if total > long else iterable


def _check_images(images: torch.Tensor, name: str = "images") -> None:
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
        is_tensor = isinstance(images, torch.Tensor)
        got = f"{images.dtype} {tuple(images.shape)}" if is_tensor else type(images).__name__
        raise TypeError(f"{name} must be a uint8 tensor N x C x H x W (see utils.data.to_uint8), got {got}")


def _check_features(features: str) -> None:
    if features not in FEATURES:
        raise ValueError(f"unknown FID features {features!r}; choose one of: {', '.join(FEATURES)}")


def feature_label(features: str) -> str:
    """The name to print next to an FID computed with ``features`` ("classifier" or "inception")."""
    _check_features(features)
    return FEATURE_LABELS[features]


# --------------------------------------------------------------------------- digit classifier


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


def random_affine(
    images: torch.Tensor,
    generator: torch.Generator,
    max_degrees: float = 12.0,
    max_scale: float = 0.1,
    max_shift_px: float = 2.5,
) -> torch.Tensor:
    """Rotate, scale and shift every image of a float batch by its own small random amount (on its device)."""
    n, _, height, width = images.shape
    uniform = torch.rand(n, 4, generator=generator).mul_(2).sub_(1).to(images.device)  # in [-1, 1]
    angle = uniform[:, 0] * math.radians(max_degrees)
    scale = 1 + uniform[:, 1] * max_scale
    theta = torch.zeros(n, 2, 3, device=images.device)
    theta[:, 0, 0] = theta[:, 1, 1] = scale * torch.cos(angle)
    theta[:, 0, 1] = -scale * torch.sin(angle)
    theta[:, 1, 0] = scale * torch.sin(angle)
    theta[:, 0, 2] = uniform[:, 2] * max_shift_px * 2 / width  # grid coordinates span 2 per image side
    theta[:, 1, 2] = uniform[:, 3] * max_shift_px * 2 / height
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")


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
    device = _device(device)
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
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(handle)
    try:
        torch.save({**payload, "version": CLASSIFIER_VERSION, "state_dict": state}, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


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
    device = _device(device)
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


# --------------------------------------------------------------------------- predictions


def softmax_predictions(images: torch.Tensor, classifier: nn.Module, batch_size: int = 500,
                        name: str = "the image set") -> torch.Tensor:
    """Class probabilities (N x classes, float64 on the CPU) of uint8 images; ``ValueError`` for none."""
    _check_images(images)
    require_images(images, 1, "classifying", name)
    device = _module_device(classifier)
    slices = list(chunks(len(images), batch_size))
    probabilities = []
    with _evaluating(classifier), small_model_threads(device):
        for part in _progress(slices, len(slices), "classifying"):
            batch = to_float(images[part].to(device), (0.0, 1.0))
            probabilities.append(F.softmax(classifier(batch).double(), dim=1).cpu())
    return torch.cat(probabilities)


def predict(images: torch.Tensor, classifier: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted labels (int64) and the classifier's confidence in them (max softmax probability)."""
    confidence, labels = softmax_predictions(images, classifier).max(dim=1)
    return labels, confidence.float()


def class_histogram(images: torch.Tensor, classifier: nn.Module, num_classes: int = 10) -> torch.Tensor:
    """How many images the classifier puts in each class (int64, sums to N)."""
    labels, _ = predict(images, classifier)
    return torch.bincount(labels, minlength=num_classes)


def histogram_entropy(counts: torch.Tensor | np.ndarray | list[int]) -> float:
    """Entropy in nats of a class histogram: ln(classes) when uniform, 0 when one class takes all.

    ``ValueError`` for a histogram of no images (its shares are undefined).
    """
    p = np.asarray(counts, dtype=np.float64)
    require_images(int(p.sum()), 1, "a class entropy", "the class histogram")
    p = p[p > 0] / p.sum()
    return float(-(p * np.log(p)).sum())


def inception_score(images: torch.Tensor, classifier: nn.Module, splits: int = 10) -> tuple[float, float]:
    """classifier-IS: exp(E_x KL(p(y|x) || p(y))) from the classifier's softmax, mean and std over ``splits``.

    Between 1 (every image equally unsure, or all alike) and the number of classes (confident and balanced).
    The images are split in a fixed random order, so a set sorted by class scores like a shuffled one.
    One image scores 1; no images raise a ``ValueError``.
    """
    _check_images(images)
    require_images(images, 1, "the Inception Score", "the image set")
    probabilities = softmax_predictions(images, classifier)
    order = torch.randperm(len(probabilities), generator=torch.Generator().manual_seed(0))
    scores = []
    for part in torch.tensor_split(order, min(splits, len(order))):
        p = probabilities[part]
        marginal = p.mean(dim=0, keepdim=True)
        kl = (p * (torch.log(p.clamp_min(1e-30)) - torch.log(marginal.clamp_min(1e-30)))).sum(dim=1)
        scores.append(math.exp(kl.mean().item()))
    return float(np.mean(scores)), float(np.std(scores))


# --------------------------------------------------------------------------- FID


def inception_weights_path() -> Path:
    """Where clean-fid looks for (and downloads) its Inception weights."""
    return Path("./" if platform.system() == "Windows" else "/tmp") / INCEPTION_FILE


_inception_download_failed = False


def _download(url: str, path: Path, timeout: float) -> None:
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            while block := response.read(1 << 20):
                out.write(block)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def inception_available(download: bool = True, timeout: float = 10.0) -> bool:
    """Whether clean-fid's Inception weights are on disk, trying one download (at most once per process).

    The connection attempt runs in a background thread that is given ``timeout`` seconds to get
    going, so a machine without internet answers ``False`` quickly instead of hanging.
    """
    global _inception_download_failed
    path = inception_weights_path()
    if path.exists():
        return True
    if not download or _inception_download_failed:
        return False

    def attempt() -> None:
        with contextlib.suppress(Exception):  # any network or disk failure just means "not available"
            _download(inception_url, path, timeout)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():  # connected and still downloading: a slow link gets a few minutes more
        worker.join(30 * timeout)
    _inception_download_failed = not path.exists()
    return not _inception_download_failed


def choose_fid_features(profile: str, verbose: bool = True) -> str:
    """Inception for the ``full`` profile when its weights can be had, else the classifier; says which."""
    if profile == "full" and inception_available():
        choice, reason = "inception", "profile full and the Inception weights are available"
    elif profile == "full":
        choice, reason = "classifier", "Inception weights not available (offline?)"
    else:
        choice, reason = "classifier", f"profile {profile} runs offline"
    if verbose:
        print(f"FID features: {feature_label(choice)} ({reason})")
    return choice


def classifier_feature_extractor(
    classifier: DigitClassifier, device: torch.device | str | None = None
) -> Callable[[torch.Tensor], torch.Tensor]:
    """clean-fid style extractor: float images (B, 1 or 3, H, W) in [0, 255] -> (B, 128) features."""
    device = _device(device)
    classifier = classifier.to(device).eval()

    def extract(batch: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return classifier.features(batch.to(device).float() / 255.0)

    return extract


_inception_extractors: dict[str, Callable] = {}


def inception_feature_extractor(
    device: torch.device | str | None = None,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """clean-fid's Inception-v3 ("clean" mode): float images (B, 3, 299, 299) in [0, 255] -> (B, 2048)."""
    from cleanfid.features import build_feature_extractor

    device = _device(device)
    if not inception_available():
        raise InceptionUnavailableError(
            f"clean-fid's Inception weights are not at {inception_weights_path()} and cannot be downloaded "
            f"({inception_url}); copy the file there or use features='classifier'"
        )
    if str(device) not in _inception_extractors:
        _inception_extractors[str(device)] = build_feature_extractor("clean", device, use_dataparallel=False)
    return _inception_extractors[str(device)]


def inception_resize(images: torch.Tensor) -> torch.Tensor:
    """clean-fid's exact "clean" preprocessing, image by image: gray -> 3 channels, PIL bicubic to 299x299."""
    from cleanfid.resize import build_resizer

    resize = build_resizer("clean")
    rgb = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
    resized = [resize(image.permute(1, 2, 0).cpu().numpy()) for image in rgb]
    return torch.from_numpy(np.stack(resized).transpose(0, 3, 1, 2))


def image_features(
    images: torch.Tensor,
    features: str = "classifier",
    device: torch.device | str | None = None,
    batch_size: int = 256,
    classifier: DigitClassifier | None = None,
) -> np.ndarray:
    """FID features (N x D float numpy) of uint8 images, batch by batch; ``ValueError`` for no images."""
    _check_images(images)
    _check_features(features)
    require_images(images, 1, "FID features", "the image set")
    device = _device(device)
    if features == "classifier":
        classifier = classifier if classifier is not None else get_digit_classifier(device, verbose=False)[0]
        extract, prepare = classifier_feature_extractor(classifier, device), torch.Tensor.float
    else:
        extract, prepare = inception_feature_extractor(device), inception_resize
    slices = list(chunks(len(images), batch_size))
    parts = _progress(slices, len(slices), "features")
    threads = small_model_threads(device) if features == "classifier" else contextlib.nullcontext()
    with threads:
        return np.concatenate([extract(prepare(images[part])).cpu().numpy() for part in parts])


class _SqrtmWithDisp:
    """``scipy.linalg`` as clean-fid 0.1.35 calls it: ``sqrtm(A, disp=False)`` returning ``(root, error)``.

    SciPy deprecated ``disp`` in 1.16 and later releases dropped it (seen with the SciPy of a CUDA
    image: ``sqrtm() got an unexpected keyword argument 'disp'``); clean-fid still passes it.
    """

    def __getattr__(self, name: str):
        return getattr(scipy.linalg, name)

    @staticmethod
    def sqrtm(matrix, disp: bool = True, **options):
        root = scipy.linalg.sqrtm(matrix, **options)
        if disp:
            return root
        error = np.linalg.norm(root @ root - matrix, "fro") / max(np.linalg.norm(matrix, "fro"), 1e-300)
        return root, error


def sqrtm_takes_disp() -> bool:
    return "disp" in inspect.signature(scipy.linalg.sqrtm).parameters


@contextlib.contextmanager
def _frechet_setting(feature_dim: int) -> Iterator[None]:
    """Quiet, fast matrix square roots for clean-fid's Frechet distance, on any SciPy."""
    # small matrices: one BLAS thread is several times faster on a busy machine (threads wait on each other)
    threads = threadpool_limits(1) if feature_dim <= 512 else contextlib.nullcontext()
    linalg = contextlib.nullcontext() if sqrtm_takes_disp() else mock.patch.object(cleanfid.fid, "linalg",
                                                                                   _SqrtmWithDisp())
    with threads, linalg, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The `disp` argument is deprecated", DeprecationWarning)  # clean-fid's call
        yield


def fid_from_features(real_features: np.ndarray, fake_features: np.ndarray) -> float:
    """clean-fid's Frechet distance between the Gaussians fitted to two feature sets."""
    for name, values in (("the real set", real_features), ("the generated set", fake_features)):
        require_images(len(values), 2, "FID", name)
    with _frechet_setting(real_features.shape[1]):
        return float(fid_from_feats(real_features, fake_features))


def fid(
    real: torch.Tensor,
    fake: torch.Tensor,
    features: str = "classifier",
    device: torch.device | str | None = None,
    batch_size: int = 256,
    classifier: DigitClassifier | None = None,
) -> float:
    """FID between two in-memory uint8 image sets; print it with :func:`feature_label`.

    Each set needs at least 2 images (a covariance); fewer raise a ``ValueError`` before any feature is computed.
    """
    for name, images in (("the real set", real), ("the generated set", fake)):
        _check_images(images, name)
        require_images(images, 2, "FID", name)
    real_features = image_features(real, features, device, batch_size, classifier)
    fake_features = image_features(fake, features, device, batch_size, classifier)
    return fid_from_features(real_features, fake_features)


def per_class_fid(
    real: torch.Tensor,
    real_labels: torch.Tensor,
    fake: torch.Tensor,
    fake_labels: torch.Tensor,
    features: str = "classifier",
    device: torch.device | str | None = None,
    classifier: DigitClassifier | None = None,
    num_classes: int = 10,
) -> dict[int, float]:
    """FID of each class (fake labels: conditioning labels or the classifier's predictions).

    Every class ``0 .. num_classes-1`` gets a key; a class with fewer than 2 real or 2 fake
    images (no covariance) gets NaN.  Empty sets, or labels that do not match the images in number,
    raise a ``ValueError`` at once.
    """
    for name, images, labels in (("the real set", real, real_labels), ("the generated set", fake, fake_labels)):
        _check_images(images, name)
        require_images(images, 2, "per-class FID", name)
        if len(labels) != len(images):
            raise ValueError(f"per-class FID needs one label per image; {name} has {len(images)} images "
                             f"and {len(labels)} labels")
    real_features = image_features(real, features, device, classifier=classifier)
    fake_features = image_features(fake, features, device, classifier=classifier)
    real_labels, fake_labels = real_labels.cpu().numpy(), fake_labels.cpu().numpy()
    scores = {}
    for label in range(num_classes):
        real_of, fake_of = real_features[real_labels == label], fake_features[fake_labels == label]
        enough = len(real_of) >= 2 and len(fake_of) >= 2
        scores[label] = fid_from_features(real_of, fake_of) if enough else float("nan")
    return scores


def _float_image(image: np.ndarray) -> np.ndarray:
    """clean-fid ``custom_fn_resize`` for the classifier: the extractor resizes, so keep the pixels exact."""
    return image.astype(np.float32)


def fid_folders(
    dir1: Path | str,
    dir2: Path | str,
    features: str = "classifier",
    device: torch.device | str | None = None,
    batch_size: int = 256,
    classifier: DigitClassifier | None = None,
) -> float:
    """FID between two folders of image files through clean-fid's own ``compute_fid``.

    Each folder needs at least 2 image files (clean-fid's extensions); fewer raise a ``ValueError`` at once.
    """
    _check_features(features)
    for folder in (dir1, dir2):
        files = [p for p in Path(folder).rglob("*") if p.suffix.lstrip(".") in cleanfid_extensions]  # as clean-fid
        require_images(len(files), 2, "FID", f"folder {folder}")
    device = _device(device)
    options = {"mode": "clean", "device": device, "num_workers": 0, "batch_size": batch_size}
    options |= {"use_dataparallel": False, "verbose": False}
    if features == "classifier":
        classifier = classifier if classifier is not None else get_digit_classifier(device, verbose=False)[0]
        options |= {
            "custom_feat_extractor": classifier_feature_extractor(classifier, device),
            "custom_fn_resize": _float_image,
        }
        with small_model_threads(device), _frechet_setting(classifier.feature_dim):
            return float(compute_fid(str(dir1), str(dir2), **options))
    options["custom_feat_extractor"] = inception_feature_extractor(device)
    with _frechet_setting(2048):
        return float(compute_fid(str(dir1), str(dir2), **options))


# --------------------------------------------------------------------------- reconstruction metrics


def _paired_arrays(a: torch.Tensor, b: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Two uint8 batches of the same shape as numpy N x H x W x C (at least one pair)."""
    _check_images(a, "a")
    _check_images(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"image batches differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    require_images(a, 1, "an image comparison (SSIM, PSNR, PCC)", "the pair of batches")
    return a.permute(0, 2, 3, 1).cpu().numpy(), b.permute(0, 2, 3, 1).cpu().numpy()


def _ssim_window(height: int, width: int) -> int:
    """skimage's default 7, or the largest odd window that fits a smaller image."""
    side = min(7, height, width)
    side -= 1 - side % 2
    if side < 3:
        raise ValueError(f"SSIM needs images of at least 3x3 pixels, got {height}x{width}")
    return side


def ssim(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Per-image SSIM (skimage, data_range 255, channels averaged for RGB); ``.mean()`` for the batch."""
    from skimage.metrics import structural_similarity

    first, second = _paired_arrays(a, b)
    window = _ssim_window(*first.shape[1:3])
    rgb = first.shape[-1] > 1
    if not rgb:
        first, second = first[..., 0], second[..., 0]
    options = {"data_range": 255, "win_size": window, "channel_axis": -1 if rgb else None}
    pairs = _progress(zip(first, second, strict=True), len(first), "SSIM", long=100 * LONG_LOOP)
    values = [structural_similarity(x, y, **options) for x, y in pairs]
    return np.asarray(values, dtype=np.float64)


def psnr(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Per-image PSNR in dB (skimage, data_range 255); identical images give ``inf``."""
    from skimage.metrics import peak_signal_noise_ratio

    first, second = _paired_arrays(a, b)
    with np.errstate(divide="ignore"):
        values = [peak_signal_noise_ratio(x, y, data_range=255) for x, y in zip(first, second, strict=True)]
    return np.asarray(values, dtype=np.float64)


def pcc(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Per-image Pearson correlation of pixel values (NaN for a constant image)."""
    first, second = _paired_arrays(a, b)
    x = first.reshape(len(first), -1).astype(np.float64)
    y = second.reshape(len(second), -1).astype(np.float64)
    x -= x.mean(axis=1, keepdims=True)
    y -= y.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x * y).sum(axis=1) / np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))
