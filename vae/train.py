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
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import torch
from torch import nn

from utils.config import by_profile
from utils.data import IndexBatches, chunks, dataset_info, load_dataset, require_images, to_float, to_uint8
from utils.devices import autocast, pick_device, small_model_threads, use_channels_last
from utils.noise import per_sample_randn
from utils.training import Trainer, adam, add_hook, load_checkpoint, seed_everything
from vae.losses import BETA_SCHEDULES, beta_at, elbo_terms, gaussian_kl, sse_per_image
from vae.models import DEFAULT_WIDTH, build_model, model_kind

EVAL_SEED = 1234
# Mixed precision on CUDA is off: `python -m utils.bench --profile full --amp` on an H200 trained the published
# CIFAR-10 conv AE at 45,314 images/s under bf16 autocast against 58,704 in float32.
AMP = False
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
    for the first ~150 steps.  It also lets the learning rate decay to 0 (cosine): after so few steps a
    constant rate leaves the weights jittering, and with them the grey level of the digits' black background
    (test SSIM of one AE jumped between 0.75 and 0.95 from epoch to epoch).  The comparisons of the
    chapters (latent sizes, betas) keep their meaning; ``smoke`` only proves the code runs.
    """
    conv = model in ("ae", "vae")
    width = {"ae": 8, "vae": 8, "mlp-vae": 400, "natural-vae": 8}[model]
    quick_epochs = {"ae": 20, "vae": 10, "mlp-vae": 30, "natural-vae": 8}[model]
    return by_profile(
        profile,
        smoke={"epochs": 2, "width": width // 2 if model != "mlp-vae" else 100, "batch_size": 64 if conv else None,
               "lr_schedule": "cosine", "train_subset": 512},
        quick={"epochs": quick_epochs, "width": width, "batch_size": 32 if conv else None, "lr_schedule": "cosine",
               "train_subset": None},
        full={"epochs": PUBLISHED_EPOCHS, "width": None, "batch_size": None, "lr_schedule": "constant",
              "train_subset": None},
    )


def profile_config(profile: str, model: str, **settings) -> VAEConfig:
    """A resolved run of ``model`` with the profile's defaults; ``settings`` (``None`` = keep) override them."""
    given = {name: value for name, value in settings.items() if value is not None}
    return VAEConfig(model=model, **{**profile_defaults(profile, model), **given}).resolved()


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
                device: torch.device | str = "cpu") -> Images:
    """A split of ``dataset`` as the model ``model`` trains on it (resized to ``image_size`` if given)."""
    data = load_dataset(dataset, split)
    if image_size:
        data = data.resized(image_size)
    x = to_float(data.images, model_kind(model).value_range).to(device)
    if use_channels_last(device) and model != "mlp-vae":
        x = x.contiguous(memory_format=torch.channels_last)
    return Images(x, data.images, data.labels, data.classes, split)


# --------------------------------------------------------------------------- the loss of one batch


def loss_terms(model: nn.Module, x: torch.Tensor, generator: torch.Generator | None = None):
    """``(output, recon, kl)`` per image: reconstruction loss (SSE, or BCE for the MLP) and KL (None for the AE)."""
    kind = model_kind(model.family)
    with autocast(x.device, AMP):
        if not kind.variational:
            output = model(x).float()
            return output, sse_per_image(output, x), None
        output, mu, logvar = model(x, generator=generator)
    output, mu, logvar = output.float(), mu.float(), logvar.float()
    if kind.likelihood == "bernoulli":
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
    """The model of a resolved config, tagged with its family and image shape."""
    channels, height, width = image_shape
    if height != width:
        raise ValueError(f"the models take square images, got {height}x{width}")
    model = build_model(config.model, config.latent, channels, height, config.width)
    model.family, model.image_shape = config.model, tuple(image_shape)
    model.variational = model_kind(config.model).variational
    return model


def make_trainer(config: VAEConfig, data: Images, path: str | Path | None = None,
                 device: torch.device | str | None = None) -> Trainer:
    """A fresh model + Adam (+ AMP scaler) in a :class:`Trainer` whose config fully describes the run."""
    config = config.resolved()
    device = pick_device(device)
    seed_everything(config.seed)
    model = make_model(config, data.image_shape).to(device)
    if use_channels_last(device) and config.model != "mlp-vae":
        model.to(memory_format=torch.channels_last)
    optimizer = adam(model.parameters(), config.lr)
    scaler = torch.amp.GradScaler("cuda", enabled=AMP and device.type == "cuda" and not torch.cuda.is_bf16_supported())
    n_train = min(len(data), config.train_subset or len(data))
    steps_per_epoch = math.ceil(n_train / config.batch_size)
    total = config.epochs * steps_per_epoch
    factor = (lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total) / total))) \
        if config.lr_schedule == "cosine" else (lambda step: 1.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    run_config = {**asdict(config), "image_shape": list(data.image_shape), "train_images": n_train,
                  "steps_per_epoch": steps_per_epoch}
    return Trainer({"model": model}, {"adam": optimizer}, run_config, path=path,
                   extras={"scaler": scaler, "lr_schedule": schedule})


def train(config: VAEConfig, path: str | Path | None = None, device: torch.device | str | None = None,
          resume: bool = True, progress: bool = True,
          hooks: Mapping[int, Callable[[Trainer], None]] | None = None) -> Trainer:
    """Train (or, from a finished checkpoint at ``path``, just load) one model.

    History: ``loss`` (training batches, every 10 steps); at each epoch end, logged at that epoch's
    last step: ``beta``, ``train_recon``, ``train_kl`` (means over the epoch's images), ``val_recon``,
    ``val_kl`` and ``val_loss`` (= recon + KL, beta = 1) over the whole evaluation split.  On the CPU the
    model trains on one thread by default (:func:`small_model_threads`, ``COURSE_THREADS``).
    """
    config = config.resolved()
    device = pick_device(device)
    train_data = load_images(config.dataset, "train", config.model, config.image_size, device)
    val_data = load_images(config.dataset, eval_split(config.dataset), config.model, config.image_size, device)
    require_images(val_data, 1, "the epoch-end evaluation", f"the {val_data.split} split of {config.dataset}")
    trainer = make_trainer(config, train_data, path, device)
    if resume:
        trainer.resume()
    model, optimizer = trainer.modules["model"], trainer.optimizers["adam"]
    scaler, lr_schedule = trainer.extras["scaler"], trainer.extras["lr_schedule"]
    pool = torch.arange(len(train_data), device=device)
    if config.train_subset and config.train_subset < len(train_data):
        pool = pool[torch.randperm(len(train_data), generator=torch.Generator().manual_seed(config.seed))
                    [: config.train_subset].to(device)]
    batches = IndexBatches(len(pool), config.batch_size, seed=config.seed, drop_last=False)
    per_epoch = batches.steps_per_epoch

    def step(i: int) -> dict[str, torch.Tensor]:
        beta = beta_at(config.beta_schedule, config.beta, i // per_epoch, config.epochs)
        x = train_data.x[pool[batches(i).to(device)]]
        if config.flip:
            flips = torch.rand(len(x), generator=torch.Generator().manual_seed(config.seed * 1_000_003 + i)) < 0.5
            x = torch.where(flips.to(device)[:, None, None, None], x.flip(-1), x)
        _, recon, kl = loss_terms(model, x)
        kl = kl if kl is not None else torch.zeros_like(recon)
        loss = recon.mean() + beta * kl.mean()
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if config.grad_clip:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        lr_schedule.step()
        trainer.tallies.add(recon=recon.detach().sum(), kl=kl.detach().sum(), images=len(x))  # checkpointed sums
        return {"loss": loss.detach(), "recon": recon.detach().mean()}

    def end_of_epoch(run: Trainer) -> None:
        recon, kl, count = run.tallies.take("recon", "kl", "images").values()
        run.record("train_recon", recon / count)
        if model.variational:
            run.record("beta", beta_at(config.beta_schedule, config.beta, run.step // per_epoch - 1, config.epochs))
            run.record("train_kl", kl / count)
        for name, value in evaluate(model, val_data).items():
            run.record(f"val_{name}", value)

    every = add_hook(hooks, per_epoch, end_of_epoch)
    name = config.model + (f" beta {config.beta:g} {config.beta_schedule}" if model.variational else "")
    with small_model_threads(device):
        trainer.run(step, config.epochs * per_epoch, desc=f"{name} z{config.latent}",
                    log_every=min(10, per_epoch), checkpoint_every=5 * per_epoch, hooks=every, progress=progress)
    model.eval()
    return trainer


# --------------------------------------------------------------------------- using a trained model


def load_model(path: str | Path, device: torch.device | str = "cpu") -> nn.Module:
    """The model of a checkpoint written by :func:`train` (``DIR/model.pt``), in eval mode, with ``.config``."""
    state = load_checkpoint(path, map_location=device)
    saved = dict(state.get("config", {}))
    try:
        shape = tuple(saved["image_shape"])
        config = VAEConfig(**{field.name: saved[field.name] for field in fields(VAEConfig)})
        model = make_model(config, shape)
        model.load_state_dict(state["modules"]["model"])
    except (KeyError, TypeError, RuntimeError) as error:
        raise ValueError(f"{path} is not a vae checkpoint ({type(error).__name__}: {error})") from None
    model.config = config
    return model.to(device).eval()


def to_images(model: nn.Module, output: torch.Tensor) -> torch.Tensor:
    """The decoder's output as uint8 images (``N x C x H x W`` on the CPU): Bernoulli means or clamped pixels."""
    if model_kind(model.family).likelihood == "bernoulli":
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
        with autocast(x.device, AMP):
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
        with autocast(device, AMP):
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
