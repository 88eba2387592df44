"""Latent-space analysis of small MLP VAEs (chapter 04).

A VAE with a 2-D or 3-D latent (784-400-N, ``vae.mlp.MLPVAE``, trained by ``vae.mlp.MLPVAERun`` from
:func:`config_for`) is trained with a sane set-up (Adam 1e-3,
shuffled batches: reference write-up W0 used lr 1e-5 without shuffling).  Its codes of a whole data set are the material
for two density models fitted with scikit-learn:

* :class:`GaussianMixtureSampler`: a 10-component Gaussian mixture (``log_density``, ``sample``);
* :class:`NearestNeighbourSampler`: k = 3 nearest neighbours (the kNN density estimate, SMOTE-like
  sampling between neighbouring codes, and the majority digit of a point's neighbours).

:func:`central_and_marginal` picks "central" (high-density) and "marginal" (low-density) codes by density
quantiles instead of by hand (the reference write-up's gap), and the table helpers turn scores into Markdown tables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.special import gammaln
from scipy.stats import norm
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

from utils.classifier import predict
from utils.config import by_profile, default_dataset
from utils.data import require_images
from utils.fid import fid_from_features, image_features, per_class_fid
from utils.noise import categorical, per_sample_rand, per_sample_randn
from utils.report import markdown_table
from utils.sample_scores import inception_score
from vae.mlp import MLPVAE, MLPVAEConfig, chapter_config, decode, encode, flat_pixels

PUBLISHED_EPOCHS = 100  # reference write-up W0's training length for both models


def config_for(profile: str, dataset: str | None = None, latent: int = 2, **overrides: Any) -> MLPVAEConfig:
    """What ``profile`` trains in chapter 04: a 784-400-``latent`` VAE (Adam 1e-3, batch 128, shuffled batches).

    The published 100 epochs in ``full`` (on MNIST by default); 60 on mnist5k in ``quick`` (the test loss has
    flattened by then); 2 in ``smoke``.  Reference write-up W0 used lr 1e-5 without shuffling.  The chapter's
    evaluation: ``score_samples`` images per generated set for IS and FID (300 / 5,000 / 10,000) and
    ``distribution_samples`` prior samples for the digit tables (1,000 / 30,000 / 30,000, W0's count).
    ``overrides`` replace any :class:`~vae.mlp.MLPVAEConfig` field.
    """
    settings = {"model": "vae", "dataset": dataset or default_dataset(profile, full="mnist"), "latent": latent,
                "hidden": 400, "epochs": by_profile(profile, smoke=2, quick=60, full=PUBLISHED_EPOCHS),
                "score_samples": by_profile(profile, smoke=300, quick=5000, full=10_000),
                "distribution_samples": by_profile(profile, smoke=1000, quick=30_000, full=30_000)}
    return chapter_config(settings, overrides)  # COURSE_SCALE shrinks the profile's counts


# --------------------------------------------------------------------------- codes and images


def encode_set(model: MLPVAE, images: torch.Tensor) -> torch.Tensor:
    """Posterior means ``mu(x)`` of a whole uint8 image set (CPU float tensor ``N x latent``)."""
    return encode(model, flat_pixels(images))


def decode_codes(model: MLPVAE, z: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 images (the Bernoulli means, ``model.image_shape``) decoded from latent codes ``z`` (``N x latent``)."""
    return decode(model, torch.as_tensor(np.asarray(z) if not isinstance(z, torch.Tensor) else z, dtype=torch.float32))


def prior_codes(n: int, latent: int, seed: int = 0) -> torch.Tensor:
    """``n`` draws of ``z ~ N(0, I)``: the VAE's "general" generations (code ``k`` fixed by ``(seed, k)``)."""
    return per_sample_randn(n, (latent,), seed)


def manifold_codes(n: int = 15, latent: int = 2, dims: tuple[int, int] = (0, 1),
                   fixed: Mapping[int, float] | None = None, edge: float = 0.05) -> torch.Tensor:
    """An ``n x n`` grid of codes at the prior's quantiles ``edge .. 1 - edge`` along ``dims``, row by row.

    Rows go from high to low ``z[dims[1]]`` (top of the picture = up), columns from low to high ``z[dims[0]]``;
    the other coordinates are 0 or ``fixed[dim]``.
    """
    values = torch.tensor(norm.ppf(np.linspace(edge, 1 - edge, n)), dtype=torch.float32)
    z = torch.zeros(n, n, latent)
    for dim, value in (fixed or {}).items():
        z[..., dim] = value
    z[..., dims[0]] = values.view(1, n)
    z[..., dims[1]] = values.flip(0).view(n, 1)
    return z.reshape(n * n, latent)


# --------------------------------------------------------------------------- density models


def _as_array(codes: torch.Tensor | np.ndarray) -> np.ndarray:
    array = codes.detach().cpu().numpy() if isinstance(codes, torch.Tensor) else np.asarray(codes)
    if array.ndim != 2:
        raise ValueError(f"codes must be N x latent, got shape {array.shape}")
    return array.astype(np.float64)


class GaussianMixtureSampler:
    """A Gaussian mixture (scikit-learn, full covariances) fitted on latent codes."""

    def __init__(self, components: int = 10, seed: int = 0):
        self.components, self.seed = components, seed
        self.mixture: GaussianMixture | None = None

    def fit(self, codes: torch.Tensor | np.ndarray) -> GaussianMixtureSampler:
        codes = _as_array(codes)
        if len(codes) < self.components:
            raise ValueError(f"a {self.components}-component Gaussian mixture needs at least {self.components} "
                             f"codes, got {len(codes)}")
        self.mixture = GaussianMixture(self.components, covariance_type="full", n_init=2, random_state=self.seed)
        self.mixture.fit(_as_array(codes))
        return self

    def _fitted(self) -> GaussianMixture:
        if self.mixture is None:
            raise RuntimeError("fit the GaussianMixtureSampler on codes first")
        return self.mixture

    def log_density(self, z: torch.Tensor | np.ndarray) -> np.ndarray:
        """``log p(z)`` under the mixture, one value per row."""
        return self._fitted().score_samples(_as_array(z))

    def centrality(self, z: torch.Tensor | np.ndarray) -> np.ndarray:
        """Minus the squared Mahalanobis distance of each row to the mean of its most responsible component.

        Unlike ``log_density`` it does not favour the tightest cluster: the centre of every component scores 0.
        """
        mixture = self._fitted()
        points = _as_array(z)
        component = mixture.predict(points)
        offset = points - mixture.means_[component]
        precision_chol = mixture.precisions_cholesky_[component]  # precision = L L^T
        whitened = np.einsum("ni,nij->nj", offset, precision_chol)
        return -np.sum(whitened**2, axis=1)

    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` codes drawn from the mixture (in random order, not grouped by component).

        Code ``k`` depends only on ``(seed, k)``: its component and its Gaussian noise are per-sample draws.
        """
        mixture = self._fitted()
        uniform = per_sample_rand(n, (1,), seed, stream=0)[:, 0]
        component = categorical(torch.from_numpy(mixture.weights_), uniform).numpy()
        noise = per_sample_randn(n, (mixture.means_.shape[1],), seed, stream=1, dtype=torch.float64).numpy()
        chol = np.linalg.cholesky(mixture.covariances_)
        z = mixture.means_[component] + np.einsum("nij,nj->ni", chol[component], noise)
        return torch.from_numpy(z).float()


class NearestNeighbourSampler:
    """k nearest neighbours (scikit-learn) among latent codes: a density estimate, a sampler, a digit map.

    * ``log_density(z)``: the kNN estimate ``p(z) = k / (N V_d r_k(z)^d)``, ``r_k`` the distance to the
      k-th nearest code and ``V_d`` the volume of the unit ball in ``d`` dimensions;
    * ``sample(n)``: a random code moved a uniform fraction of the way to one of its k nearest codes
      (SMOTE-style: new points stay on the codes' own manifold);
    * ``predict(z)``: the majority label of the k nearest codes (when fitted with labels).
    """

    def __init__(self, k: int = 3):
        self.k = k
        self.codes: np.ndarray | None = None
        self.neighbours: NearestNeighbors | None = None
        self.classifier: KNeighborsClassifier | None = None

    def fit(self, codes: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray | None = None):
        self.codes = _as_array(codes)
        if len(self.codes) <= self.k:
            raise ValueError(f"need more than k = {self.k} codes, got {len(self.codes)}")
        self.neighbours = NearestNeighbors(n_neighbors=self.k + 1).fit(self.codes)
        if labels is not None:
            labels = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
            self.classifier = KNeighborsClassifier(self.k).fit(self.codes, labels)
        return self

    def _fitted(self) -> NearestNeighbors:
        if self.neighbours is None:
            raise RuntimeError("fit the NearestNeighbourSampler on codes first")
        return self.neighbours

    def log_density(self, z: torch.Tensor | np.ndarray, exclude_self: bool = False) -> np.ndarray:
        """kNN log-density; ``exclude_self`` for the fitted codes themselves (a code is not its own neighbour)."""
        points = _as_array(z)
        distances, _ = self._fitted().kneighbors(points, n_neighbors=self.k + int(exclude_self))
        radius = np.maximum(distances[:, -1], 1e-12)
        n, d = self.codes.shape
        log_unit_ball = 0.5 * d * math.log(math.pi) - gammaln(0.5 * d + 1)
        return math.log(self.k) - math.log(n) - log_unit_ball - d * np.log(radius)

    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` codes; code ``k`` depends only on ``(seed, k)`` (three per-sample uniform numbers)."""
        if n == 0:
            return torch.empty(0, self._fitted().n_features_in_)
        uniform = per_sample_rand(n, (3,), seed, dtype=torch.float64).numpy()
        start = np.minimum((uniform[:, 0] * len(self.codes)).astype(np.int64), len(self.codes) - 1)
        _, index = self._fitted().kneighbors(self.codes[start])  # k + 1 neighbours, the first is the code itself
        partner = index[np.arange(n), 1 + np.minimum((uniform[:, 1] * self.k).astype(np.int64), self.k - 1)]
        step = uniform[:, 2:3]
        z = self.codes[start] + step * (self.codes[partner] - self.codes[start])
        return torch.from_numpy(z).float()

    def _labelled(self) -> KNeighborsClassifier:
        if self.classifier is None:
            raise RuntimeError("fit the NearestNeighbourSampler with labels to predict them")
        return self.classifier

    def predict(self, z: torch.Tensor | np.ndarray) -> np.ndarray:
        return self._labelled().predict(_as_array(z))

    def agreement(self, z: torch.Tensor | np.ndarray) -> np.ndarray:
        """Share of the k nearest codes that carry the majority label (1 inside a one-digit cluster)."""
        return self._labelled().predict_proba(_as_array(z)).max(axis=1)


@dataclass
class DensitySelection:
    """Central and marginal codes picked from a candidate pool by quantiles of two scores."""

    central: torch.Tensor
    marginal: torch.Tensor
    central_index: np.ndarray  # rows of the candidate pool, most central first
    marginal_index: np.ndarray  # rows of the candidate pool, lowest density first
    central_threshold: float  # centrality at or above which a candidate is central
    marginal_threshold: float  # log p(z) at or below which a candidate is marginal


def central_and_marginal(candidates: torch.Tensor, log_density: np.ndarray, fraction: float = 0.1,
                         centrality: np.ndarray | None = None) -> DensitySelection:
    """The ``fraction`` of ``candidates`` with the lowest log-density (marginal) and the most central ones.

    ``centrality`` (default: ``log_density`` itself) ranks the central pick: the top ``fraction``.
    """
    if not 0 < fraction <= 0.5:
        raise ValueError(f"fraction must be in (0, 0.5], got {fraction}")
    if len(candidates) == 0:
        raise ValueError("central and marginal codes need at least one candidate code; the pool has 0")
    log_density = np.asarray(log_density, dtype=np.float64)
    centrality = log_density if centrality is None else np.asarray(centrality, dtype=np.float64)
    if not len(log_density) == len(centrality) == len(candidates):
        raise ValueError(f"{len(log_density)} densities and {len(centrality)} centralities "
                         f"for {len(candidates)} candidates")
    count = max(1, int(round(fraction * len(candidates))))
    low = np.argsort(log_density, kind="stable")[:count]
    high = np.argsort(-centrality, kind="stable")[:count]
    return DensitySelection(central=candidates[torch.from_numpy(high)], marginal=candidates[torch.from_numpy(low)],
                            central_index=high, marginal_index=low,
                            central_threshold=float(centrality[high[-1]]),
                            marginal_threshold=float(log_density[low[-1]]))


# --------------------------------------------------------------------------- scores and tables


def generation_scores(real_features: np.ndarray, generated: Mapping[str, torch.Tensor], classifier: torch.nn.Module,
                      features: str = "classifier", device: torch.device | str | None = None) -> dict[str, dict]:
    """For every named set of uint8 images: classifier-IS (mean, std), FID against ``real_features``, size.

    Every set needs at least 2 images (FID's covariance); a smaller one raises a ``ValueError`` naming it at once.
    """
    for name, images in generated.items():
        require_images(images, 2, "IS and FID", f"the set {name!r}")
    scores = {}
    for name, images in generated.items():
        fake = image_features(images, features, device, classifier=classifier)
        is_mean, is_std = inception_score(images, classifier)
        scores[name] = {"is": is_mean, "is_std": is_std, "fid": fid_from_features(real_features, fake),
                        "n": len(images)}
    return scores


def distribution_table(counts: Mapping[str, torch.Tensor | np.ndarray | Sequence[int]],
                       class_names: Sequence[str]) -> str:
    """The write-up's digit-distribution table: counts, then shares in %, per class, with Sum and Avg columns."""
    arrays = {name: np.asarray(values.cpu() if isinstance(values, torch.Tensor) else values, dtype=np.int64)
              for name, values in counts.items()}
    for name, values in arrays.items():
        require_images(int(values.sum()), 1, "a digit-distribution row", f"the set {name!r}")
    header = ["set", *class_names, "Sum", "Avg"]
    rows = [[f"{name} (#)", *values.tolist(), int(values.sum()), f"{values.sum() / len(values):g}"]
            for name, values in arrays.items()]
    rows += [[f"{name} (%)", *[f"{100 * v / values.sum():.2f}%" for v in values], "100%", f"{100 / len(values):g}%"]
             for name, values in arrays.items()]
    return markdown_table(header, rows)


def total_variation(counts: torch.Tensor | np.ndarray, reference: torch.Tensor | np.ndarray) -> float:
    """Total-variation distance between two class histograms (0 = same shares, 1 = disjoint)."""
    p = np.asarray(counts, dtype=np.float64)
    q = np.asarray(reference, dtype=np.float64)
    require_images(int(p.sum()), 1, "a total-variation distance", "the class histogram")
    require_images(int(q.sum()), 1, "a total-variation distance", "the reference histogram")
    return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


def mid_gray_share(images: torch.Tensor, low: int = 51, high: int = 204) -> float:
    """Share of pixels strictly between ``low`` and ``high`` (20%-80% gray): blur raises it, real digits have few."""
    require_images(images, 1, "the mid-gray share", "the image set")
    return ((images > low) & (images < high)).float().mean().item()


def nearest_image_distance(images: torch.Tensor, reference: torch.Tensor) -> np.ndarray:
    """Per image, the Euclidean pixel distance (pixels in [0, 1]) to its nearest ``reference`` image."""
    require_images(images, 1, "nearest-image distances", "the image set")
    require_images(reference, 1, "nearest-image distances", "the reference set")
    def flat(batch: torch.Tensor) -> np.ndarray:
        return batch.cpu().flatten(1).double().numpy() / 255.0

    distances, _ = NearestNeighbors(n_neighbors=1).fit(flat(reference)).kneighbors(flat(images))
    return distances[:, 0]


def compare_sets(general: torch.Tensor, marginal: torch.Tensor, reference: torch.Tensor,
                 reference_labels: torch.Tensor, classifier: torch.nn.Module, features: str = "classifier",
                 device: torch.device | str | None = None, codes: Mapping[str, torch.Tensor] | None = None,
                 neighbours: NearestNeighbourSampler | None = None, least: int = 50,
                 nearest_images: int = 2000) -> dict[str, Any]:
    """The measures that tell apart why two generated sets (uint8 images) score different FIDs.

    Returns ``{"shared_digits": [...], "general": {...}, "marginal": {...}, "real": {...}}``; each set's dict has
    ``per_digit_fid`` (the mean FID of each digit the classifier reads, against the reference images of that
    digit, over the digits both sets contain at least ``least`` times; NaN when there are none), ``mid_gray``
    (share of 20-80 % gray pixels: blur) and ``nearest`` (mean pixel distance, pixels in [0, 1], of the first
    ``nearest_images`` images to their nearest reference image: shapes no training digit has).  ``real`` holds
    the reference images' own ``mid_gray``.  Given the sets' latent ``codes`` (``{"general": ..., "marginal":
    ...}``) and a labelled :class:`NearestNeighbourSampler`, each set also gets ``agreement`` (how often its
    codes' nearest training codes carry one digit) and ``radius`` (mean distance of its codes from the origin).
    """
    sets = {"general": general, "marginal": marginal}
    for name, images in sets.items():
        require_images(images, 2, "a set comparison", f"the {name} set")
    per_digit, counts = {}, {}
    for name, images in sets.items():
        labels, _ = predict(images, classifier)
        per_digit[name] = per_class_fid(reference, reference_labels, images, labels, features, device, classifier)
        counts[name] = torch.bincount(labels, minlength=10)
    shared = [d for d in range(10) if all(counts[name][d] >= max(least, 2) for name in sets)]  # FID needs 2
    result: dict[str, Any] = {"shared_digits": shared, "real": {"mid_gray": mid_gray_share(reference)}}
    for name, images in sets.items():
        result[name] = {
            "per_digit_fid": float(np.mean([per_digit[name][d] for d in shared])) if shared else float("nan"),
            "mid_gray": mid_gray_share(images),
            "nearest": float(nearest_image_distance(images[:nearest_images], reference).mean()),
        }
        if codes is not None and neighbours is not None:
            result[name] |= {"agreement": float(neighbours.agreement(codes[name]).mean()),
                             "radius": float(torch.as_tensor(codes[name]).norm(dim=1).mean())}
    return result
