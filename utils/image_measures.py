"""Image measures of a reconstruction against its original: SSIM, PSNR (scikit-image) and PCC, per image.

Both arguments are uint8 batches ``N x C x H x W`` of the same shape, ``N >= 1``.
"""

from __future__ import annotations

import numpy as np
import torch

from utils.data import LONG_LOOP, check_images, long_progress, require_images


def _paired_arrays(a: torch.Tensor, b: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Two uint8 batches of the same shape as numpy N x H x W x C (at least one pair)."""
    check_images(a, "a")
    check_images(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"image batches differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    require_images(a, 1, "an image comparison (SSIM, PSNR, PCC)", "the pair of batches")
    return a.permute(0, 2, 3, 1).cpu().numpy(), b.permute(0, 2, 3, 1).cpu().numpy()


def _ssim_window(height: int, width: int) -> int:
    """skimage's default 7, or the largest odd window that fits a smaller image."""
    side = min(7, height, width)
    side -= 1 - side % 2
    if side < 3:
        raise ValueError(f"SSIM needs images of at least 3x3 pixels, got {height}x{width}")
    return side


def ssim(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Per-image SSIM (skimage, data_range 255, channels averaged for RGB); ``.mean()`` for the batch."""
    from skimage.metrics import structural_similarity

    first, second = _paired_arrays(a, b)
    window = _ssim_window(*first.shape[1:3])
    rgb = first.shape[-1] > 1
    if not rgb:
        first, second = first[..., 0], second[..., 0]
    options = {"data_range": 255, "win_size": window, "channel_axis": -1 if rgb else None}
    pairs = long_progress(zip(first, second, strict=True), len(first), "SSIM", long=100 * LONG_LOOP)
    values = [structural_similarity(x, y, **options) for x, y in pairs]
    return np.asarray(values, dtype=np.float64)


def psnr(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Per-image PSNR in dB (skimage, data_range 255); identical images give ``inf``."""
    from skimage.metrics import peak_signal_noise_ratio

    first, second = _paired_arrays(a, b)
    with np.errstate(divide="ignore"):
        values = [peak_signal_noise_ratio(x, y, data_range=255) for x, y in zip(first, second, strict=True)]
    return np.asarray(values, dtype=np.float64)


def pcc(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Per-image Pearson correlation of pixel values (NaN for a constant image)."""
    first, second = _paired_arrays(a, b)
    x = first.reshape(len(first), -1).astype(np.float64)
    y = second.reshape(len(second), -1).astype(np.float64)
    x -= x.mean(axis=1, keepdims=True)
    y -= y.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x * y).sum(axis=1) / np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))
