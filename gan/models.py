"""Generators and discriminators.

* :class:`ResNetGenerator` / :class:`ResNetDiscriminator`: the CUB 32x32 set-up of the reference write-up
  (REFERENCES.md), with correct nearest-neighbour up-sampling and true mean-pool down-sampling
  (the reference write-up's ``repeat`` + PixelShuffle and PixelUnshuffle + ``view`` mix channels).
* :class:`DigitGenerator` / :class:`DigitDiscriminator`: a small DCGAN-like pair for 28 px
  digits, fast enough to train three GANs on two CPU cores in minutes (smoke and quick).

Discriminators return one logit per image (``B``); they hold no batch norm, which the
WGAN-GP penalty (a per-sample gradient) does not allow.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def nearest_upsample(x: torch.Tensor) -> torch.Tensor:
    """Double height and width by copying each pixel into a 2x2 block.

    ``repeat_interleave`` puts the four copies of channel ``c`` next to each other
    (``c, c, c, c``), which is the group PixelShuffle turns into one 2x2 block;
    the reference write-up's ``repeat`` interleaved different channels instead.
    """
    return F.pixel_shuffle(x.repeat_interleave(4, dim=1), 2)


def mean_pool_downsample(x: torch.Tensor) -> torch.Tensor:
    """Halve height and width by averaging each 2x2 block, channel by channel."""
    batch, channels, height, width = x.shape
    blocks = F.pixel_unshuffle(x, 2)  # channel c*4 + k holds pixel k of the 2x2 blocks of channel c
    return blocks.view(batch, channels, 4, height // 2, width // 2).mean(dim=2)


class UpsampleConv2d(nn.Module):
    """Nearest-neighbour up-sampling, then a convolution (as the reference write-up)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(nearest_upsample(x))


class DownsampleConv2d(nn.Module):
    """Mean-pool, then convolve (the reference write-up's order: the convolution runs on the half-size grid)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(mean_pool_downsample(x))


class ResBlockUp(nn.Module):
    """BN, ReLU, Conv3x3, BN, ReLU, UpsampleConv3x3; shortcut UpsampleConv1x1."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.residual = nn.Sequential(
            nn.BatchNorm2d(in_channels), nn.ReLU(),
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(),
            UpsampleConv2d(out_channels, out_channels, 3),
        )
        self.shortcut = UpsampleConv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x) + self.shortcut(x)


class ResBlockDown(nn.Module):
    """ReLU, Conv3x3, ReLU, DownsampleConv3x3; shortcut DownsampleConv1x1."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.residual = nn.Sequential(
            nn.ReLU(), nn.Conv2d(in_channels, out_channels, 3, padding=1),
            nn.ReLU(), DownsampleConv2d(out_channels, out_channels, 3),
        )
        self.shortcut = DownsampleConv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x) + self.shortcut(x)


class ResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.residual = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.residual(x)


class ResNetGenerator(nn.Module):
    """z (128) -> Linear 2048 -> 128x4x4 -> 3 ResBlockUp (32 px) -> BN, ReLU, Conv3x3, tanh."""

    def __init__(self, z_dim: int = 128, channels: int = 128, image_channels: int = 3):
        super().__init__()
        self.z_dim, self.channels = z_dim, channels
        self.project = nn.Linear(z_dim, channels * 4 * 4)
        self.body = nn.Sequential(
            ResBlockUp(channels, channels), ResBlockUp(channels, channels), ResBlockUp(channels, channels),
            nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, image_channels, 3, padding=1), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.project(z).view(-1, self.channels, 4, 4))


class ResNetDiscriminator(nn.Module):
    """ResBlockDown x2, ResBlock x2, ReLU, sum over space, Linear -> one logit."""

    def __init__(self, channels: int = 128, image_channels: int = 3):
        super().__init__()
        self.body = nn.Sequential(
            ResBlockDown(image_channels, channels), ResBlockDown(channels, channels),
            ResBlock(channels), ResBlock(channels), nn.ReLU(),
        )
        self.head = nn.Linear(channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).sum(dim=(2, 3))).squeeze(1)


def conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU()]


def up_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU()]


class DigitGenerator(nn.Module):
    """A small DCGAN-like generator for 28 x 28 images.

    z -> Linear -> 2c x 7 x 7 -> Conv3x3 -> up-conv (14 x 14) -> Conv3x3 -> up-conv (28 x 28) -> tanh,
    batch norm and ReLU between layers.  The 3x3 convolutions add depth where it is cheap (at 7 and
    14 px); on mnist5k they raised the share of recognisable digits more than doubling the width did.
    """

    def __init__(self, z_dim: int = 64, channels: int = 16, image_channels: int = 1):
        super().__init__()
        self.z_dim, self.channels = z_dim, channels
        self.project = nn.Sequential(
            nn.Linear(z_dim, 2 * channels * 7 * 7, bias=False), nn.BatchNorm1d(2 * channels * 7 * 7), nn.ReLU()
        )
        self.body = nn.Sequential(
            *conv_bn_relu(2 * channels, 2 * channels), *up_bn_relu(2 * channels, channels),
            *conv_bn_relu(channels, channels),
            nn.ConvTranspose2d(channels, image_channels, 4, stride=2, padding=1), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.project(z).view(-1, 2 * self.channels, 7, 7))


class DigitDiscriminator(nn.Module):
    """28 x 28 -> conv s2 (14) -> conv s2 (7) -> Linear -> one logit; LeakyReLU, no batch norm."""

    def __init__(self, channels: int = 16, image_channels: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(image_channels, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(channels, 2 * channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Flatten(),
        )
        self.head = nn.Linear(2 * channels * 7 * 7, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)).squeeze(1)


ARCHITECTURES = {"resnet": (ResNetGenerator, ResNetDiscriminator), "digits": (DigitGenerator, DigitDiscriminator)}


def build_gan(architecture: str, z_dim: int, channels: int, image_channels: int,
              d_channels: int | None = None) -> tuple[nn.Module, nn.Module]:
    """The generator and discriminator of ``architecture`` (``resnet`` or ``digits``).

    ``channels`` sizes the generator and, unless ``d_channels`` is given, the discriminator.
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; choose one of: {', '.join(ARCHITECTURES)}")
    generator_class, discriminator_class = ARCHITECTURES[architecture]
    generator = generator_class(z_dim=z_dim, channels=channels, image_channels=image_channels)
    return generator, discriminator_class(channels=d_channels or channels, image_channels=image_channels)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
