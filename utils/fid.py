"""FID: features, reference statistics cached by content, scores (distance: utils.frechet; Inception: utils.inception).

FID (Heusel et al. 2017) is the Frechet distance between Gaussians fitted to the features of real and
generated images, ``|mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))``.  Two feature networks, and every
number says which one it used (:func:`feature_label`):

* ``"inception"``: clean-fid's Inception-v3 (Parmar et al. 2022) with its "clean" resize, batched on the
  device (``utils.inception``), when its weights can be had;
* ``"classifier"``: the 128-d embedding of the course's digit classifier (``utils.classifier``), offline.
  Its numbers are on another scale, and mean something on digits only: a classifier-FID is never compared
  with an Inception FID, and :func:`choose_fid_features` gives no FID rather than a classifier-FID of birds.

The distance itself (:func:`frechet_distance`, ``utils.frechet``) is computed in torch, float64, from a
symmetric eigenvalue problem, on the GPU when there is one.  The statistics of a reference set under
Inception are computed once and kept under ``<data root>/fid_statistics``, named by the content of the
images (:func:`reference_statistics`).

All image arguments are uint8 tensors ``N x C x H x W`` (``utils.data.to_uint8`` converts model outputs).
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import cleanfid.fid
import numpy as np
import torch
from cleanfid.utils import EXTENSIONS as cleanfid_extensions

from utils.cache import tensor_fingerprint
from utils.classifier import DigitClassifier, get_digit_classifier
from utils.config import data_root
from utils.data import check_images, chunks, long_progress, require_images
from utils.devices import pick_device, small_model_threads
from utils.files import atomic_write
from utils.frechet import (  # noqa: F401  (re-exported: utils.fid is where notebooks and families import from)
    feature_statistics,
    frechet_distance,
    frechet_distance_of_moments,
    linalg_device,
    moments,
    scipy_frechet_distance,
)
from utils.inception import (  # noqa: F401  (re-exported, as above)
    INCEPTION_FILE,
    InceptionUnavailableError,
    find_inception_weights,
    inception_available,
    inception_feature_extractor,
    inception_resize,
    inception_weights_path,
    unavailable_message,
)
from utils.training import Trainer

FidScore = Callable[[torch.Tensor], float]  # uint8 generated images -> FID against a fixed reference
FEATURES = ("classifier", "inception")
DIGIT_DATASETS = ("mnist5k", "mnist")  # what the digit classifier knows (None: the course's default, mnist5k)

FEATURE_LABELS = {
    "classifier": "classifier-FID (mnist5k digit-classifier features)",
    "inception": "FID (Inception-v3, clean-fid)",
}


def _check_features(features: str) -> None:
    if features not in FEATURES:
        raise ValueError(f"unknown FID features {features!r}; choose one of: {', '.join(FEATURES)}")


def feature_label(features: str) -> str:
    """The name to print next to an FID computed with ``features`` ("classifier" or "inception")."""
    _check_features(features)
    return FEATURE_LABELS[features]


def choose_fid_features(profile: str, dataset: str | None = None, verbose: bool = True) -> str | None:
    """The features an FID of ``dataset`` should use under ``profile``, or ``None``: no meaningful FID here.

    * ``"inception"`` in the ``full`` profile when the weights are available (one download is tried), and in
      any profile for a data set other than digits when they are already on disk;
    * ``"classifier"`` for digits the course classifier knows (``dataset`` None, "mnist5k" or "mnist"),
      whatever the profile, when Inception is not chosen;
    * ``None`` otherwise (CUB without the weights ...): the classifier's features mean nothing on such
      images (an untrained GAN and a constant grey image both scored about 5 on CUB), so no FID is shown.

    ``verbose`` prints one line: the choice and why, or why there is no FID and how to provide the weights.
    """
    digits = dataset is None or dataset in DIGIT_DATASETS
    if profile == "full" and inception_available():
        choice, line = "inception", "profile full and the Inception weights are available"
    elif not digits and inception_available(download=False):
        choice, line = "inception", f"the Inception weights are on disk; {dataset} is not digits"
    elif digits:
        why = f"profile {profile} runs offline" if profile != "full" else \
            f"Inception weights not available at {inception_weights_path()}"
        choice, line = "classifier", f"{why}; the digit classifier knows {dataset or 'mnist5k'}"
    else:
        choice, line = None, (f"FID not computed: the digit classifier's features mean nothing on {dataset}, and "
                              f"{unavailable_message()}")
    if verbose:
        print(line if choice is None else f"FID features: {feature_label(choice)} ({line})")
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


def image_features(
    images: torch.Tensor,
    features: str = "classifier",
    device: torch.device | str | None = None,
    batch_size: int = 256,
    classifier: DigitClassifier | None = None,
) -> np.ndarray:
    """FID features of uint8 images, batch by batch: float32 numpy ``N x 128`` (classifier) or ``N x 2048``.

    Raises ``ValueError`` for no images, :class:`InceptionUnavailableError` for Inception without its weights.
    """
    check_images(images)
    _check_features(features)
    require_images(images, 1, "FID features", "the image set")
    device = pick_device(device)
    if features == "classifier":
        classifier = classifier if classifier is not None else get_digit_classifier(device, verbose=False)[0]
        extract, prepare = classifier_feature_extractor(classifier, device), torch.Tensor.float
    else:
        if not inception_available():
            raise InceptionUnavailableError(f"{unavailable_message()}; for digits, use features='classifier'")
        extract = inception_feature_extractor(device)

        def prepare(batch: torch.Tensor) -> torch.Tensor:
            return inception_resize(batch, device)

    slices = list(chunks(len(images), batch_size))
    parts = long_progress(slices, len(slices), "features")
    threads = small_model_threads(device) if features == "classifier" else contextlib.nullcontext()
    with threads:
        return np.concatenate([extract(prepare(images[part])).cpu().numpy() for part in parts])


# --------------------------------------------------------------------------- FID of feature sets


def fid_from_features(real_features: np.ndarray, fake_features: np.ndarray) -> float:
    """FID between the Gaussians fitted to two feature sets ``N x D`` (float numpy): :func:`frechet_distance`
    in float64, on the GPU when there is one.  Each set needs at least 2 rows; fewer raise a ``ValueError``."""
    for name, values in (("the real set", real_features), ("the generated set", fake_features)):
        require_images(len(values), 2, "FID", name)
    return frechet_distance_of_moments(moments(real_features), moments(fake_features))


# --------------------------------------------------------------------------- FID of image sets


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
    real_features: np.ndarray | None = None,
) -> dict[int, float]:
    """FID of each class (fake labels: conditioning labels or the classifier's predictions).

    ``real_features`` (``image_features(real, features, ...)``, ``N x D``) spares recomputing the reference's
    features on every call; without it they come from :func:`reference_features` (kept in memory for
    Inception).  Every class ``0 .. num_classes-1`` gets a key; a class with fewer than 2 real or 2 fake
    images (no covariance) gets NaN.  Empty sets, or labels (or ``real_features``) that do not match the
    images in number, raise a ``ValueError`` at once.
    """
    for name, images, labels in (("the real set", real, real_labels), ("the generated set", fake, fake_labels)):
        check_images(images, name)
        require_images(images, 2, "per-class FID", name)
        if len(labels) != len(images):
            raise ValueError(f"per-class FID needs one label per image; {name} has {len(images)} images "
                             f"and {len(labels)} labels")
    if real_features is None:
        real_features = reference_features(real, features, device, classifier)
    elif len(real_features) != len(real):
        raise ValueError(f"per-class FID: {len(real_features)} real features for {len(real)} real images")
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
    """FID between two folders of image files, read (and, for Inception, resized with PIL) by clean-fid.

    Each folder needs at least 2 image files (clean-fid's extensions); fewer raise a ``ValueError`` at once.
    """
    _check_features(features)
    for folder in (dir1, dir2):
        files = [p for p in Path(folder).rglob("*") if p.suffix.lstrip(".") in cleanfid_extensions]  # as clean-fid
        require_images(len(files), 2, "FID", f"folder {folder}")
    device = pick_device(device)
    options = {"mode": "clean", "device": device, "num_workers": 0, "batch_size": batch_size, "verbose": False}
    if features == "classifier":
        classifier = classifier if classifier is not None else get_digit_classifier(device, verbose=False)[0]
        extract, threads = classifier_feature_extractor(classifier, device), small_model_threads(device)
        options["custom_fn_resize"] = _float_image
    else:
        extract, threads = inception_feature_extractor(device), contextlib.nullcontext()
    with threads:
        real, fake = (cleanfid.fid.get_folder_features(str(folder), extract, **options) for folder in (dir1, dir2))
        return fid_from_features(real, fake)


# --------------------------------------------------------------------------- reference statistics, cached


STATISTICS_VERSION = 1  # part of the file names: a change in how statistics are made starts new files
_MEMO_SIZE = 4
_statistics_memo: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
_features_memo: OrderedDict[str, np.ndarray] = OrderedDict()


def _remember(memo: OrderedDict, key: str, value):
    memo[key] = value
    memo.move_to_end(key)
    while len(memo) > _MEMO_SIZE:
        memo.popitem(last=False)
    return value


def statistics_path(reference: torch.Tensor, features: str = "inception") -> Path:
    """``<data root>/fid_statistics/<features>_v<version>_<fingerprint>.npz``: the cached statistics' file."""
    _check_features(features)
    name = f"{features}_v{STATISTICS_VERSION}_{tensor_fingerprint(reference)}.npz"
    return data_root() / "fid_statistics" / name


def reference_features(
    reference: torch.Tensor,
    features: str = "classifier",
    device: torch.device | str | None = None,
    classifier: DigitClassifier | None = None,
) -> np.ndarray:
    """:func:`image_features` of a reference set; Inception features are kept in memory (a few sets, by
    content and weights file), the classifier's (seconds) are computed again."""
    options = {} if classifier is None else {"classifier": classifier}
    if features != "inception":
        return image_features(reference, features, device, **options)
    key = f"{find_inception_weights()}:{tensor_fingerprint(reference)}"
    if key in _features_memo:
        return _features_memo[key]
    return _remember(_features_memo, key, image_features(reference, features, device))


def reference_statistics(
    reference: torch.Tensor,
    features: str = "inception",
    device: torch.device | str | None = None,
    classifier: DigitClassifier | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and covariance ``(D, D)`` (float64 numpy) of the features of uint8 ``reference`` images.

    Inception statistics are computed once and stored at :func:`statistics_path` (the data root's
    ``fid_statistics/``, named by the images' fingerprint: a changed reference set gets new statistics,
    never stale ones), written atomically, and kept in memory too.  Classifier statistics (a second on
    mnist5k, and the classifier can be retrained) are computed on every call with ``classifier`` (default:
    the course's).  Fewer than 2 images raise a ``ValueError``; Inception without its weights, an
    :class:`InceptionUnavailableError`.
    """
    check_images(reference, "the reference set")
    require_images(reference, 2, "FID reference statistics", "the reference set")
    _check_features(features)
    if features == "classifier":
        return feature_statistics(reference_features(reference, features, device, classifier))
    path = statistics_path(reference, features)
    key = str(path)
    if key in _statistics_memo:
        return _statistics_memo[key]
    if path.exists():
        with contextlib.suppress(Exception), np.load(path) as stored:  # unreadable: computed and written again
            return _remember(_statistics_memo, key, (stored["mu"], stored["sigma"]))
    mu, sigma = feature_statistics(reference_features(reference, features, device))
    with atomic_write(path, suffix=".npz") as temporary:
        np.savez(temporary, mu=mu, sigma=sigma, count=len(reference), shape=np.array(reference.shape))
    return _remember(_statistics_memo, key, (mu, sigma))


def fid_scorer(reference: torch.Tensor, features: str, device: torch.device | str | None = None) -> FidScore:
    """``score(fake) -> FID`` against ``reference`` (uint8 training images) with ``features``.

    The reference's statistics come from :func:`reference_statistics` (Inception: cached on disk by
    content).  Fewer than 2 reference images raise a ``ValueError`` at once; so does scoring fewer than
    2 generated images.
    """
    require_images(reference, 2, "FID", "the reference set")
    mu, sigma = reference_statistics(reference, features, device)
    reference_moments = (*(torch.as_tensor(v, device=linalg_device()) for v in (mu, sigma)), None)  # no root

    def score(fake: torch.Tensor) -> float:
        require_images(fake, 2, "FID", "the generated set")
        fake_moments = moments(image_features(fake, features, device))
        return frechet_distance_of_moments(fake_moments, reference_moments)

    return score


def fid_hook(run, score: FidScore, n_samples: int, name: str = "fid") -> Callable[[Trainer], None]:
    """A ``Trainer.run`` hook recording ``score(run.sample(n_samples, seed=step))`` under ``name``.

    ``run`` is any family's run with ``.sample(n, seed=...)``; the samples are fixed by the step, so a
    resumed run records the same curve.
    """

    def record(trainer: Trainer) -> None:
        trainer.record(name, score(run.sample(n_samples, seed=trainer.step)))

    return record
