"""clean-fid's Inception-v3, the course's way: weights under the data root, a batched "clean" resize on the device.

FID's feature network is the TensorFlow Inception-v3 of Heusel et al. (2017) as a TorchScript file,
``inception-2015-12-05.pt``, through the wrapper of clean-fid (Parmar et al. 2022, "On Aliased Resizing
and Surprising Subtleties in GAN Evaluation"; ``cleanfid/inception_torchscript.py``).  Unlike clean-fid
itself, nothing here goes to the system temporary folder:

* the weights are looked for at :func:`inception_weights_path` (the course's data root, ``$COURSE_DATA``
  or ``datasets/``), then at clean-fid's own place (:func:`cleanfid_weights_path`, ``/tmp`` on Linux), and
  a download (tried once per process, with a short timeout) goes to the data root;
* :func:`inception_resize` is clean-fid's "clean" resize (PIL bicubic per channel in float32, then
  clipped to [0, 255]) done on whole batches with ``torch.nn.functional.interpolate(..., antialias=True)``,
  a port of PIL's resampling, on the GPU when there is one.
"""

from __future__ import annotations

import contextlib
import platform
import threading
import urllib.request
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from cleanfid.downloads_helper import inception_url

from utils.config import data_root
from utils.data import chunks
from utils.devices import pick_device
from utils.files import atomic_write

INCEPTION_FILE = "inception-2015-12-05.pt"
INCEPTION_SIZE = 299  # the network's input: 3 x 299 x 299, values in [0, 255]
FEATURE_DIM = 2048  # its pool3 features
# clean-fid's per-image PIL resize vs inception_resize, max |difference| on the 0..255 scale (float32, CPU):
# measured 6e-4 (28 px), 5e-4 (32 px), 1e-3 (64 px), 2e-3 (128 px), 3e-3 (512 px); tests allow RESIZE_TOLERANCE
RESIZE_TOLERANCE = 0.01


class InceptionUnavailableError(RuntimeError):
    """The Inception weights are not on disk and cannot be downloaded (the message says how to provide them)."""


def inception_weights_path() -> Path:
    """Where the course looks for the Inception weights first and stores a download: ``<data root>/<file>``."""
    return data_root() / INCEPTION_FILE


def cleanfid_weights_path() -> Path:
    """Where clean-fid itself keeps them (``/tmp``, or the working folder on Windows): used if already there."""
    return Path("./" if platform.system() == "Windows" else "/tmp") / INCEPTION_FILE


def find_inception_weights() -> Path | None:
    """The weights file on disk: the course's path first, then clean-fid's; ``None`` when neither has it."""
    for path in (inception_weights_path(), cleanfid_weights_path()):
        if path.is_file():
            return path
    return None


def unavailable_message() -> str:
    """What to do when the weights are missing: where to download them from, and where to put them."""
    path = inception_weights_path()
    return (f"the Inception weights are not at {path} and were not downloaded. By hand: download {inception_url} "
            f"and save it as {path} (the data root is $COURSE_DATA, default datasets/)")


_inception_download_failed = False


def _download(url: str, path: Path, timeout: float) -> None:
    with atomic_write(path, suffix=".part") as temporary, open(temporary, "wb") as out, \
            urllib.request.urlopen(url, timeout=timeout) as response:
        while block := response.read(1 << 20):
            out.write(block)


def inception_available(download: bool = True, timeout: float = 10.0) -> bool:
    """Whether the Inception weights are on disk (:func:`find_inception_weights`), trying one download.

    The download goes to :func:`inception_weights_path` (atomically: a killed download leaves no half file)
    and is tried at most once per process.  The connection attempt runs in a background thread given
    ``timeout`` seconds to get going, so a machine without internet answers ``False`` quickly instead of
    hanging; a started download gets ``30 * timeout`` seconds more.
    """
    global _inception_download_failed
    if find_inception_weights() is not None:
        return True
    if not download or _inception_download_failed:
        return False
    path = inception_weights_path()

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


_extractors: dict[tuple[str, str], Callable[[torch.Tensor], torch.Tensor]] = {}


def inception_feature_extractor(
    device: torch.device | str | None = None,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """clean-fid's Inception-v3 ("clean" mode): float images ``(B, 3, 299, 299)`` in [0, 255] -> ``(B, 2048)``.

    The TorchScript file is loaded once per process and device with clean-fid's ``InceptionV3W(folder,
    download=False, resize_inside=False)``, which normalises to [-1, 1] and calls the file's ``layers``.
    The features come back float32 on ``device``.  Raises :class:`InceptionUnavailableError` (saying how to
    provide the file) when the weights cannot be had.
    """
    from cleanfid.inception_torchscript import InceptionV3W

    device = pick_device(device)
    if not inception_available():
        raise InceptionUnavailableError(unavailable_message())
    path = find_inception_weights()
    key = (str(path), str(device))
    if key not in _extractors:
        with warnings.catch_warnings():  # newer torch: "`torch.jit.load` is deprecated"; the file is TorchScript
            warnings.filterwarnings("ignore", r"`torch\.jit\.", FutureWarning)
            model = InceptionV3W(str(path.parent), download=False, resize_inside=False).to(device).eval()

        def extract(batch: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return model(batch.to(device).float())

        _extractors[key] = extract
    return _extractors[key]


def inception_resize(
    images: torch.Tensor, device: torch.device | str | None = None, batch_size: int = 256
) -> torch.Tensor:
    """clean-fid's "clean" preprocessing on whole batches: uint8 ``N x C x H x W`` -> float32 ``N x 3 x 299 x 299``.

    Gray images (``C = 1``) become 3 equal channels; every channel is resized with bicubic filtering
    (PIL's kernel, a = -0.5, widened when shrinking: ``interpolate(..., antialias=True)`` is a port of
    PIL's resampling) and clipped to [0, 255], as clean-fid's ``build_resizer("clean")`` does one image
    at a time with PIL ``'F'`` images.  The result stays on ``device`` (default: the GPU when there is
    one), ``batch_size`` images at a time.  Max absolute difference to clean-fid's per-image PIL resize,
    measured on random uint8 images (0..255 scale): 6e-4 at 28 px, 5e-4 at 32 px, 1e-3 at 64 px,
    3e-3 at 512 px; the tests hold it below :data:`RESIZE_TOLERANCE` = 0.01 (uint8 steps are 1.0).
    """
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"inception_resize needs N x 1 x H x W or N x 3 x H x W images, got {tuple(images.shape)}")
    device = pick_device(device)
    if len(images) <= batch_size:  # one batch (image_features' case): no copy into a larger tensor
        return _clean_resize(images, device).expand(-1, 3, -1, -1).contiguous()
    out = torch.empty((len(images), 3, INCEPTION_SIZE, INCEPTION_SIZE), device=device)
    for part in chunks(len(images), batch_size):
        out[part] = _clean_resize(images[part], device)  # a gray channel is broadcast to the three
    return out


def _clean_resize(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    batch = images.to(device).float()
    size = (INCEPTION_SIZE, INCEPTION_SIZE)
    try:
        resized = F.interpolate(batch, size=size, mode="bicubic", antialias=True, align_corners=False)
    except NotImplementedError:  # an accelerator without antialiased bicubic (MPS on some torch versions)
        resized = F.interpolate(batch.cpu(), size=size, mode="bicubic", antialias=True, align_corners=False)
    return resized.clamp_(0, 255).to(device)
