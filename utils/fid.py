"""FID in one file: features, the Frechet distance, and clean-fid's plumbing (Inception weights, custom statistics).

FID (Heusel et al. 2017) is the Frechet distance between Gaussians fitted to the features of real and
generated images, ``|mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))``; clean-fid (Parmar et al. 2022)
computes it.  Two feature networks, and every number says which one it used (:func:`feature_label`):

* ``"inception"``: clean-fid's Inception-v3 with its exact "clean" resize, when its weights can be had;
* ``"classifier"``: the 128-d embedding of the course's digit classifier (``utils.classifier``), offline.
  Its numbers are on another scale: a classifier-FID is never compared with an Inception FID.

All image arguments are uint8 tensors ``N x C x H x W`` (``utils.data.to_uint8`` converts model outputs).
"""

from __future__ import annotations

import contextlib
import inspect
import platform
import tempfile
import threading
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import cleanfid.fid
import numpy as np
import scipy.linalg
import torch
from cleanfid.downloads_helper import inception_url
from cleanfid.fid import compute_fid, fid_from_feats
from cleanfid.utils import EXTENSIONS as cleanfid_extensions
from PIL import Image
from threadpoolctl import threadpool_limits

from utils.classifier import DigitClassifier, get_digit_classifier
from utils.data import check_images, chunks, long_progress, require_images
from utils.devices import pick_device, small_model_threads
from utils.files import atomic_write
from utils.training import Trainer

FidScore = Callable[[torch.Tensor], float]  # uint8 generated images -> FID against a fixed reference
FEATURES = ("classifier", "inception")


FEATURE_LABELS = {
    "classifier": "classifier-FID (mnist5k digit-classifier features)",
    "inception": "FID (Inception-v3, clean-fid)",
}


INCEPTION_FILE = "inception-2015-12-05.pt"


class InceptionUnavailableError(RuntimeError):
    """clean-fid's Inception weights are not on disk and cannot be downloaded."""


def _check_features(features: str) -> None:
    if features not in FEATURES:
        raise ValueError(f"unknown FID features {features!r}; choose one of: {', '.join(FEATURES)}")


def feature_label(features: str) -> str:
    """The name to print next to an FID computed with ``features`` ("classifier" or "inception")."""
    _check_features(features)
    return FEATURE_LABELS[features]


def inception_weights_path() -> Path:
    """Where clean-fid looks for (and downloads) its Inception weights."""
    return Path("./" if platform.system() == "Windows" else "/tmp") / INCEPTION_FILE


_inception_download_failed = False


def _download(url: str, path: Path, timeout: float) -> None:
    with atomic_write(path, suffix=".part") as temporary, open(temporary, "wb") as out, \
            urllib.request.urlopen(url, timeout=timeout) as response:
        while block := response.read(1 << 20):
            out.write(block)


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
    device = pick_device(device)
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

    device = pick_device(device)
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
    check_images(images)
    _check_features(features)
    require_images(images, 1, "FID features", "the image set")
    device = pick_device(device)
    if features == "classifier":
        classifier = classifier if classifier is not None else get_digit_classifier(device, verbose=False)[0]
        extract, prepare = classifier_feature_extractor(classifier, device), torch.Tensor.float
    else:
        extract, prepare = inception_feature_extractor(device), inception_resize
    slices = list(chunks(len(images), batch_size))
    parts = long_progress(slices, len(slices), "features")
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
        check_images(images, name)
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
        check_images(images, name)
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
    device = pick_device(device)
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


# --------------------------------------------------------------------------- scoring during training


def write_png_folder(images: torch.Tensor, folder: str | Path) -> Path:
    """uint8 ``N x C x H x W`` -> ``folder/000000.png`` ... (lossless, so statistics see the exact pixels)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(images.cpu()):
        array = image.permute(1, 2, 0).numpy()
        Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(folder / f"{index:06d}.png")
    return folder


def ensure_custom_stats(stats_name: str, reference: torch.Tensor, device: torch.device | str) -> None:
    """Make clean-fid's Inception statistics of ``reference`` under ``stats_name`` unless they exist."""
    require_images(reference, 2, "FID reference statistics", "the reference set")
    from cleanfid import fid as cleanfid

    if cleanfid.test_stats_exists(stats_name, mode="clean"):
        return
    with tempfile.TemporaryDirectory() as folder:
        write_png_folder(reference, folder)
        cleanfid.make_custom_stats(stats_name, folder, mode="clean", device=torch.device(device), num_workers=0,
                                   verbose=False)


def custom_stats_fid(stats_name: str, fake: torch.Tensor, device: torch.device | str | None = None) -> float:
    """Inception FID of ``fake`` against the custom statistics ``stats_name`` (clean resize, as clean-fid)."""
    from cleanfid.features import get_reference_statistics
    from cleanfid.fid import frechet_distance

    require_images(fake, 2, "FID", "the generated set")
    mu, sigma = get_reference_statistics(stats_name, "na", mode="clean", split="custom")
    features = image_features(fake, "inception", device)
    return float(frechet_distance(features.mean(axis=0), np.cov(features, rowvar=False), mu, sigma))


def fid_scorer(reference: torch.Tensor, features: str, device: torch.device | str | None = None,
               stats_name: str | None = None) -> FidScore:
    """``score(fake) -> FID`` against ``reference`` (uint8 training images) with ``features``.

    Inception with a ``stats_name`` goes through clean-fid's custom statistics; otherwise the
    reference features are computed once and kept in memory.  Fewer than 2 reference images raise a
    ``ValueError`` at once; so does scoring fewer than 2 generated images.
    """
    require_images(reference, 2, "FID", "the reference set")
    if features == "inception" and stats_name:
        ensure_custom_stats(stats_name, reference, device or "cpu")
        return lambda fake: custom_stats_fid(stats_name, fake, device)
    real_features = image_features(reference, features, device)
    return lambda fake: fid_from_features(real_features, image_features(fake, features, device))


def custom_stats_name(dataset: str, image_size: int) -> str:
    """clean-fid statistics of a training set, by data set and resolution (``course_cub_32px_train``)."""
    return f"course_{dataset}_{image_size}px_train".lower()


def fid_hook(run, score: FidScore, n_samples: int, name: str = "fid") -> Callable[[Trainer], None]:
    """A ``Trainer.run`` hook recording ``score(run.sample(n_samples, seed=step))`` under ``name``.

    ``run`` is any family's run with ``.sample(n, seed=...)``; the samples are fixed by the step, so a
    resumed run records the same curve.
    """

    def record(trainer: Trainer) -> None:
        trainer.record(name, score(run.sample(n_samples, seed=trainer.step)))

    return record
