"""The Frechet distance between two Gaussians, in torch float64 from symmetric eigenvalues (FID's arithmetic).

FID (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", eq. 6) is ``d^2 = |mu1 - mu2|^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^(1/2))``.  ``S1 S2`` is not
symmetric, so clean-fid (like the TTUR code) takes SciPy's general matrix square root, ``sqrtm`` (a
complex Schur decomposition: 33-91 s for D = 2048 on a 2-core CPU, with imaginary round-off to discard).
Only the trace is needed, and for any factor ``F`` with ``F F^T = S1`` (``F`` may be rectangular) the
non-zero eigenvalues of ``S1 S2 = F (F^T S2)`` are those of the symmetric positive semi-definite
``F^T S2 F``.  So ``Tr((S1 S2)^(1/2))`` is the sum of the square roots of the eigenvalues of a symmetric
matrix: ``torch.linalg.eigvalsh`` (real arithmetic, backward stable, several times faster than a Schur
decomposition, and on the GPU).  With ``F = S1^(1/2)`` (from ``torch.linalg.eigh`` of ``S1``) this is
``S1^(1/2) S2 S1^(1/2)``; cheaper factors give the same eigenvalues: the Cholesky factor of whichever
covariance is positive definite (no eigenvectors to compute: 2.1 s instead of 2.4 s for D = 2048 on a quiet
2-core CPU, 7.6 s instead of 42 s on a busy one; ``tools/fid_bench.py``), or the centred features
themselves when a set has fewer samples than dimensions (an ``N x N`` problem: milliseconds).

:func:`scipy_frechet_distance` is clean-fid's own computation, kept as the reference the tests and
``tools/fid_bench.py`` compare with.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import warnings
from collections.abc import Iterator
from unittest import mock

import cleanfid.fid
import numpy as np
import scipy.linalg
import torch

from utils.data import require_images

# mean (D,), covariance (D, D), and a root (D, N) with root root^T = covariance, or None
Moments = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]


def linalg_device(device: torch.device | str | None = None) -> torch.device:
    """Where the float64 linear algebra runs: ``device`` if given, else CUDA when available, else the CPU
    (Apple's MPS has no float64)."""
    return torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _float64(value, device: torch.device) -> torch.Tensor:
    value = value if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
    return value.to(device=device, dtype=torch.float64)


def moments(features, device: torch.device | str | None = None) -> Moments:
    """Mean ``(D,)``, unbiased covariance ``(D, D)`` and a root ``R`` (``D x N``, ``R R^T`` = covariance) of
    ``N x D`` features, float64 tensors on :func:`linalg_device`.  Fewer than 2 rows raise a ``ValueError``."""
    require_images(len(features), 2, "feature statistics", "the feature set")
    values = _float64(features, linalg_device(device))
    mu = values.mean(dim=0)
    root = (values - mu).T / math.sqrt(len(values) - 1)
    return mu, root @ root.T, root


def feature_statistics(features, device: torch.device | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and unbiased covariance ``(D, D)`` of ``N x D`` features as float64 numpy (``np.mean``,
    ``np.cov(rowvar=False)``), computed in float64 on :func:`linalg_device`.  ``ValueError`` for < 2 rows."""
    mu, sigma, _ = moments(features, device)
    return mu.cpu().numpy(), sigma.cpu().numpy()


def _symmetric(matrix: torch.Tensor) -> torch.Tensor:
    return (matrix + matrix.T) / 2


def _noise_to_zero(eigenvalues: torch.Tensor) -> torch.Tensor:
    """Eigenvalues below ``max * D * eps`` (round-off around a true 0, as ``numpy.linalg.matrix_rank`` counts
    it) set to 0, negative ones included: their square roots (1e-7 for 1e-14) would add up over a null space."""
    tolerance = eigenvalues.abs().max() * len(eigenvalues) * torch.finfo(eigenvalues.dtype).eps
    return torch.where(eigenvalues > tolerance, eigenvalues, torch.zeros_like(eigenvalues))


def trace_sqrt_product(s1: torch.Tensor, s2: torch.Tensor, root1: torch.Tensor | None = None) -> torch.Tensor:
    """``Tr((S1 S2)^(1/2))`` of two covariances (float64 tensors ``D x D``): the square roots of the eigenvalues
    of ``F^T S2 F``, summed, for a factor ``F F^T = S1``: ``root1`` if given (``D x N``), else the Cholesky
    factor of ``S1`` or ``S2`` (``Tr((S1 S2)^(1/2)) = Tr((S2 S1)^(1/2))``) when one is positive definite,
    else ``S1^(1/2)`` from ``torch.linalg.eigh`` (``V diag(sqrt(w))``, an orthogonal rotation of it)."""
    if root1 is None:
        for first, second in ((s1, s2), (s2, s1)):
            cholesky, info = torch.linalg.cholesky_ex(first)
            if int(info) == 0:
                root1, s2 = cholesky, second
                break
        else:
            values, vectors = torch.linalg.eigh(_symmetric(s1))
            root1 = vectors * _noise_to_zero(values).sqrt()
    middle = _symmetric(root1.T @ s2 @ root1)
    return _noise_to_zero(torch.linalg.eigvalsh(middle)).sqrt().sum()


def frechet_distance(
    mu1, sigma1, mu2, sigma2, device: torch.device | str | None = None, root1: torch.Tensor | None = None
) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2) (Heusel et al. 2017, eq. 6), in float64.

    Means ``(D,)`` and covariances ``(D, D)``, numpy or torch, any float dtype.  The trace of the matrix
    square root is the sum of the square roots of the eigenvalues of a symmetric matrix similar to
    ``S1 S2`` (:func:`trace_sqrt_product`, ``torch.linalg.eigvalsh``; why: the module docstring); eigenvalues
    at round-off level (singular covariances: fewer samples than dimensions) count as 0.  ``root1``
    (``D x N``, ``root1 root1^T = sigma1``, from :func:`moments`) makes a set of few samples cheap.  Runs on
    :func:`linalg_device` (CUDA when available).  Identical inputs give 0 up to round-off (1e-9 relative);
    it agrees with SciPy's ``sqrtm`` to 1e-8 relative.  Raises ``ValueError`` when the shapes do not match.
    """
    device = linalg_device(device)
    m1, s1, m2, s2 = (_float64(value, device) for value in (mu1, sigma1, mu2, sigma2))
    if m1.dim() != 1 or m1.shape != m2.shape or s1.shape != s2.shape or s1.shape != (len(m1), len(m1)):
        raise ValueError(f"Frechet distance needs means (D,) and covariances (D, D) of one D; got "
                         f"{tuple(m1.shape)}, {tuple(s1.shape)}, {tuple(m2.shape)}, {tuple(s2.shape)}")
    root1 = None if root1 is None else _float64(root1, device)
    diff = m1 - m2
    return float(diff @ diff + s1.trace() + s2.trace() - 2 * trace_sqrt_product(s1, s2, root1))


def frechet_distance_of_moments(first: Moments, second: Moments) -> float:
    """:func:`frechet_distance` of two :func:`moments` (a root may be ``None``: statistics only), factoring
    through the set with fewer samples when it has fewer samples than dimensions (an ``N x N`` eigenproblem)."""

    def samples(moment: Moments) -> float:
        return math.inf if moment[2] is None else moment[2].shape[1]

    if samples(first) > samples(second):
        first, second = second, first
    root = first[2] if samples(first) < len(first[0]) else None
    return frechet_distance(first[0], first[1], second[0], second[1], first[0].device, root)


# --------------------------------------------------------------------------- the reference: SciPy's sqrtm


class _SqrtmWithDisp:
    """``scipy.linalg`` as clean-fid 0.1.35 calls it: ``sqrtm(A, disp=False)`` returning ``(root, error)``.

    SciPy deprecated ``disp`` in 1.16 and later releases dropped it (``sqrtm() got an unexpected keyword
    argument 'disp'``); clean-fid still passes it.
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
def _scipy_setting() -> Iterator[None]:
    """clean-fid's ``frechet_distance`` on any SciPy, without its deprecation warning."""
    linalg = contextlib.nullcontext() if sqrtm_takes_disp() else mock.patch.object(cleanfid.fid, "linalg",
                                                                                   _SqrtmWithDisp())
    with linalg, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The `disp` argument is deprecated", DeprecationWarning)  # clean-fid's call
        warnings.filterwarnings("ignore", "Matrix is singular", scipy.linalg.LinAlgWarning)
        yield


def scipy_frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """clean-fid's own ``frechet_distance`` (SciPy ``sqrtm`` of ``S1 S2``, float64 numpy inputs), on any SciPy:
    the reference :func:`frechet_distance` is checked against.  Slow: 33-91 s for D = 2048 on a 2-core CPU."""
    with _scipy_setting():
        return float(cleanfid.fid.frechet_distance(mu1, sigma1, mu2, sigma2))
