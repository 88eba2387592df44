"""Two priors over the VQ-VAE's code-index maps, whose samples the VQ-VAE decoder turns into images.

* :class:`CodeGenerator` + :class:`CodeDiscriminator`: a DCGAN done right.  The reference write-up's generator
  produced the raw index numbers 0..511 through a sigmoid, a target it cannot reach (and its maps
  ended up with 2-5 distinct values).  Here the generator outputs **K logits per position**, a
  categorical distribution over the codes; a map is drawn from it with the Gumbel-max trick, and
  in training with the straight-through Gumbel-softmax, so the discriminator sees exact one-hot
  maps (as the real ones are) while gradients reach the logits.  The discriminator reads a one-hot
  map through the VQ-VAE's own (frozen) codebook, so it compares code *vectors*, never index
  numbers (index 17 is not "between" 16 and 18).
* :class:`GatedPixelCNN`: an autoregressive prior (van den Oord et al., 2016), the VQ-VAE paper's
  choice.  It factorises ``p(map) = prod_i p(k_i | k_<i)`` in raster order with masked, gated
  convolutions: a vertical stack sees the rows above, a horizontal stack the positions to the
  left, so there is no blind spot.  Trained by cross-entropy, sampled position by position.
  With ``num_classes`` it is class-conditional (the same paper): a learnt per-class bias is added
  to the vertical and horizontal pre-activations of every gated layer, ``p(map | y)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from utils.noise import categorical

# --------------------------------------------------------------------------- DCGAN prior


def upsampling_steps(map_size: int, smallest: int = 4) -> int:
    """How many stride-2 up-convolutions reach ``map_size`` from a square of at least ``smallest``."""
    steps = 0
    while map_size % 2 == 0 and map_size // 2 >= smallest:
        map_size //= 2
        steps += 1
    return steps


class CodeGenerator(nn.Module):
    """``z -> Linear -> c x s x s -> (ConvT4x4 s2, BN, ReLU) x n -> Conv3x3, BN, ReLU -> Conv1x1 -> K logits``.

    ``s = map_size / 2^n``: 4 for a 64 x 64 OASIS map (n = 4), 7 for a 7 x 7 digit map (n = 0).
    """

    def __init__(self, num_codes: int, map_size: int, z_dim: int = 64, width: int = 128):
        super().__init__()
        self.num_codes, self.map_size, self.z_dim = num_codes, map_size, z_dim
        steps = upsampling_steps(map_size)
        self.start = map_size // 2**steps
        channels = [max(width // 2**i, 32) for i in range(steps + 1)]
        self.start_channels = channels[0]
        self.project = nn.Sequential(
            nn.Linear(z_dim, channels[0] * self.start**2, bias=False),
            nn.BatchNorm1d(channels[0] * self.start**2), nn.ReLU(),
        )
        ups = []
        for c_in, c_out in zip(channels[:-1], channels[1:], strict=True):
            ups += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out),
                    nn.ReLU()]
        self.body = nn.Sequential(
            *ups,
            nn.Conv2d(channels[-1], channels[-1], 3, padding=1, bias=False), nn.BatchNorm2d(channels[-1]), nn.ReLU(),
            nn.Conv2d(channels[-1], channels[-1], 3, padding=1, bias=False), nn.BatchNorm2d(channels[-1]), nn.ReLU(),
            nn.Conv2d(channels[-1], num_codes, 1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Logits ``B x K x map_size x map_size``: a categorical distribution over the codes at every position."""
        start = self.project(z).view(-1, self.start_channels, self.start, self.start)
        return self.body(start)

    def sample_one_hot(self, z: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
        """Straight-through Gumbel-softmax: exact one-hot maps forward, the softmax's gradient backward."""
        return F.gumbel_softmax(self(z), tau=tau, hard=True, dim=1)


class CodeDiscriminator(nn.Module):
    """One-hot map ``B x K x H x W`` -> code vectors through the frozen codebook -> convolutions -> one logit.

    LeakyReLU and spectral normalisation, no batch norm (real and fake batches are judged apart).
    """

    def __init__(self, codebook: torch.Tensor, map_size: int, width: int = 64):
        super().__init__()
        self.register_buffer("codebook", codebook.detach().clone())  # K x D, not trained
        num_codes, code_dim = codebook.shape
        sn = nn.utils.spectral_norm
        layers = [sn(nn.Conv2d(code_dim, width, 3, padding=1)), nn.LeakyReLU(0.2)]
        size, channels = map_size, width
        while size >= 6:
            layers += [sn(nn.Conv2d(channels, 2 * channels, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            size, channels = size // 2, 2 * channels
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.head = sn(nn.Linear(channels * size * size, 1))

    def embed(self, one_hot: torch.Tensor) -> torch.Tensor:
        """``B x K x H x W`` one-hot (or soft) maps -> ``B x D x H x W`` code vectors."""
        return torch.einsum("bkhw,kd->bdhw", one_hot, self.codebook.to(one_hot.dtype))

    def forward(self, one_hot: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.embed(one_hot))).squeeze(1)


# --------------------------------------------------------------------------- autoregressive prior


class GatedMaskedConv(nn.Module):
    """One gated PixelCNN layer: a vertical stack (rows above) and a horizontal stack (left in the row).

    Type ``"A"`` (the first layer) hides the current position itself; ``"B"`` layers may see it
    in the previous layer's features, which never saw the input there.
    """

    def __init__(self, channels: int, kernel: int, mask: str):
        super().__init__()
        if mask not in ("A", "B"):
            raise ValueError(f"mask type must be 'A' or 'B', got {mask!r}")
        self.mask, self.half = mask, kernel // 2
        self.vertical = nn.Conv2d(channels, 2 * channels, (self.half + 1, kernel), padding=(self.half, self.half))
        self.horizontal = nn.Conv2d(channels, 2 * channels, (1, self.half + 1), padding=(0, self.half))
        self.vertical_to_horizontal = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.horizontal_out = nn.Conv2d(channels, channels, 1)
        if mask == "A":  # drop the kernel row of the current row / the kernel column of the current position
            self.register_buffer("vertical_mask", torch.ones_like(self.vertical.weight))
            self.vertical_mask[:, :, -1] = 0
            self.register_buffer("horizontal_mask", torch.ones_like(self.horizontal.weight))
            self.horizontal_mask[..., -1] = 0

    @staticmethod
    def gate(x: torch.Tensor) -> torch.Tensor:
        value, gate = x.chunk(2, dim=1)
        return torch.tanh(value) * torch.sigmoid(gate)

    def _conv(self, conv: nn.Conv2d, x: torch.Tensor, mask_name: str) -> torch.Tensor:
        weight = conv.weight * getattr(self, mask_name) if self.mask == "A" else conv.weight
        return F.conv2d(x, weight, conv.bias, padding=conv.padding)

    def forward(self, vertical: torch.Tensor, horizontal: torch.Tensor,
                condition: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``condition``: ``B x 2 x 2C`` biases (vertical, horizontal) added before the gates, or None."""
        height, width = vertical.shape[-2:]
        v = self._conv(self.vertical, vertical, "vertical_mask")[:, :, :height]  # rows i - half .. i
        h = self._conv(self.horizontal, horizontal, "horizontal_mask")[..., :width]  # columns j - half .. j
        if condition is not None:  # the same bias at every position: it carries no information about the map
            v = v + condition[:, 0, :, None, None]
            h = h + condition[:, 1, :, None, None]
        out = self.horizontal_out(self.gate(self.vertical_to_horizontal(v) + h))
        return self.gate(v), (out + horizontal if self.mask == "B" else out)


class GatedPixelCNN(nn.Module):
    """Autoregressive prior over ``H x W`` maps of K codes: embedding, gated layers, 1x1 head to K logits.

    ``num_classes``: ``None`` for the unconditional ``p(map)``; an integer for ``p(map | label)``,
    each gated layer then gets a per-class bias (an embedding that starts at zero, so training starts
    from the unconditional model).
    """

    def __init__(self, num_codes: int, channels: int = 64, layers: int = 8, first_kernel: int = 7, kernel: int = 3,
                 num_classes: int | None = None):
        super().__init__()
        self.num_codes, self.num_classes = num_codes, num_classes
        self.rows_above = first_kernel // 2 + (layers - 1) * (kernel // 2)  # the receptive field's height above
        self.embedding = nn.Embedding(num_codes, channels)
        self.layers = nn.ModuleList(
            [GatedMaskedConv(channels, first_kernel, "A")]
            + [GatedMaskedConv(channels, kernel, "B") for _ in range(layers - 1)]
        )
        self.head = nn.Sequential(nn.Conv2d(channels, 4 * channels, 1), nn.ReLU(),
                                  nn.Conv2d(4 * channels, num_codes, 1))
        self.condition = None
        if num_classes is not None:
            self.condition = nn.Embedding(num_classes, layers * 2 * 2 * channels)
            nn.init.zeros_(self.condition.weight)

    def _condition(self, labels: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        if self.condition is None:
            if labels is not None:
                raise ValueError("this PixelCNN is unconditional (num_classes=None); it takes no labels")
            return None
        if labels is None or labels.shape != (batch,):
            raise ValueError(f"a class-conditional PixelCNN needs one label per map ({batch}), got "
                             f"{None if labels is None else tuple(labels.shape)}")
        return self.condition(labels).view(batch, len(self.layers), 2, -1)

    def forward(self, indices: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``B x K x H x W``; position ``(i, j)`` depends only on the codes before it in raster order
        (and on ``labels``, int64 ``B``, when the model is class-conditional)."""
        x = self.embedding(indices).permute(0, 3, 1, 2)
        condition = self._condition(labels, len(indices))
        vertical, horizontal = x, x
        for k, layer in enumerate(self.layers):
            vertical, horizontal = layer(vertical, horizontal, None if condition is None else condition[:, k])
        return self.head(horizontal)

    @torch.no_grad()
    @torch.no_grad()
    def sample(self, uniform: torch.Tensor, temperature: float = 1.0,
               labels: torch.Tensor | None = None, positions: int | None = None) -> torch.Tensor:
        """Maps (int64 ``n x H x W``) drawn position by position in raster order from ``softmax(logits / T)``.

        ``uniform`` (``n x H x W``, values in ``[0, 1)``) is the noise: the number at a position picks its code
        by inverse CDF (:func:`utils.noise.categorical`), so map ``k`` depends only on its own noise and label
        (int64 ``n``, when the model is class-conditional), never on the other maps of the batch.
        ``positions``: draw only the first ones in raster order and leave code 0 after them (a rehearsal's
        shortcut: one network evaluation per position makes a 64 x 64 map 4,096 of them); ``None``: all.
        """
        device = self.embedding.weight.device
        n, height, width = uniform.shape
        labels = None if labels is None else labels.to(device)
        indices = torch.zeros(n, height, width, dtype=torch.long, device=device)
        for i in range(height):
            top = max(0, i - self.rows_above)  # rows further up, and all rows below, cannot reach row i
            for j in range(width):
                if positions is not None and i * width + j >= positions:
                    return indices
                logits = self(indices[:, top : i + 1], labels)[:, :, -1, j].float() / temperature
                indices[:, i, j] = categorical(torch.softmax(logits, dim=1), uniform[:, i, j]).to(device)
        return indices
