"""Data augmentation: small random affine moves of digit images (the classifier's and the VQ-VAE prior's)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_affine(
    images: torch.Tensor,
    generator: torch.Generator,
    max_degrees: float = 12.0,
    max_scale: float = 0.1,
    max_shift_px: float = 2.5,
) -> torch.Tensor:
    """Rotate, scale and shift every image of a float batch by its own small random amount (on its device)."""
    n, _, height, width = images.shape
    uniform = torch.rand(n, 4, generator=generator).mul_(2).sub_(1).to(images.device)  # in [-1, 1]
    angle = uniform[:, 0] * math.radians(max_degrees)
    scale = 1 + uniform[:, 1] * max_scale
    theta = torch.zeros(n, 2, 3, device=images.device)
    theta[:, 0, 0] = theta[:, 1, 1] = scale * torch.cos(angle)
    theta[:, 0, 1] = -scale * torch.sin(angle)
    theta[:, 1, 0] = scale * torch.sin(angle)
    theta[:, 0, 2] = uniform[:, 2] * max_shift_px * 2 / width  # grid coordinates span 2 per image side
    theta[:, 1, 2] = uniform[:, 3] * max_shift_px * 2 / height
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")
