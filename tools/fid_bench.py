"""Benchmark: FID's two costs, the course's way vs clean-fid's: the Frechet distance and the resize to 299.

``python tools/fid_bench.py [--n N] [--dim D] [--size S] [--device cpu|cuda] [--no-scipy]``

* **Frechet distance** of two sets of ``N x D`` correlated random features (standard normals times one
  random mixing matrix; the second set scaled and shifted): ``utils.frechet.frechet_distance`` (torch,
  float64, eigenvalues of a symmetric matrix: the Cholesky factor of a positive definite covariance, or
  ``S1^(1/2)`` from ``eigh`` when both are singular, timed too) vs SciPy's ``sqrtm`` through clean-fid's own
  ``frechet_distance``: both values, their relative difference, seconds each.
* **Resize** of ``N`` random ``S x S`` RGB uint8 images to 299 x 299: clean-fid's "clean" resize (PIL, one
  image and channel at a time) vs ``utils.inception.inception_resize`` (batches of 256 on the device):
  seconds each and the largest absolute difference on the 0..255 scale.

Times are wall-clock seconds of one run (the statistics of the features are computed before the timing);
on a shared machine compare the ratios, not the seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from cleanfid.resize import build_resizer

from utils.cli import CourseArgumentParser, positive_int, run_cli
from utils.devices import pick_device
from utils.frechet import feature_statistics, frechet_distance, linalg_device, scipy_frechet_distance
from utils.inception import inception_resize


def timed(function: Callable[[], float], device: torch.device) -> tuple[float, float]:
    """``(value, seconds)`` of one call, the device's queue drained before and after."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    value = function()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return value, time.perf_counter() - start


def correlated_features(n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two ``n x dim`` float32 feature sets: correlated Gaussians (one mixing matrix), the second scaled and shifted."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(dim, dim)) / np.sqrt(dim)
    real = rng.normal(size=(n, dim)) @ mixing
    fake = (rng.normal(size=(n, dim)) * 1.1 + 0.05) @ mixing
    return real.astype(np.float32), fake.astype(np.float32)


def eigh_square_root_distance(mu1, sigma1, mu2, sigma2, device: torch.device) -> float:
    """The distance through ``S1^(1/2)`` from ``torch.linalg.eigh`` (what singular covariances take)."""
    s1 = torch.as_tensor(sigma1, dtype=torch.float64, device=device)
    values, vectors = torch.linalg.eigh(s1)
    root = vectors * values.clamp(min=0).sqrt()
    return frechet_distance(mu1, sigma1, mu2, sigma2, device, root1=root)


def frechet_rows(n: int, dim: int, device: torch.device, scipy: bool) -> list[list[str]]:
    real, fake = correlated_features(n, dim)
    first, second = feature_statistics(real, device), feature_statistics(fake, device)
    frechet_distance(np.zeros(4), np.eye(4), np.ones(4), np.eye(4), device)  # warm-up: library and device set-up
    ours, ours_seconds = timed(lambda: frechet_distance(*first, *second, device), device)
    eigh, eigh_seconds = timed(lambda: eigh_square_root_distance(*first, *second, device), device)
    rows = [["torch float64, Cholesky factor + eigvalsh (course)", f"{ours:.6f}", "", f"{ours_seconds:.2f}"],
            ["torch float64, eigh square root + eigvalsh", f"{eigh:.6f}", "", f"{eigh_seconds:.2f}"]]
    if scipy:
        reference, scipy_seconds = timed(lambda: scipy_frechet_distance(*first, *second), torch.device("cpu"))
        for row, value in zip(rows, (ours, eigh), strict=True):
            row[2] = f"{abs(value - reference) / abs(reference):.1e}"
        rows.append(["SciPy sqrtm (clean-fid frechet_distance)", f"{reference:.6f}", "0", f"{scipy_seconds:.2f}"])
    return rows


def resize_rows(n: int, size: int, device: torch.device, batch_size: int = 256) -> list[list[str]]:
    generator = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=generator)
    pil = build_resizer("clean")
    inception_resize(images[:2], device)  # warm-up
    pil_seconds = torch_seconds = largest = 0.0
    for start in range(0, n, batch_size):
        batch = images[start:start + batch_size]
        began = time.perf_counter()
        expected = np.stack([pil(image.permute(1, 2, 0).numpy()) for image in batch]).transpose(0, 3, 1, 2)
        pil_seconds += time.perf_counter() - began
        resized, seconds = timed(lambda batch=batch: inception_resize(batch, device), device)
        torch_seconds += seconds
        largest = max(largest, float((resized.cpu() - torch.from_numpy(expected)).abs().max()))
    return [["clean-fid PIL, one image at a time", f"{pil_seconds:.2f}", f"{1000 * pil_seconds / n:.3f}", ""],
            [f"inception_resize, batches of {batch_size} on {device.type}", f"{torch_seconds:.2f}",
             f"{1000 * torch_seconds / n:.3f}", f"{largest:.2e}"]]


def format_table(header: Sequence[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [header, ["-" * width for width in widths], *rows]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
                     for line in lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = CourseArgumentParser(prog="python tools/fid_bench.py", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=positive_int, default=10_000, help="feature samples and images (default 10000)")
    parser.add_argument("--dim", type=positive_int, default=2048, help="feature dimensions (default 2048, Inception)")
    parser.add_argument("--size", type=positive_int, default=32, help="side of the images to resize (default 32)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: the best available)")
    parser.add_argument("--no-scipy", dest="scipy", action="store_false", help="skip SciPy's sqrtm (slow on a CPU)")
    args = parser.parse_args(argv)
    resize_device = pick_device(args.device)
    linalg = linalg_device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; linear algebra on {linalg}, "
          f"resize on {resize_device}")
    print(f"\n(a) Frechet distance, {args.n:,} x {args.dim} correlated random features per set")
    print(format_table(["method", "FID", "rel. diff to SciPy", "seconds"],
                       frechet_rows(args.n, args.dim, linalg, args.scipy)))
    print(f"\n(b) resize of {args.n:,} random {args.size}-px RGB uint8 images to 299 x 299")
    print(format_table(["method", "seconds", "ms per image", "max abs diff to PIL"],
                       resize_rows(args.n, args.size, resize_device)))
    return 0


if __name__ == "__main__":
    run_cli(main)
