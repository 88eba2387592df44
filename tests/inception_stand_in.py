"""A tiny TorchScript stand-in for clean-fid's ``inception-2015-12-05.pt``, for tests of the Inception FID path.

It has the interface clean-fid's ``InceptionV3W`` (``cleanfid/inception_torchscript.py``) uses: the loaded
module's ``layers`` takes images ``B x 3 x 299 x 299`` normalised to [-1, 1] and gives ``B x 2048 x 1 x 1``
(``InceptionV3W`` views it as ``B x 2048``); calling the module itself (``base(x, return_features=True)``,
clean-fid's ``resize_inside`` mode) takes [0, 255] images.  :func:`save_stand_in` writes it where the course
looks for the real file (``utils.inception.inception_weights_path()``, under ``$COURSE_DATA``), so the course
loads and runs it exactly as the real one; its features are pooled pixels through a fixed random map.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn as nn


class StandInLayers(nn.Module):
    """Images ``B x 3 x 299 x 299`` in [-1, 1] -> ``B x 2048 x 1 x 1``: pooled pixels through a fixed random map."""

    def __init__(self):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.map = nn.Linear(48, 2048)

    def forward(self, x):
        return torch.tanh(self.map(self.pool(x).flatten(1)))[:, :, None, None]


class StandInInception(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = StandInLayers()

    def forward(self, x, return_features: bool = False):
        return self.layers((x - 128) / 128)


def stand_in() -> StandInInception:
    """The stand-in network (eval mode), the same weights on every call (seed 0)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return StandInInception().eval()


def save_stand_in(path: str | Path) -> Path:
    """Write the scripted stand-in to ``path`` (folders created); return ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # newer torch: "`torch.jit.script` / `torch.jit.save` is deprecated"
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(stand_in()), str(path))
    return path
