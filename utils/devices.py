"""Where and how small models run: the device, CPU threads, mixed precision, channels-last memory.

Every family asks here instead of deciding for itself: :func:`pick_device` (CUDA, then Apple's MPS, then
the CPU), :func:`small_model_threads` (one CPU thread unless ``COURSE_THREADS`` says otherwise),
:func:`autocast` (a config's ``amp``; ``COURSE_AMP`` overrides it) and :func:`use_channels_last` (a config's
``channels_last``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch


def pick_device(preferred: str | torch.device | None = None) -> torch.device:
    """``preferred`` if given, else CUDA, then Apple's MPS, then the CPU."""
    if preferred is not None:
        return torch.device(preferred)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def small_model_threads(device: torch.device | str) -> contextlib.AbstractContextManager:
    """The CPU threads a small model runs with: one, or ``COURSE_THREADS`` (a no-op on an accelerator).

    With one thread the weights come out the same on every machine with the same torch build, and a
    small network loses little: on a busy two-core machine two threads ran 3-15x slower than one
    (OpenMP threads wait on each other). On a quiet machine more threads do help the MLP VAEs
    (``COURSE_THREADS=2 python tools/bench.py mlp_vae``).
    """
    if torch.device(device).type != "cpu":
        return contextlib.nullcontext()
    return cpu_threads(course_threads())


def course_threads() -> int:
    """``COURSE_THREADS`` from the environment (default 1); a clear error if it is not a positive whole number."""
    value = os.environ.get("COURSE_THREADS", "").strip() or "1"
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"COURSE_THREADS must be a positive whole number of CPU threads, not {value!r}")
    return int(value)


@contextlib.contextmanager
def cpu_threads(threads: int) -> Iterator[None]:
    """``threads`` torch CPU threads inside the block, the previous number after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _switched_on(variable: str, default: bool = True) -> bool:
    value = os.environ.get(variable, "").strip().lower()
    return default if not value else value not in ("0", "false", "no", "off")


def use_channels_last(device: torch.device | str, wanted: bool = True) -> bool:
    """Whether a conv model whose config asks for channels-last (``wanted``) gets it: on CUDA only.

    Channels-last (N x H x W x C in memory) lets cuDNN pick its faster convolution kernels; on the CPU
    it gains nothing for the course's small nets, so it is never used there.
    """
    return wanted and torch.device(device).type == "cuda"


def autocast(device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager:
    """Mixed precision where a family asks for it (``enabled``) and the environment allows it.

    * CUDA: on unless ``COURSE_AMP=0`` (bfloat16 where the card has it, else float16).
    * CPU: off unless ``COURSE_AMP=1``: bfloat16 then, which pays only on processors with bfloat16
      units (AVX512-BF16 or AMX; `python tools/bench.py --amp` measures it) and is slow elsewhere.

    ``COURSE_AMP=0`` gives float32 runs everywhere (the benchmark's baseline).
    """
    if not enabled or not _switched_on("COURSE_AMP", default=device.type == "cuda"):
        return contextlib.nullcontext()
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast(device_type="cuda", dtype=dtype)
    if device.type == "cpu":
        return torch.autocast(device_type="cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()
