"""Chapter 06's set-up and the VQ-VAE's run: configurations, data, training, codes and reconstructions.

The order is the paper's (van den Oord et al. 2017): train the VQ-VAE (:class:`VQVAERun`); encode the training
split into code-index maps; fit a prior to those maps (``vqvae.prior_runs``: the gated PixelCNN and the DCGAN,
each on its own); sample maps from a prior and decode them (``vqvae.bundle`` for the CLI's one-file model).
Images stay uint8 on the training device and become floats in ``[0, 1]`` one batch at a time (an OASIS split
as floats would need gigabytes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from utils.augment import random_affine
from utils.config import by_profile, course_scale, not_stored, rescale, scaled, stored_settings
from utils.data import ImageSet, IndexBatches, chunks, load_dataset, require_images, to_float, to_uint8
from utils.devices import autocast, pick_device, use_channels_last
from utils.image_measures import ssim
from utils.noise import seed_everything
from utils.run import Run
from utils.training import Trainer, adam
from vqvae.losses import perplexity, vqvae_loss
from vqvae.models import PRESETS, VQVAE, VQVAEShape, preset_for

EVAL_BATCH = 500



# --------------------------------------------------------------------------- configurations


@dataclass(frozen=True)
class VQVAEConfig:
    """One VQ-VAE run; ``preset=None`` picks ``oasis`` for OASIS, ``digits`` otherwise."""

    dataset: str = "mnist5k"
    preset: str | None = None
    ema: bool = True
    decay: float | None = None  # None: 0.95 for the short digit runs, 0.99 (Sonnet's) for OASIS
    beta: float = 0.25  # commitment weight (the reference write-up: 0.25 .. 0.3)
    epochs: int = 8
    batch_size: int = 64
    lr: float = 2e-3  # peak of a one-cycle schedule
    seed: int = 0
    # mixed precision (``utils.devices.autocast``): on, as measured (``python tools/bench.py --profile full --amp``
    # on an H200: 1.29x the float32 speed).  A speed setting: not stored in checkpoints
    amp: bool = not_stored(True)
    channels_last: bool = not_stored(True)  # on CUDA: channels-last tensors and weights (a speed setting)

    def resolved(self) -> VQVAEConfig:
        preset = self.preset or preset_for(self.dataset)
        if preset not in PRESETS:
            raise ValueError(f"unknown VQ-VAE preset {preset!r}; choose one of: {', '.join(PRESETS)}")
        decay = self.decay if self.decay is not None else (0.99 if preset == "oasis" else 0.95)
        return replace(self, preset=preset, decay=decay)

    @property
    def shape(self) -> VQVAEShape:
        return PRESETS[self.resolved().preset]


@dataclass(frozen=True)
class PixelCNNConfig:
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    channels: int = 64
    layers: int = 8
    conditional: bool = True  # condition on the class label when the data set has labels (digits; OASIS has none)
    seed: int = 0
    # sampling draws every position (None), or only the first ones in a rehearsal (COURSE_SCALE < 1): a sampling
    # setting, not stored in checkpoints
    sample_positions: int | None = not_stored(None)


@dataclass(frozen=True)
class CodeGANConfig:
    steps: int = 3000  # one discriminator and one generator update each
    batch_size: int = 64
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)  # DCGAN's
    z_dim: int = 64
    width: int = 128
    d_width: int = 64
    tau: float = 1.0  # Gumbel-softmax temperature
    seed: int = 0


@dataclass(frozen=True)
class ProfileSettings:
    vqvae: VQVAEConfig
    pixelcnn: PixelCNNConfig
    gan: CodeGANConfig = field(default_factory=CodeGANConfig)
    augment_copies: int = 0  # moved copies of the training images whose code maps the PixelCNN also learns
    temperature: float = 1.0  # PixelCNN sampling temperature
    n_samples: int = 500  # samples the chapter draws from each prior and scores


def config_for(profile: str, dataset: str | None = None, seed: int = 0) -> ProfileSettings:
    """What ``profile`` trains in chapter 06: the VQ-VAE, both priors, the augmentation and sampling temperature.

    Seconds in ``smoke``, minutes on two CPU cores in ``quick`` (mnist5k), the published OASIS set-up on a
    GPU in ``full``.  ``COURSE_SCALE`` shrinks epochs, steps, batch sizes and the sample count.
    """
    dataset = dataset or by_profile(profile, smoke="mnist5k", quick="mnist5k", full="oasis")
    oasis = dataset == "oasis"
    vq = by_profile(profile, smoke=dict(epochs=1), quick=dict(epochs=8), full=dict(epochs=30 if oasis else 20))
    if oasis:
        vq |= dict(batch_size=32, lr=1e-3)
    pixelcnn = by_profile(profile, smoke=dict(epochs=1, channels=16, layers=3),
                          quick=dict(epochs=10, channels=48, layers=6),
                          full=dict(epochs=30, channels=128, layers=12) if oasis else dict(epochs=40))
    gan = by_profile(profile, smoke=dict(steps=20, width=32, d_width=16), quick=dict(steps=1500, width=64, d_width=32),
                     full=dict(steps=20000 if oasis else 6000))
    # COURSE_SCALE (utils.config) shrinks the counts of work, down to these smallest values
    epochs_and_batch = {"epochs": 1, "batch_size": 4}
    vq = rescale({"batch_size": VQVAEConfig.batch_size, **vq}, epochs_and_batch)
    pixelcnn = rescale({"batch_size": PixelCNNConfig.batch_size, **pixelcnn}, epochs_and_batch)
    if course_scale() < 1:  # one network evaluation per position: a rehearsal draws the first 32 of each map
        pixelcnn["sample_positions"] = 32
    gan = rescale({"batch_size": CodeGANConfig.batch_size, **gan}, {"steps": 2, "batch_size": 4})
    return ProfileSettings(VQVAEConfig(dataset=dataset, seed=seed, **vq).resolved(),
                           PixelCNNConfig(seed=seed, **pixelcnn), CodeGANConfig(seed=seed, **gan),
                           augment_copies=by_profile(profile, smoke=0, quick=3, full=0 if oasis else 2),
                           temperature=1.0, n_samples=scaled(100 if oasis else 500, minimum=2))


# --------------------------------------------------------------------------- data


def load_images(dataset: str, split: str, device: torch.device | str = "cpu") -> torch.Tensor:
    """The uint8 images of one split (N x C x H x W) on ``device``."""
    return load_dataset(dataset, split).images.to(device)


def as_input(images: torch.Tensor) -> torch.Tensor:
    return to_float(images, (0.0, 1.0))


def pixel_variance(images: torch.Tensor) -> float:
    """Variance of the pixel values in ``[0, 1]`` (the reconstruction loss is divided by it)."""
    require_images(images, 1, "the pixel variance", "the training set")
    total, squares, count = 0.0, 0.0, 0
    for part in chunks(len(images), EVAL_BATCH):
        x = as_input(images[part]).double()
        total, squares, count = total + x.sum().item(), squares + x.pow(2).sum().item(), count + x.numel()
    mean = total / count
    return squares / count - mean**2


def _device_of(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device


# --------------------------------------------------------------------------- the VQ-VAE


def build_vqvae(config: VQVAEConfig, image_channels: int = 1) -> VQVAE:
    config = config.resolved()
    model = VQVAE(replace(config.shape, image_channels=image_channels), ema=config.ema)
    model.quantizer.decay = config.decay
    return model


class VQVAERun(Run):
    """The VQ-VAE of chapter 06 (van den Oord et al. 2017): its images, :attr:`model`, Adam (one-cycle) and Trainer.

    History: per batch (every 10 steps) ``loss``, ``reconstruction``, ``commitment``, ``perplexity``
    and ``codes_used`` (distinct codes in the batch); at every epoch end ``test_reconstruction``
    (MSE / variance over the whole test split), ``test_perplexity`` and ``test_codes_used`` (over
    all its code positions), and ``restarts`` (dead codes restarted so far).
    """

    def __init__(self, config: VQVAEConfig, path: str | Path | None = None, device: torch.device | str | None = None,
                 data: ImageSet | None = None):
        """``data``: training images already in memory (the benchmark's), which then serve as the test split too;
        by default the config's data set, from disk."""
        self.config = config = config.resolved()
        self.device = device = pick_device(device)
        if data is not None:
            self.train_images = self.test_images = data.images.to(device)
        else:
            self.train_images = load_images(config.dataset, "train", device)
            self.test_images = load_images(config.dataset, "test", device)
        require_images(self.test_images, 1, "the VQ-VAE's epoch-end evaluation", f"the test split of {config.dataset}")
        seed_everything(config.seed)
        self.model = build_vqvae(config, self.train_images.shape[1]).to(device)
        self.channels_last = use_channels_last(device, config.channels_last)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.optimizer = adam(self.model.parameters(), config.lr)
        self.batches = IndexBatches(len(self.train_images), config.batch_size, seed=config.seed)
        per_epoch = self.batches.steps_per_epoch
        self.schedule = torch.optim.lr_scheduler.OneCycleLR(self.optimizer, config.lr,
                                                            total_steps=config.epochs * per_epoch)
        self.data_variance = pixel_variance(self.train_images)
        run_config = {**stored_settings(config), "image_shape": list(self.train_images.shape[1:]),
                      "steps_per_epoch": per_epoch, "data_variance": self.data_variance}
        self.trainer = Trainer({"model": self.model}, {"adam": self.optimizer}, run_config, path=path,
                               extras={"schedule": self.schedule})
        self.description = f"VQ-VAE {config.dataset}"
        self.log_every, self.checkpoint_every = min(10, per_epoch), per_epoch

    @property
    def total_steps(self) -> int:
        return self.config.epochs * self.batches.steps_per_epoch

    def batch(self, index: int) -> torch.Tensor:
        """The images of step ``index`` as floats in [0, 1] (uint8 on the device until then)."""
        x = as_input(self.train_images[self.batches(index).to(self.device)])
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def step(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """One Adam step on MSE / variance + codebook loss + beta * commitment (straight-through gradients)."""
        with autocast(self.device, self.config.amp):
            x_hat, quantized = self.model(x)
        losses = vqvae_loss(x_hat.float(), x, quantized.codebook_loss.float(), quantized.commitment_loss.float(),
                            self.config.beta, self.data_variance)
        self.optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        self.optimizer.step()
        self.schedule.step()
        return {"loss": losses["loss"].detach(), "reconstruction": losses["reconstruction"].detach(),
                "commitment": losses["commitment"].detach(), "perplexity": quantized.perplexity,
                "codes_used": (quantized.counts > 0).sum()}

    def epoch_hooks(self) -> dict[int, Callable[[Trainer], None]]:
        def end_of_epoch(trainer: Trainer) -> None:
            for name, value in evaluate_vqvae(self.model, self.test_images, self.data_variance).items():
                trainer.record(f"test_{name}", value)
            trainer.record("restarts", self.model.quantizer.restarts)

        return {self.batches.steps_per_epoch: end_of_epoch}

    def sample(self, n: int, seed: int = 0, **condition) -> torch.Tensor:
        raise TypeError("the VQ-VAE alone has no prior to sample from: sample its PixelCNNRun or CodeGANRun")


@torch.no_grad()
def evaluate_vqvae(model: VQVAE, images: torch.Tensor, data_variance: float) -> dict[str, float]:
    """Reconstruction loss (MSE / variance), code perplexity and codes used, over a whole split (``ValueError``
    if it is empty)."""
    require_images(images, 1, "the VQ-VAE's evaluation", "the split")
    was_training = model.training
    model.eval()
    squared, counts = 0.0, torch.zeros(model.num_codes, dtype=torch.long)
    for part in chunks(len(images), EVAL_BATCH):
        x = as_input(images[part])
        x_hat, quantized = model(x)
        squared += (x_hat.float() - x).pow(2).sum().item()
        counts += quantized.counts.long().cpu()
    model.train(was_training)
    return {"reconstruction": squared / images.numel() / data_variance, "perplexity": perplexity(counts).item(),
            "codes_used": int((counts > 0).sum())}


@torch.no_grad()
def encode(model: VQVAE, images: torch.Tensor) -> torch.Tensor:
    """Code-index maps (int64 N x h x w, on the images' device) of uint8 images."""
    model.eval()
    device = _device_of(model)
    return torch.cat([model.encode_indices(as_input(images[part].to(device))).to(images.device)
                      for part in chunks(len(images), EVAL_BATCH)])


@torch.no_grad()
def decode(model: VQVAE, indices: torch.Tensor) -> torch.Tensor:
    """uint8 images (CPU) decoded from code-index maps."""
    model.eval()
    device = _device_of(model)
    parts = [model.decode_indices(indices[part].to(device)).float().clamp(0, 1)
             for part in chunks(len(indices), EVAL_BATCH)]
    return to_uint8(torch.cat(parts), (0.0, 1.0)).cpu()


def reconstruct(model: VQVAE, images: torch.Tensor) -> torch.Tensor:
    """uint8 reconstructions (CPU), through the codes: ``decode(encode(x))``."""
    return decode(model, encode(model, images))


def augmented_codes(model: VQVAE, images: torch.Tensor, copies: int, seed: int = 0) -> torch.Tensor:
    """Code maps of ``images`` and of ``copies`` randomly rotated, scaled and shifted versions of them.

    A prior fitted to 4,000 maps over-fits within a few epochs; slightly moved digits are still
    digits, and their maps give it more to learn from (the augmentation of the course's classifier).
    """
    maps = [encode(model, images)]
    generator = torch.Generator().manual_seed(seed)
    for _ in range(copies):
        moved = [to_uint8(random_affine(as_input(images[part]), generator, max_degrees=8.0, max_scale=0.08,
                                        max_shift_px=1.5), (0.0, 1.0)) for part in chunks(len(images), EVAL_BATCH)]
        maps.append(encode(model, torch.cat(moved)))
    return torch.cat(maps)


@dataclass(frozen=True)
class MapLabels:
    """The class labels of the PixelCNN's training and test maps, or None for an unlabelled data set."""

    train: torch.Tensor | None  # int64, one per map of augmented_codes(..., copies)
    test: torch.Tensor | None
    num_classes: int | None


def map_labels(dataset: str, copies: int, device: torch.device | str = "cpu") -> MapLabels:
    """Labels for ``augmented_codes(model, train_images, copies)`` and the test split's maps.

    :func:`augmented_codes` concatenates the maps of the images, then of each moved copy, every block in
    the split's order, so the training labels are the split's labels repeated ``copies + 1`` times.
    """
    train, test = load_dataset(dataset, "train"), load_dataset(dataset, "test")
    if train.labels is None or test.labels is None:
        return MapLabels(None, None, None)
    return MapLabels(train.labels.long().repeat(copies + 1).to(device), test.labels.long().to(device),
                     len(train.classes))


def code_counts(indices: torch.Tensor, num_codes: int) -> torch.Tensor:
    """How often each code appears in a set of maps (int64, K)."""
    return torch.bincount(indices.flatten().cpu(), minlength=num_codes)


# --------------------------------------------------------------------------- evaluation


def nearest_real_ssim(samples: torch.Tensor, real: torch.Tensor, candidates: int = 10,
                      batch_size: int = 256) -> tuple[np.ndarray, torch.Tensor]:
    """SSIM of each sample against its nearest real image, and that image's index.

    The ``candidates`` real images closest in pixel distance are found for each sample
    (``torch.cdist``, batch by batch); the nearest is the one among them with the highest SSIM
    (skimage, as the reference write-up).  SSIM against every real image would be exact but thousands of times
    slower; the pixel-nearest few almost always hold the SSIM-nearest.  ``ValueError`` if either set is empty.
    """
    require_images(samples, 1, "the nearest-real SSIM", "the sample set")
    require_images(real, 1, "the nearest-real SSIM", "the real set")
    flat_real = real.flatten(1).float()
    best_ssim, best_index = np.empty(len(samples)), torch.empty(len(samples), dtype=torch.long)
    for part in chunks(len(samples), batch_size):
        distances = torch.cdist(samples[part].flatten(1).float(), flat_real)
        close = distances.topk(min(candidates, len(real)), largest=False).indices  # b x candidates
        scores = ssim(samples[part].repeat_interleave(close.shape[1], dim=0), real[close.flatten()])
        scores = scores.reshape(len(close), -1)
        pick = scores.argmax(axis=1)
        best_ssim[part] = scores[np.arange(len(close)), pick]
        best_index[part] = close[torch.arange(len(close)), torch.from_numpy(pick)]
    return best_ssim, best_index
