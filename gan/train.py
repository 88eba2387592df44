"""Training one GAN variant: configuration per profile, the alternating update, sampling.

One iteration is one discriminator (critic) update; the generator is updated after
every ``n_critic``-th of them (the published set-up, ``full``: n_critic = 5 for all three losses;
the offline budget shared by the three losses is :data:`QUICK_SHARED`, WGAN-GP's own recipe :data:`TUNED`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from gan.losses import get_loss, gradient_penalty
from gan.models import build_gan
from utils.config import by_profile, default_dataset, from_stored, not_stored, rescale, stored_settings
from utils.data import ImageSet, IndexBatches, chunks, load_dataset, to_float, to_uint8
from utils.devices import autocast, pick_device, use_channels_last
from utils.fid import FidScore, fid_scorer
from utils.noise import per_sample_randn, seed_everything
from utils.run import Run
from utils.training import Trainer, adam, load_checkpoint

FULL_DATASET = "cub"
LR_DECAYS = ("constant", "linear")


@dataclass(frozen=True)
class GanConfig:
    loss: str
    dataset: str = "mnist5k"
    architecture: str = "digits"
    iters: int = 1000
    batch_size: int = 64
    n_critic: int = 5
    z_dim: int = 64
    channels: int = 64  # generator width
    d_channels: int | None = None  # discriminator width (None: channels)
    lr: float = 2e-4
    betas: tuple[float, float] = (0.0, 0.9)
    lr_decay: str = "constant"  # or "linear": lr * (1 - iteration / iters), as Gulrajani et al.'s WGAN-GP code
    ema_decay: float | None = None  # sample from a moving average of G's weights (None: from G itself)
    seed: int = 0
    # mixed precision (``utils.devices.autocast``): off for the GANs, as measured (``python tools/bench.py --profile
    # full --amp`` on an H200: the published ResNet WGAN-GP at 4,954 images/s under bf16 autocast against 8,638 in
    # float32).  A speed setting: not stored in checkpoints, so a run may resume with another one
    amp: bool = not_stored(False)
    channels_last: bool = not_stored(True)  # channels-last tensors and weights on CUDA (ignored on the CPU)
    # evaluation (the notebook's, not the run's: not stored in checkpoints either)
    fid_every: int = not_stored(1000)  # iterations between FID evaluations during training
    fid_samples: int = not_stored(10_000)  # samples per FID during training
    final_samples: int = not_stored(50_000)  # samples for the final numbers

    def __post_init__(self) -> None:
        if self.lr_decay not in LR_DECAYS:
            raise ValueError(f"unknown lr_decay {self.lr_decay!r}; choose one of: {', '.join(LR_DECAYS)}")

    @property
    def image_size(self) -> int:
        return 28 if self.architecture == "digits" else 32

    def for_trainer(self) -> dict[str, Any]:
        """As stored in checkpoints: every field but the speed and evaluation settings (a resumed run must agree)."""
        return {**stored_settings(self), "betas": list(self.betas)}


def config_for(profile: str, dataset: str | None = None, loss: str = "wgan-gp", recipe: str = "shared",
               **overrides: Any) -> GanConfig:
    """What ``profile`` trains for ``loss``: a small digit GAN offline, the published ResNet GAN in ``full``.

    ``recipe="shared"`` (default) is the budget every loss gets in the chapter's comparison: the same iterations,
    batch, networks and schedule, so that only the loss differs.  ``recipe="tuned"`` is WGAN-GP's own ``quick``
    recipe (:data:`TUNED`: more iterations, n_critic 2, a wider generator sampled through a weight average), shown
    as a separate, labelled row; in ``smoke`` and ``full`` (the published set-up, shared by the three losses) it
    is the shared one.  It also says how the chapter evaluates each profile: an FID every ``fid_every``
    iterations on ``fid_samples`` samples, and ``final_samples`` for the final numbers.  ``COURSE_SCALE``
    shrinks the profile's counts (:data:`SCALED`); ``overrides`` replace any :class:`GanConfig` field
    (``iters=500``, ``channels=32``, ``final_samples=5000`` ...), unscaled.
    """
    get_loss(loss)  # fail early on a bad name
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose one of: {', '.join(RECIPES)}")
    if recipe == "tuned" and loss not in TUNED:
        raise ValueError(f"no tuned recipe for {loss!r}; the tuned recipes are: {', '.join(TUNED)}")
    digits = {"architecture": "digits", "z_dim": 64, "lr": 1e-3, "channels": 16, "d_channels": 16, **QUICK_SHARED}
    tuned = TUNED[loss] if recipe == "tuned" else {}
    settings = by_profile(
        profile,
        smoke=dict(digits, iters=20, channels=8, d_channels=8, fid_every=10, fid_samples=100, final_samples=200),
        quick=dict(digits, **tuned, fid_every=500, fid_samples=1000, final_samples=1000),
        full=dict(architecture="resnet", iters=30_000, batch_size=256, n_critic=5, z_dim=128, channels=128,
                  fid_every=1000, fid_samples=10_000, final_samples=50_000),  # the published FID set-up
    )
    settings = rescale({"batch_size": GanConfig.batch_size, **settings}, SCALED)  # COURSE_SCALE (utils.config)
    dataset = dataset or default_dataset(profile, full=FULL_DATASET)
    return GanConfig(loss=loss, dataset=dataset, **{**settings, **overrides})


# the counts of work COURSE_SCALE shrinks (a rehearsal), with their smallest values
SCALED = {"iters": 2, "batch_size": 4, "fid_every": 1, "fid_samples": 16, "final_samples": 16}
RECIPES = ("shared", "tuned")

# The quick profile's shared budget (mnist5k, digit GAN of width 16, Adam 1e-3): every loss gets 2,000
# iterations of batch 32 with a generator update after every discriminator update, as DCGAN does.
QUICK_SHARED = dict(iters=2000, n_critic=1, batch_size=32)

# WGAN-GP's own quick recipe. With the published n_critic = 5 and batch 32 it levelled off near 64 % confident
# samples (8000-12000 iterations); with n_critic = 2 and batch 64 it reached 68-72 % at 16000 iterations (where
# its classifier-FID still fell), and neither a wider critic, batch 128, a lower learning rate nor random
# translations of the critic's inputs did better. A generator of width 32 sampled through the moving average of
# its weights (decay 0.999) gave 74 % (two sample sets of 1000).
TUNED = {"wgan-gp": dict(iters=16_000, n_critic=2, batch_size=64, channels=32, ema_decay=0.999)}


def run_name(config: GanConfig) -> str:
    """A checkpoint name that tells runs apart: ``gan_wgan-gp_mnist5k_digits_i16000_s0``.

    It carries the loss, data set, architecture, iterations and seed; the other settings are checked when a
    checkpoint is loaded (:class:`~utils.training.CheckpointMismatchError` names any that differ).
    """
    return f"gan_{config.loss}_{config.dataset}_{config.architecture}_i{config.iters}_s{config.seed}"


def weight_average(decay: float) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """``avg_fn`` of an :class:`~torch.optim.swa_utils.AveragedModel`: a moving average with ``decay``.

    Until ``1 / (1 - decay)`` updates have come it is the plain mean of those so far, so the random
    initial weights do not linger in the average (they would, with weight ``decay ** n``).
    """

    def average(averaged: torch.Tensor, current: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        return averaged + (current - averaged) * max(1 - decay, 1 / (int(count) + 1))

    return average


def requires_grad(module: nn.Module, flag: bool) -> None:
    for parameter in module.parameters():
        parameter.requires_grad_(flag)


def uses_float16(device: torch.device, amp: bool) -> bool:
    """utils.devices.autocast picks float16 only on CUDA cards without bfloat16: those need a GradScaler."""
    return amp and device.type == "cuda" and not torch.cuda.is_bf16_supported()


class GanRun(Run):
    """One GAN variant: its generator and discriminator (critic), their optimisers, the data and the Trainer.

    One step (:meth:`step`) is one discriminator update on a batch of real images, and a generator update
    after every ``n_critic``-th of them (Goodfellow et al. 2014; WGAN-GP: Gulrajani et al. 2017).
    """

    log_every = 10
    checkpoint_every = 1000

    def __init__(self, config: GanConfig, path: str | Path | None = None, device: str | torch.device | None = None,
                 data: ImageSet | None = None):
        """``data``: the training images when already loaded (else ``config.dataset``'s train split)."""
        seed_everything(config.seed)
        self.config, self.loss = config, get_loss(config.loss)
        self.device = pick_device(device)
        data = (data if data is not None else load_dataset(config.dataset, "train")).resized(config.image_size)
        self.real_images, self.classes = data.images, data.classes  # uint8 on the CPU, for metrics
        self.channels_last = use_channels_last(self.device, config.channels_last)
        self.images = self._on_device(to_float(data.images.to(self.device)))
        self.generator, self.discriminator = build_gan(config.architecture, config.z_dim, config.channels,
                                                       data.image_shape[0], config.d_channels)
        self.generator.to(self.device)
        self.discriminator.to(self.device)
        if self.channels_last:
            self.generator.to(memory_format=torch.channels_last)
            self.discriminator.to(memory_format=torch.channels_last)
        # the weight average that sampling uses (batch-norm statistics averaged too), if the config keeps one
        self.ema = None
        if config.ema_decay:
            self.ema = AveragedModel(self.generator, avg_fn=weight_average(config.ema_decay), use_buffers=True)
        self.opt_g = adam(self.generator.parameters(), config.lr, config.betas)
        self.opt_d = adam(self.discriminator.parameters(), config.lr, config.betas)
        self.scaler = torch.amp.GradScaler("cuda", enabled=uses_float16(self.device, config.amp))
        self.batches = IndexBatches(len(self.images), config.batch_size, seed=config.seed)
        trainer_config = {**config.for_trainer(), "image_channels": data.image_shape[0]}
        modules = {"G": self.generator, "D": self.discriminator}
        if self.ema is not None:
            modules["G_average"] = self.ema
        self.trainer = Trainer(modules, {"G": self.opt_g, "D": self.opt_d}, trainer_config, path=path,
                               extras={"scaler": self.scaler})

    def _on_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    @property
    def sampler(self) -> nn.Module:
        """The generator that samples: the moving average of G's weights if the config keeps one, else G."""
        return self.ema.module if self.ema is not None else self.generator

    @property
    def description(self) -> str:
        return self.config.loss

    @property
    def total_steps(self) -> int:
        return self.config.iters

    def noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.config.z_dim, device=self.device)

    def learning_rate(self, step: int) -> float:
        if self.config.lr_decay == "linear":
            return self.config.lr * (1 - step / self.config.iters)
        return self.config.lr

    # ----- one iteration
    def batch(self, index: int) -> torch.Tensor:
        """The real images of step ``index`` (floats in [-1, 1] on the device): a shuffled slice of the set."""
        return self.images[self.batches(index)]

    def step(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        """A critic update on ``real``; a generator update after every ``n_critic``-th critic update.

        Returns ``d_loss`` (and for WGAN-GP ``wasserstein`` and ``gp``) and ``g_loss``, the generator's last loss.
        The learning rate follows the trainer's step, so a resumed run agrees.
        """
        for optimizer in (self.opt_d, self.opt_g):
            for group in optimizer.param_groups:
                group["lr"] = self.learning_rate(self.trainer.step)
        losses = self.discriminator_step(real)
        self.trainer.tallies.add(critic_updates=1)  # checkpointed, so the cadence survives a resume
        if int(self.trainer.tallies.get("critic_updates")) % self.config.n_critic == 0:
            # the last generator loss, logged at the critic-only steps too: a tally, so it survives a resume
            self.trainer.tallies.set(g_loss=self.generator_step(self.config.batch_size))
        self.scaler.update()
        return {**losses, "g_loss": self.trainer.tallies.get("g_loss")}

    def discriminator_step(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad(), autocast(self.device, self.config.amp):
            fake = self.generator(self.noise(len(real)))
        with autocast(self.device, self.config.amp):
            real_scores, fake_scores = self.discriminator(torch.cat([real, fake.to(real.dtype)])).float().chunk(2)
            loss = self.loss.discriminator(real_scores, fake_scores)
            losses = {"d_loss": loss.detach()}
        if self.loss.penalty_weight:
            # float16 gradients of the critic may overflow (GradScaler would skip the step, but the logged
            # penalty would read inf): the penalty is then taken in float32; bfloat16 has float32's range
            with autocast(self.device, enabled=self.config.amp and not self.scaler.is_enabled()):
                penalty = gradient_penalty(self.discriminator, real, fake.float())
            loss = loss + self.loss.penalty_weight * penalty
            losses = {"d_loss": loss.detach(), "wasserstein": -losses["d_loss"], "gp": penalty.detach()}
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt_d)
        return losses

    def generator_step(self, batch_size: int) -> torch.Tensor:
        requires_grad(self.discriminator, False)  # only G's weights need gradients here
        with autocast(self.device, self.config.amp):
            loss = self.loss.generator(self.discriminator(self.generator(self.noise(batch_size))).float())
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt_g)
        requires_grad(self.discriminator, True)
        if self.ema is not None:
            self.ema.update_parameters(self.generator)
        return loss.detach()

    # ----- using it
    def sample(self, n: int, seed: int | None = None) -> torch.Tensor:
        """``n`` generated images, uint8 ``N x C x H x W`` on the CPU.

        With a ``seed``, image ``k`` is fixed by ``(seed, k)`` whatever ``n`` is (:func:`utils.noise.per_sample_randn`).
        """
        z = per_sample_randn(n, (self.config.z_dim,), seed) if seed is not None else torch.randn(n, self.config.z_dim)
        return decode(self.sampler, z)


@torch.no_grad()
def decode(generator: nn.Module, z: torch.Tensor, batch_size: int = 500, amp: bool = False) -> torch.Tensor:
    """Latent codes -> uint8 images on the CPU (generator in eval mode: batch norm uses running statistics)."""
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    with autocast(device, amp):
        images = [to_uint8(generator(z[part].to(device)).float()).cpu() for part in chunks(len(z), batch_size)]
    generator.train(was_training)
    return torch.cat(images)


def training_set_scorer(run: GanRun, features: str, device: torch.device | str | None = None) -> FidScore:
    """``score(fake) -> FID`` against the training images of ``run`` (Inception: their statistics are cached
    under the data root by content, so they are made once per training set)."""
    return fid_scorer(run.real_images, features, device or run.device)


# ----- latent walks


def bilinear_grid(corners: torch.Tensor, n_rows: int, n_cols: int) -> torch.Tensor:
    """Codes on a grid spanned by four corner codes ``(4, Z)``: top-left, top-right, bottom-left, bottom-right.

    Rows walk one direction (top -> bottom), columns the other (left -> right);
    the reference write-up's grid (first two latent coordinates from -1 to 1, the rest 0) is the
    special case of corners (+-1, +-1, 0, ...).
    """
    top_left, top_right, bottom_left, bottom_right = corners
    v = torch.linspace(0, 1, n_rows).view(-1, 1, 1)
    u = torch.linspace(0, 1, n_cols).view(1, -1, 1)
    top = (1 - u) * top_left + u * top_right
    bottom = (1 - u) * bottom_left + u * bottom_right
    return ((1 - v) * top + v * bottom).reshape(n_rows * n_cols, -1)


def seed_direction_corners(z_dim: int) -> torch.Tensor:
    """The reference write-up's interpolation: the first two latent coordinates over [-1, 1], every other one 0."""
    corners = torch.zeros(4, z_dim)
    corners[:, :2] = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])
    return corners


def lerp(start: torch.Tensor, end: torch.Tensor, t: float) -> torch.Tensor:
    return (1 - t) * start + t * end


# ----- checkpoints written by the CLI or a notebook


def load_generator(path: str | Path, device: str | torch.device | None = None) -> tuple[nn.Module, GanConfig]:
    """The generator of a checkpoint, ready to sample (its weight average if it kept one), and its configuration."""
    state = load_checkpoint(path, map_location="cpu")
    saved = dict(state.get("config", {}))
    image_channels = saved.pop("image_channels", None)
    if "G" not in state.get("modules", {}) or image_channels is None:
        raise ValueError(f"{path} is not a GAN checkpoint (no generator in it)")
    config = from_stored(GanConfig, {**saved, "betas": tuple(saved["betas"])})
    generator, _ = build_gan(config.architecture, config.z_dim, config.channels, image_channels)
    weights = state["modules"]["G"]
    if "G_average" in state["modules"]:  # an AveragedModel's state: the averaged generator's under "module."
        average = state["modules"]["G_average"]
        weights = {name.removeprefix("module."): value for name, value in average.items() if name != "n_averaged"}
    generator.load_state_dict(weights)
    return generator.to(pick_device(device)), config
