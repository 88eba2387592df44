"""Scores of a set of generated images read by the digit classifier: class histogram, its entropy, classifier-IS."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn

from utils.classifier import predict, softmax_predictions
from utils.data import check_images, require_images

CLASSIFIER_IS_LABEL = "classifier-IS (mnist5k digit classifier)"


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
    check_images(images)
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
