"""Random numbers: seeding every generator, their state for exact resume, and per-sample noise.

:func:`seed_everything` seeds Python's, NumPy's and torch's generators; :func:`capture_rng_state` /
:func:`restore_rng_state` put all of them into a checkpoint and back (``utils.training.Trainer``).

Per-sample noise: sample ``k`` of seed ``S`` is the same whatever number of samples is drawn.

Every sampler of the course (GAN, VAE, CVAE, the VQ-VAE's priors, the latent samplers of chapter 04)
draws its noise here.  One shared stream for a whole batch would not do: torch's CPU ``randn`` fills a
tensor of 16 or more numbers in blocks, so the first row of ``randn(n, d)`` is not ``randn(1, d)``
unless ``d`` is a multiple of 16, and an autoregressive prior that draws every position of the batch
from one stream gives sample 0 different numbers when the batch grows.  Here sample ``k`` has its own
generator, seeded from ``(S, k)``, and its numbers are drawn on the CPU (the same on every device),
so asking for ``n = 1`` or ``n = 1000`` gives the same first image, and a user can re-draw one
interesting sample by its seed and index.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

_MASK = 2**64 - 1


# --------------------------------------------------------------------------- seeding and generator states


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch's (CPU and CUDA) with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng_state() -> dict[str, Any]:
    """The state of every generator :func:`seed_everything` seeds, as tensors and numbers a checkpoint can hold."""
    numpy_state = np.random.get_state(legacy=False)
    state = {
        "python": random.getstate(),
        "numpy": {
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Put back a state from :func:`capture_rng_state` (loaded on any device)."""
    random.setstate(_as_tuples(state["python"]))
    numpy = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": numpy["key"].cpu().numpy().astype(np.uint32), "pos": numpy["pos"]},
            "has_gauss": numpy["has_gauss"],
            "gauss": numpy["gauss"],
        }
    )
    # a checkpoint loaded with map_location="cuda" brings these back on the GPU; RNG states live on the CPU
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _as_tuples(value: Any) -> Any:
    """``random.setstate`` wants the nested tuples back (a checkpoint may hold lists)."""
    if isinstance(value, list | tuple):
        return tuple(_as_tuples(v) for v in value)
    return value


# --------------------------------------------------------------------------- per-sample noise


def sample_seed(seed: int, index: int, stream: int = 0) -> int:
    """The torch seed of sample ``index`` of ``seed`` (``stream`` tells apart draws of one sampler).

    A SplitMix64 mix of the three numbers (Steele et al. 2014), folded to 32 bits: torch's CPU
    generator (mt19937) keeps only the low 32 bits of its seed, so neighbouring seeds must differ there.
    """
    if index < 0:
        raise ValueError(f"a sample index must be >= 0, got {index}")
    value = int(seed) * 0x9E3779B97F4A7C15 + int(index) * 0xBF58476D1CE4E5B9 + int(stream) * 0x94D049BB133111EB
    value &= _MASK
    value ^= value >> 30
    value = (value * 0xBF58476D1CE4E5B9) & _MASK
    value ^= value >> 27
    value = (value * 0x94D049BB133111EB) & _MASK
    value ^= value >> 31
    return (value ^ (value >> 32)) & 0xFFFFFFFF


def _per_sample(draw, n: int, shape: Sequence[int], seed: int, stream: int, device, dtype) -> torch.Tensor:
    if n < 0:
        raise ValueError(f"the number of samples must be >= 0, got {n}")
    out = torch.empty(n, *(int(s) for s in shape))
    generator = torch.Generator()
    for index in range(n):
        generator.manual_seed(sample_seed(seed, index, stream))
        draw(out.shape[1:], generator=generator, out=out[index])
    return out.to(device=device, dtype=dtype)


def per_sample_randn(n: int, shape: Sequence[int], seed: int, stream: int = 0,
                     device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal noise ``n x *shape``: row ``k`` depends only on ``(seed, k, stream)``.

    Drawn in float32 on the CPU, then moved to ``device`` / ``dtype``.  About 10 microseconds per sample
    on one CPU core: 50,000 latent codes take about half a second.
    """
    return _per_sample(torch.randn, n, shape, seed, stream, device, dtype)


def per_sample_rand(n: int, shape: Sequence[int], seed: int, stream: int = 0,
                    device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Uniform noise in ``[0, 1)``, ``n x *shape``: row ``k`` depends only on ``(seed, k, stream)``."""
    return _per_sample(torch.rand, n, shape, seed, stream, device, dtype)


def categorical(probabilities: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """Indices drawn from the rows of ``probabilities`` (``... x K``, each row summing to 1) by inverse CDF.

    ``uniform`` (``...``, values in ``[0, 1)``) is the noise, one number per row: row ``i`` picks the first
    index whose cumulative probability exceeds ``uniform[i]``.  With per-sample noise
    (:func:`per_sample_rand`) a row's draw depends on its own probabilities and number only.
    """
    cumulative = probabilities.double().cumsum(dim=-1)
    cumulative = cumulative / cumulative[..., -1:].clamp_min(1e-300)
    index = torch.searchsorted(cumulative, uniform.double().unsqueeze(-1).to(cumulative.device), right=True)
    return index.squeeze(-1).clamp_(max=probabilities.shape[-1] - 1)
