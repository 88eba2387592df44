"""Training, evaluation, reconstruction and sampling for the AE, the VAEs and the beta-VAEs of chapters 02-03.

Images live on the training device as floats in the model's value range (``[-1, 1]`` for the conv
models' squared-error loss, ``[0, 1]`` for the MLP VAE's Bernoulli loss); batches are index slices
(``IndexBatches``).  Every step minimises ``recon + beta * KL`` (per image, averaged over the batch), with
``beta`` given by the run's schedule for the current epoch; every parameter, the encoder's included,
receives the gradient of both terms (reference write-up W2 in its default mode never lets the encoder see the
reconstruction loss).  At each epoch end the run records the epoch's mean training terms, its ``beta``,
and the validation terms over the whole evaluation split **with beta = 1**, so runs with different
schedules are compared on the same objective, the negative ELBO.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import nn

from utils.config import by_profile, from_stored, not_stored, rescale, stored_settings
from utils.data import ImageSet, IndexBatches, chunks, dataset_info, load_dataset, require_images, to_float, to_uint8
from utils.devices import autocast, pick_device, use_channels_last
from utils.noise import per_sample_randn, seed_everything
from utils.run import Run
from utils.training import Trainer, adam, load_checkpoint
from vae.losses import BETA_SCHEDULES, beta_at, elbo_terms, gaussian_kl, sse_per_image
from vae.models import DEFAULT_WIDTH, build_model, model_kind

EVAL_SEED = 1234
PUBLISHED_EPOCHS = 20  # reference write-up W1: 20 epochs, numbers read at epoch 19
NATURAL_SIZE = 64
LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class VAEConfig:
    """One run.  ``None`` fields take the model's defaults (see :meth:`resolved`)."""

    model: str = "vae"  # ae | vae | mlp-vae | natural-vae
    dataset: str = "mnist5k"
    latent: int | None = None  # ae 128, vae 1024, mlp-vae 20, natural-vae 128
    beta: float = 1.0  # the target KL weight
    beta_schedule: str = "constant"  # constant | linear | cyclical
    epochs: int = PUBLISHED_EPOCHS
    batch_size: int | None = None  # 256 for the published conv nets, 64 for the natural-image VAE, 128 for the MLP
    lr: float = 1e-3
    lr_schedule: str = "constant"  # constant (the reference write-ups') | cosine (decays to 0 over the run)
    grad_clip: float | None = None  # max gradient norm; None: the model's (1 for the published nets), 0: no clipping
    width: int | None = None  # first conv layer's channels (hidden units for the MLP); None: the published one
    image_size: int | None = None  # None: the data set's (64 for the natural-image VAE)
    flip: bool | None = None  # random horizontal flips; None: on for the natural-image VAE
    train_subset: int | None = None  # train on this many random training images (smoke runs); None: all
    seed: int = 0
    # mixed precision (``utils.devices.autocast``): off, as measured (``python tools/bench.py --profile full --amp``
    # on an H200: the published CIFAR-10 conv AE at 45,314 images/s under bf16 autocast against 58,704 in float32).
    # A speed setting: not stored in checkpoints, so a run may resume with another one
    amp: bool = not_stored(False)
    channels_last: bool = not_stored(True)  # conv nets on CUDA: channels-last tensors and weights (a speed setting)

    def resolved(self) -> VAEConfig:
        kind = model_kind(self.model)
        if self.beta_schedule not in BETA_SCHEDULES:
            choices = ", ".join(BETA_SCHEDULES)
            raise ValueError(f"unknown beta schedule {self.beta_schedule!r}; choose one of: {choices}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"unknown learning-rate schedule {self.lr_schedule!r}; choose one of: "
                             f"{', '.join(LR_SCHEDULES)}")
        if self.beta < 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")
        natural = self.model == "natural-vae"
        return replace(
            self,
            latent=self.latent or kind.default_latent,
            batch_size=self.batch_size or kind.batch_size,
            grad_clip=(kind.grad_clip or 0.0) if self.grad_clip is None else float(self.grad_clip),
            width=self.width or DEFAULT_WIDTH[self.model],
            image_size=self.image_size or (NATURAL_SIZE if natural else None),
            flip=natural if self.flip is None else self.flip,
        )


def profile_defaults(profile: str, model: str) -> dict[str, int | str | None]:
    """Epochs, width, batch size and training subset of a profile (``None``: the published value).

    ``full`` is the published set-up (20 epochs, its widths and batches).  On two CPU cores ``quick``
    narrows the conv nets to a quarter of the published channels (16x fewer multiply-adds) and takes batches of
    32: 4,000 digits in batches of 256 give only 16 steps an epoch, and the published net sits on the mean image
    for the first ~150 steps; the conv VAE gets an 8-number code and 40 epochs there, so that its prior samples
    are digits.  It also lets the learning rate decay to 0 (cosine): after so few steps a
    constant rate leaves the weights jittering, and with them the grey level of the digits' black background
    (test SSIM of one AE jumped between 0.75 and 0.95 from epoch to epoch).  The comparisons of the
    chapters (latent sizes, betas) keep their meaning; ``smoke`` only proves the code runs.
    """
    conv = model in ("ae", "vae")
    width = {"ae": 8, "vae": 8, "mlp-vae": 400, "natural-vae": 8}[model]
    quick_epochs = {"ae": 20, "vae": 40, "mlp-vae": 30, "natural-vae": 8}[model]
    # the conv VAE offline: an 8-number code (measured on mnist5k, 40 epochs, width 8: 52 % of 1,000 prior samples
    # read as a digit with confidence >= 0.9 by the course classifier; latent 16: 40 % at 20 epochs; the published
    # 1024: 6 % at 10 epochs)
    latent = {"latent": 8} if model == "vae" else {}
    return by_profile(
        profile,
        smoke={"epochs": 2, "width": width // 2 if model != "mlp-vae" else 100, "batch_size": 64 if conv else None,
               "lr_schedule": "cosine", "train_subset": 512, **latent},
        quick={"epochs": quick_epochs, "width": width, "batch_size": 32 if conv else None, "lr_schedule": "cosine",
               "train_subset": None, **latent},
        full={"epochs": PUBLISHED_EPOCHS, "width": None, "batch_size": None, "lr_schedule": "constant",
              "train_subset": None},
    )


def config_for(profile: str, dataset: str | None = None, model: str = "vae", **overrides) -> VAEConfig:
    """What ``profile`` trains for ``model`` (``ae``, ``vae``, ``mlp-vae``, ``natural-vae``), resolved.

    ``dataset``: default the profile's (:func:`default_dataset_for`); ``overrides`` (``None`` = keep) replace any
    :class:`VAEConfig` field (``latent=16``, ``beta=0.8``, ``beta_schedule="linear"`` ...).
    """
    given = {name: value for name, value in overrides.items() if value is not None}
    given["dataset"] = dataset or default_dataset_for(profile, model)
    config = VAEConfig(model=model, **{**profile_defaults(profile, model), **given}).resolved()
    # COURSE_SCALE (utils.config) shrinks the profile's epochs and batch size, not what the caller set
    shrunk = rescale(asdict(config), SCALED)
    return replace(config, **{k: shrunk[k] for k in SCALED if k not in given})


SCALED = {"epochs": 1, "batch_size": 4}  # the counts of work COURSE_SCALE shrinks, with their smallest values


def default_dataset_for(profile: str, model: str) -> str:
    """The data set ``model`` trains on in ``profile``: the published set-ups in ``full`` (CIFAR-10 for the conv AE
    and VAE, Food-101 for the natural-image VAE, MNIST for the MLP VAE), the embedded sets offline."""
    if model == "natural-vae":
        return by_profile(profile, smoke="skimage_photos", quick="skimage_photos", full="food101")
    return by_profile(profile, smoke="mnist5k", quick="mnist5k", full="mnist" if model == "mlp-vae" else "cifar10")


def run_name(config: VAEConfig) -> str:
    """A file name that tells runs apart: ``vae_mnist5k_z1024_beta1linear_w8_e10_s0``."""
    beta = f"_beta{config.beta:g}{config.beta_schedule}" if model_kind(config.model).variational else ""
    return f"{config.model}_{config.dataset}_z{config.latent}{beta}_w{config.width}_e{config.epochs}_s{config.seed}"


def eval_split(dataset: str) -> str:
    """The split validation runs on: ``validation`` where the set has one (COCO), else ``test``."""
    splits = dataset_info(dataset).splits
    return "validation" if "validation" in splits else "test"


# --------------------------------------------------------------------------- data


@dataclass
class Images:
    """One split for training: ``x`` floats in the model's range on the device, ``images`` the uint8 originals."""

    x: torch.Tensor
    images: torch.Tensor
    labels: torch.Tensor | None
    classes: tuple[str, ...]
    split: str

    def __len__(self) -> int:
        return len(self.x)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])


def load_images(dataset: str, split: str, model: str, image_size: int | None = None,
                device: torch.device | str = "cpu", channels_last: bool = False) -> Images:
    """A split of ``dataset`` as the model ``model`` trains on it (resized to ``image_size`` if given)."""
    return as_images(load_dataset(dataset, split), model, image_size, device, channels_last)


def as_images(data: ImageSet, model: str, image_size: int | None = None, device: torch.device | str = "cpu",
              channels_last: bool = False) -> Images:
    """An :class:`~utils.data.ImageSet` as the model ``model`` trains on it (resized to ``image_size`` if given).

    ``channels_last``: the float images in channels-last memory order (what a channels-last conv net reads fastest).
    """
    if image_size:
        data = data.resized(image_size)
    x = to_float(data.images, model_kind(model).value_range).to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return Images(x, data.images, data.labels, data.classes, data.split)


# --------------------------------------------------------------------------- the loss of one batch


def loss_terms(model: nn.Module, x: torch.Tensor, generator: torch.Generator | None = None, amp: bool = False):
    """``(output, recon, kl)`` per image: reconstruction loss (SSE, or BCE for the MLP) and KL (None for the AE).

    ``x``: a batch in the model's value range; ``amp``: the forward pass under ``utils.devices.autocast``.
    """
    with autocast(x.device, amp):
        if not model.variational:
            output = model(x).float()
            return output, sse_per_image(output, x), None
        output, mu, logvar = model(x, generator=generator)
    output, mu, logvar = output.float(), mu.float(), logvar.float()
    if model.likelihood == "bernoulli":
        return output, *elbo_terms(output, x, mu, logvar)
    return output, sse_per_image(output, x), gaussian_kl(mu, logvar)


@torch.no_grad()
def evaluate(model: nn.Module, data: Images, batch_size: int = 500, seed: int = EVAL_SEED) -> dict[str, float]:
    """Mean per-image ``recon``, ``kl`` and ``loss = recon + KL`` (beta = 1) over a whole split.

    One ``z`` per image from a fixed generator, so the number is repeatable.  ``ValueError`` for an empty split.
    """
    require_images(data, 1, "evaluation", f"the {data.split} split")
    was_training = model.training
    model.eval()
    device = data.x.device
    generator = torch.Generator(device=device).manual_seed(seed)
    totals = torch.zeros(2, dtype=torch.float64, device=device)
    for part in chunks(len(data), batch_size):
        _, recon, kl = loss_terms(model, data.x[part], generator)
        totals += torch.stack([recon.sum(), kl.sum() if kl is not None else recon.new_zeros(())]).double()
    model.train(was_training)
    recon, kl = (totals / len(data)).tolist()
    return {"recon": recon, "kl": kl, "loss": recon + kl} if model.variational else {"recon": recon, "loss": recon}


# --------------------------------------------------------------------------- training


def make_model(config: VAEConfig, image_shape: tuple[int, int, int]) -> nn.Module:
    """The model of a resolved config for images of ``image_shape`` (``C x H x W``, square)."""
    channels, height, width = image_shape
    if height != width:
        raise ValueError(f"the models take square images, got {height}x{width}")
    return build_model(config.model, config.latent, channels, height, config.width)


class VAERun(Run):
    """One AE, VAE, beta-VAE or MLP VAE of chapters 02-03: its data, :attr:`model`, Adam, schedules and Trainer.

    Every step minimises ``recon + beta * KL`` per image (Kingma & Welling 2014; beta: Higgins et al. 2017),
    ``beta`` from the run's schedule for the current epoch.  History: ``loss`` and ``recon`` (training
    batches, every 10 steps); at each epoch end, logged at that epoch's last step: ``beta``,
    ``train_recon``, ``train_kl`` (means over the epoch's images), ``val_recon``, ``val_kl`` and
    ``val_loss`` (= recon + KL, beta = 1) over the whole evaluation split.
    """

    def __init__(self, config: VAEConfig, path: str | Path | None = None, device: torch.device | str | None = None,
                 data: ImageSet | None = None):
        """``data``: training images already in memory (the benchmark's), which then serve as validation too;
        by default the config's data set, from disk."""
        self.config = config = config.resolved()
        self.device = device = pick_device(device)
        layout = use_channels_last(device, config.channels_last and config.model != "mlp-vae")
        if data is not None:
            self.train_data = self.val_data = as_images(data, config.model, config.image_size, device, layout)
        else:
            self.train_data = load_images(config.dataset, "train", config.model, config.image_size, device, layout)
            self.val_data = load_images(config.dataset, eval_split(config.dataset), config.model, config.image_size,
                                        device, layout)
        require_images(self.val_data, 1, "the epoch-end evaluation",
                       f"the {self.val_data.split} split of {config.dataset}")
        seed_everything(config.seed)
        self.model = make_model(config, self.train_data.image_shape).to(device)
        if layout:
            self.model.to(memory_format=torch.channels_last)
        self.optimizer = adam(self.model.parameters(), config.lr)
        self.scaler = torch.amp.GradScaler("cuda", enabled=config.amp and device.type == "cuda"
                                           and not torch.cuda.is_bf16_supported())
        self.pool = torch.arange(len(self.train_data), device=device)
        if config.train_subset and config.train_subset < len(self.train_data):
            chosen = torch.randperm(len(self.train_data), generator=torch.Generator().manual_seed(config.seed))
            self.pool = self.pool[chosen[: config.train_subset].to(device)]
        self.batches = IndexBatches(len(self.pool), config.batch_size, seed=config.seed, drop_last=False)
        per_epoch = self.batches.steps_per_epoch
        total = config.epochs * per_epoch
        factor = (lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total) / total))) \
            if config.lr_schedule == "cosine" else (lambda step: 1.0)
        self.lr_schedule = torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)
        run_config = {**stored_settings(config), "image_shape": list(self.train_data.image_shape),
                      "train_images": len(self.pool), "steps_per_epoch": per_epoch}
        self.trainer = Trainer({"model": self.model}, {"adam": self.optimizer}, run_config, path=path,
                               extras={"scaler": self.scaler, "lr_schedule": self.lr_schedule})
        beta = f" beta {config.beta:g} {config.beta_schedule}" if self.model.variational else ""
        self.description = f"{config.model}{beta} z{config.latent}"
        self.log_every, self.checkpoint_every = min(10, per_epoch), 5 * per_epoch

    @property
    def total_steps(self) -> int:
        return self.config.epochs * self.batches.steps_per_epoch

    def beta(self, step: int) -> float:
        """The KL weight of training step ``step`` (the schedule's value for its epoch)."""
        return beta_at(self.config.beta_schedule, self.config.beta, step // self.batches.steps_per_epoch,
                       self.config.epochs)

    def batch(self, index: int) -> torch.Tensor:
        """The images of step ``index`` in the model's value range, flipped at random for the natural-image VAE."""
        x = self.train_data.x[self.pool[self.batches(index).to(self.device)]]
        if self.config.flip:  # the flips of a step depend on the step alone: a resumed run sees the same ones
            noise = torch.Generator().manual_seed(self.config.seed * 1_000_003 + index)
            flips = torch.rand(len(x), generator=noise) < 0.5
            x = torch.where(flips.to(self.device)[:, None, None, None], x.flip(-1), x)
        return x

    def step(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """One Adam step on ``recon + beta * KL`` (batch means), gradient clipping and the learning-rate schedule."""
        _, recon, kl = loss_terms(self.model, x, amp=self.config.amp)
        kl = kl if kl is not None else torch.zeros_like(recon)
        loss = recon.mean() + self.beta(self.trainer.step) * kl.mean()
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config.grad_clip:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.lr_schedule.step()
        self.trainer.tallies.add(recon=recon.detach().sum(), kl=kl.detach().sum(), images=len(x))  # epoch sums
        return {"loss": loss.detach(), "recon": recon.detach().mean()}

    def epoch_hooks(self) -> dict[int, Callable[[Trainer], None]]:
        def end_of_epoch(trainer: Trainer) -> None:
            recon, kl, count = trainer.tallies.take("recon", "kl", "images").values()
            trainer.record("train_recon", recon / count)
            if self.model.variational:
                trainer.record("beta", self.beta(trainer.step - 1))
                trainer.record("train_kl", kl / count)
            for name, value in evaluate(self.model, self.val_data).items():
                trainer.record(f"val_{name}", value)

        return {self.batches.steps_per_epoch: end_of_epoch}

    def sample(self, n: int, seed: int = 0, temperature: float = 1.0) -> torch.Tensor:
        """``n`` uint8 images decoded from ``z ~ N(0, temperature^2 I)`` (image ``k`` fixed by ``(seed, k)``)."""
        return sample(self.model, n, seed=seed, temperature=temperature)


# --------------------------------------------------------------------------- using a trained model


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, VAEConfig]:
    """The model of a checkpoint written by :class:`VAERun` (``DIR/model.pt``), in eval mode, and its config."""
    state = load_checkpoint(path, map_location=device)
    saved = dict(state.get("config", {}))
    try:
        shape = tuple(saved["image_shape"])
        config = from_stored(VAEConfig, saved)
        model = make_model(config, shape)
        model.load_state_dict(state["modules"]["model"])
    except (KeyError, TypeError, RuntimeError) as error:
        raise ValueError(f"{path} is not a vae checkpoint ({type(error).__name__}: {error})") from None
    return model.to(device).eval(), config


def to_images(model: nn.Module, output: torch.Tensor) -> torch.Tensor:
    """The decoder's output as uint8 images (``N x C x H x W`` on the CPU): Bernoulli means or clamped pixels."""
    if model.likelihood == "bernoulli":
        return to_uint8(torch.sigmoid(output.float()), (0.0, 1.0)).reshape(-1, *model.image_shape).cpu()
    return to_uint8(output.float().clamp(-1, 1), (-1.0, 1.0)).cpu()


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def codes(model: nn.Module, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Codes of a batch of model inputs (the posterior mean for a VAE), a CPU tensor ``N x latent``."""
    model.eval()
    out = []
    for part in chunks(len(x), batch_size):
        code = model.encode(x[part])
        out.append((code[0] if isinstance(code, tuple) else code).float().cpu())
    return torch.cat(out)


def encode_means(model: nn.Module, data: Images) -> torch.Tensor:
    """Codes of a whole split (``N x latent``, CPU)."""
    return codes(model, data.x)


@torch.no_grad()
def decode_images(model: nn.Module, z: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """uint8 images decoded from codes ``z``."""
    model.eval()
    device = _device_of(model)
    images = []
    for part in chunks(len(z), batch_size):
        images.append(to_images(model, model.decode(z[part].to(device))))
    return torch.cat(images)


def reconstruct(model: nn.Module, data: Images, index: torch.Tensor | slice | None = None) -> torch.Tensor:
    """uint8 reconstructions of ``data`` (all of it, or ``index``), decoded from the code (posterior mean)."""
    return decode_images(model, codes(model, data.x if index is None else data.x[index]))


@torch.no_grad()
def sample(model: nn.Module, n: int, seed: int = 0, temperature: float = 1.0) -> torch.Tensor:
    """``n`` uint8 samples decoded from ``z ~ N(0, temperature^2 I)``; an autoencoder has no prior to sample.

    Sample ``k`` depends only on ``(seed, k)``, not on ``n`` (:func:`utils.noise.per_sample_randn`).
    """
    if not model.variational:
        raise ValueError("an autoencoder has no prior to sample from; sample a VAE, or use reconstruct")
    z = temperature * per_sample_randn(n, (model.latent,), seed)
    return decode_images(model, z)
