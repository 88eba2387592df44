"""Load-or-compute for a notebook's expensive evaluations.

A chapter's IS/FID tables and digit counts depend only on the trained weights and
the evaluation settings, so a re-run with its checkpoints in place can read them
back instead of scoring thousands of images again.  :func:`load_or_compute` keeps
one small file per evaluation next to the checkpoints, holding the ``key`` it was
computed for (weights fingerprints, seeds, sample counts ...) and the result; it
recomputes when the key differs or when asked to (``RETRAIN``).  The file is
written atomically and read with ``weights_only=True``, so it only holds plain
numbers, strings, lists, dicts and tensors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from utils.training import save_checkpoint

# 2: the samplers draw per-sample noise (utils.noise), so samples stored by format 1 are not what they draw now
CACHE_FORMAT = 2
T = TypeVar("T")


def fingerprint(*modules: torch.nn.Module) -> str:
    """SHA-256 (hex, 16 characters) of the modules' state dicts: names, dtypes, shapes and bytes."""
    digest = hashlib.sha256()
    for module in modules:
        for name, tensor in sorted(module.state_dict().items()):
            _hash_tensor(digest, tensor, f"{name}:")
    return digest.hexdigest()[:16]


def tensor_fingerprint(tensor: torch.Tensor) -> str:
    """SHA-256 (hex, 16 characters) of one tensor's dtype, shape and bytes (a data set named by its content)."""
    digest = hashlib.sha256()
    _hash_tensor(digest, tensor)
    return digest.hexdigest()[:16]


def _hash_tensor(digest, tensor: torch.Tensor, label: str = "") -> None:
    tensor = tensor.detach().cpu().contiguous()
    digest.update(f"{label}{tensor.dtype}:{tuple(tensor.shape)};".encode())
    digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())


def plain(value: Any) -> Any:
    """``value`` with numpy scalars and arrays turned into Python numbers and tensors (what ``weights_only`` reads)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def load_or_compute(path: str | Path, key: Mapping[str, Any], compute: Callable[[], T], refresh: bool = False) -> T:
    """The result stored at ``path`` for ``key``, or ``compute()`` (stored there) when there is none.

    ``refresh=True`` (a notebook's ``RETRAIN``) always recomputes.  An unreadable or
    foreign file counts as a miss and is overwritten.  Both paths return the same
    types: numpy values come back as Python numbers and tensors (see :func:`plain`).
    """
    path, key = Path(path), plain(dict(key))
    if not refresh and path.exists():
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # damaged or written by something else: compute again
            stored = None
        if isinstance(stored, dict) and stored.get("format") == CACHE_FORMAT and stored.get("key") == key:
            return stored["value"]
    value = plain(compute())
    save_checkpoint(path, {"format": CACHE_FORMAT, "key": key, "value": value})
    return value
