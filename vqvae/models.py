"""The VQ-VAE: a convolutional encoder, the vector quantiser, a mirrored decoder.

The reference write-up's OASIS set-up (REFERENCES.md), preset ``"oasis"``:

    encoder  Conv4x4 s2 1 -> 64, ReLU, Conv4x4 s2 64 -> 128, 2 residual blocks, ReLU, Conv1x1 128 -> D = 64
    codebook K = 512 codes of D = 64
    decoder  Conv3x3 D -> 128, 2 residual blocks, ReLU, ConvT4x4 s2 128 -> 64, ReLU, ConvT4x4 s2 64 -> 1

A 256 x 256 slice becomes a 64 x 64 map of code indices.  Preset ``"digits"`` is the same
design, narrower, for 28 px digits: a 7 x 7 map of indices into K = 128 codes of D = 16, small
enough that the priors over it train in a minute on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vqvae.quantizer import QuantizerOutput, VectorQuantizer


@dataclass(frozen=True)
class VQVAEShape:
    """Everything that sizes a VQ-VAE (stored in checkpoints, so a model can be rebuilt)."""

    channels: tuple[int, int] = (64, 128)
    residual_blocks: int = 2
    residual_channels: int = 32
    num_codes: int = 512
    code_dim: int = 64
    image_channels: int = 1


PRESETS = {
    "oasis": VQVAEShape(),
    "digits": VQVAEShape(channels=(32, 64), residual_blocks=2, residual_channels=32, num_codes=128, code_dim=16),
}


def preset_for(dataset: str) -> str:
    """``oasis`` for the brain slices, ``digits`` for the 28 px sets."""
    return "oasis" if dataset == "oasis" else "digits"


class ResidualBlock(nn.Module):
    """x + Conv1x1(ReLU(Conv3x3(ReLU(x)))), the VQ-VAE paper's block."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.residual = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels, hidden, 3, padding=1),
            nn.ReLU(), nn.Conv2d(hidden, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.residual(x)


class Encoder(nn.Sequential):
    """Two stride-2 4x4 convolutions (size / 4), residual blocks, 1x1 to the code dimension."""

    def __init__(self, shape: VQVAEShape):
        low, high = shape.channels
        super().__init__(
            nn.Conv2d(shape.image_channels, low, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(low, high, 4, stride=2, padding=1),
            *[ResidualBlock(high, shape.residual_channels) for _ in range(shape.residual_blocks)], nn.ReLU(),
            nn.Conv2d(high, shape.code_dim, 1),
        )


class Decoder(nn.Sequential):
    """The encoder mirrored: 3x3 from the code dimension, residual blocks, two stride-2 transposed convolutions."""

    def __init__(self, shape: VQVAEShape):
        low, high = shape.channels
        super().__init__(
            nn.Conv2d(shape.code_dim, high, 3, padding=1),
            *[ResidualBlock(high, shape.residual_channels) for _ in range(shape.residual_blocks)], nn.ReLU(),
            nn.ConvTranspose2d(high, low, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(low, shape.image_channels, 4, stride=2, padding=1),
        )


class VQVAE(nn.Module):
    """``x -> z_e -> (indices, z_q) -> x_hat``; images are floats in ``[0, 1]``, the decoder output is linear."""

    def __init__(self, shape: VQVAEShape = PRESETS["oasis"], ema: bool = True):
        super().__init__()
        self.shape = shape
        self.encoder = Encoder(shape)
        self.quantizer = VectorQuantizer(shape.num_codes, shape.code_dim, ema=ema)
        self.decoder = Decoder(shape)

    @property
    def num_codes(self) -> int:
        return self.shape.num_codes

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, QuantizerOutput]:
        quantized = self.quantizer(self.encoder(x))
        return self.decoder(quantized.z_q), quantized

    @torch.no_grad()
    def encode_indices(self, x: torch.Tensor) -> torch.Tensor:
        """Code-index maps (B x H/4 x W/4, int64) of images in ``[0, 1]``."""
        z_e = self.encoder(x)
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])
        return self.quantizer.nearest(flat.float()).view(z_e.shape[0], *z_e.shape[2:])

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """Images (floats, about ``[0, 1]``) from code-index maps."""
        return self.decoder(self.quantizer.lookup(indices))
