"""MLP VAEs for 28 px digits: ``x -> hidden -> (mu, logvar)``, ``z -> hidden -> logits``, and their one training loop.

Chapters 03 (VAE), 04 (latent space, 400 hidden units) and 05 (500 hidden units, and the conditional VAE,
which only differs in concatenating the one-hot label) share :class:`MLPVAE`.  The decoder returns logits
(``sigmoid(logits)`` is the Bernoulli mean): the loss then is BCE computed from the logits
(``vae.losses.bernoulli_nll``), the same number as sigmoid + BCE without its ``log(0)`` clamp.

:class:`MLPVAERun` trains the VAE or the CVAE of chapters 04 and 05 (labels optional): Adam on shuffled
batches, the negative ELBO per image, and at every epoch end the mean training loss and the whole test
split's loss.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from utils.config import not_stored, rescale, stored_settings
from utils.data import IndexBatches, chunks, load_dataset, require_images, to_float, to_uint8
from utils.devices import autocast, pick_device
from utils.noise import per_sample_randn, seed_everything
from utils.run import Run
from utils.training import Trainer, adam
from vae.losses import elbo_loss, elbo_terms, reparameterize


class MLPVAE(nn.Module):
    """``x -> hidden (ReLU) -> (mu, logvar)``; ``z -> hidden (ReLU) -> logits`` (Kingma & Welling 2014).

    Inputs are images of ``image_shape`` (flattened to ``image_size`` numbers in [0, 1]); the decoder's
    output is the logits of the Bernoulli pixel means.
    """

    kind = "mlp-vae"
    conditional = False
    variational = True
    likelihood = "bernoulli"  # logits of pixels in [0, 1]; the loss is BCE summed over pixels

    def __init__(self, latent: int = 2, hidden: int = 500, image_shape: tuple[int, int, int] = (1, 28, 28),
                 num_classes: int = 10):
        super().__init__()
        image_size = math.prod(image_shape)
        self.latent, self.hidden, self.num_classes = latent, hidden, num_classes
        self.image_shape, self.image_size = tuple(image_shape), image_size
        extra = num_classes if self.conditional else 0
        self.encoder = nn.Sequential(nn.Linear(image_size + extra, hidden), nn.ReLU())
        self.to_mu = nn.Linear(hidden, latent)
        self.to_logvar = nn.Linear(hidden, latent)
        self.decoder = nn.Sequential(nn.Linear(latent + extra, hidden), nn.ReLU(), nn.Linear(hidden, image_size))

    def with_label(self, inputs: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """The CVAE appends the one-hot label; the VAE ignores it."""
        if not self.conditional:
            return inputs
        if labels is None:
            raise ValueError("a conditional VAE needs labels")
        return torch.cat([inputs, F.one_hot(labels, self.num_classes).to(inputs.dtype)], dim=1)

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(self.with_label(x.flatten(1), labels))
        return self.to_mu(hidden), self.to_logvar(hidden)

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of the Bernoulli pixel means, flat (``B x image_size``)."""
        return self.decoder(self.with_label(z, labels))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, generator: torch.Generator | None = None):
        """``(logits, mu, logvar)`` for a batch; ``z`` is one reparameterised sample."""
        mu, logvar = self.encode(x, labels)
        return self.decode(reparameterize(mu, logvar, generator), labels), mu, logvar


class CVAE(MLPVAE):
    """The conditional VAE (Sohn et al. 2015): the one-hot label joins the encoder input (784 + 10) and z."""

    kind = "cvae"
    conditional = True


MLP_MODELS: dict[str, type[MLPVAE]] = {"vae": MLPVAE, "cvae": CVAE}


def training_loss(model: MLPVAE, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """The batch mean of the negative ELBO, one reparameterised ``z`` per image: what the MLP VAEs minimise.

    With ``COURSE_AMP=1`` the forward pass runs under bfloat16 autocast on the CPU (about twice the
    steps per second on processors with bfloat16 units: ``COURSE_AMP=1 python tools/bench.py mlp_vae --amp``)
    and the loss in float32; never on CUDA, where an H200 trained the MLP VAE slower under AMP.
    """
    with autocast(x.device, enabled=x.device.type == "cpu"):
        logits, mu, logvar = model(x, labels)
    return elbo_loss(logits.float(), x, mu.float(), logvar.float())["loss"]


@torch.no_grad()
def split_elbo(model: MLPVAE, x: torch.Tensor, labels: torch.Tensor | None = None, batch_size: int = 2000,
               seed: int = 1234) -> dict[str, float]:
    """Mean per-image negative ELBO, BCE and KL over flat inputs ``x`` in [0, 1] (labels for a CVAE).

    One ``z`` per image from a generator seeded with ``seed``, so the number is repeatable.  No images
    raise a ``ValueError``.
    """
    require_images(x, 1, "the ELBO of a split", "the split")
    was_training = model.training
    model.eval()
    generator = torch.Generator(device=x.device).manual_seed(seed)
    totals = torch.zeros(2, dtype=torch.float64, device=x.device)
    for part in chunks(len(x), batch_size):
        logits, mu, logvar = model(x[part], None if labels is None else labels[part], generator=generator)
        bce, kl = elbo_terms(logits, x[part], mu, logvar)
        totals += torch.stack([bce.sum(), kl.sum()]).double()
    model.train(was_training)
    bce, kl = (totals / len(x)).tolist()
    return {"loss": bce + kl, "bce": bce, "kl": kl}



# --------------------------------------------------------------------------- the one training loop of chapters 04-05


EVAL_SEED = 1234  # the z of every test image comes from a generator seeded with it: a repeatable test loss


@dataclass(frozen=True)
class MLPVAEConfig:
    """One MLP VAE or CVAE run: ``image -> hidden -> latent``, Adam ``lr`` on shuffled batches of ``batch_size``.

    ``model``: ``"vae"`` or ``"cvae"`` (which needs a labelled data set).  Chapters build it with their
    ``config_for`` (``vae.latent.config_for`` for chapter 04, ``cvae.config_for`` for chapter 05).
    """

    model: str = "vae"
    dataset: str = "mnist5k"
    latent: int = 2
    hidden: int = 500
    epochs: int = 200
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    # chapter 04's evaluation (not the run's: not stored in checkpoints)
    score_samples: int = not_stored(5000)  # images per generated set for IS and FID
    distribution_samples: int = not_stored(30_000)  # prior samples whose digits the classifier counts

    def __post_init__(self) -> None:
        if self.model not in MLP_MODELS:
            raise ValueError(f"unknown model {self.model!r}; choose one of: {', '.join(MLP_MODELS)}")


# the counts of work COURSE_SCALE (utils.config) shrinks in the chapters' config_for, with their smallest values
SCALED = {"epochs": 1, "batch_size": 4, "score_samples": 20, "distribution_samples": 20}


def chapter_config(settings: dict[str, Any], overrides: dict[str, Any]) -> MLPVAEConfig:
    """An :class:`MLPVAEConfig` from a chapter's profile ``settings`` (scaled by ``COURSE_SCALE``) and the caller's
    ``overrides`` (``None`` keeps the profile's value; the others are taken as given)."""
    settings = rescale({"batch_size": MLPVAEConfig.batch_size, **settings}, SCALED)
    return MLPVAEConfig(**{**settings, **{k: v for k, v in overrides.items() if v is not None}})


def flat_pixels(images: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 ``N x C x H x W`` -> flat floats in [0, 1] (the Bernoulli targets) on ``device``."""
    return to_float(images.to(device), (0.0, 1.0)).flatten(1)


class MLPVAERun(Run):
    """The VAE or CVAE of chapters 04 and 05: its data, :attr:`model`, Adam and the Trainer.

    History: ``loss`` (training batches, every 10 steps); at every epoch end, logged at that epoch's last
    step, ``train_loss`` (mean over the epoch's images, as the reference write-ups report it) and
    ``test_loss``, ``test_bce``, ``test_kl`` over the whole test split (one fixed-seed ``z`` per image).
    """

    def __init__(self, config: MLPVAEConfig, path: str | Path | None = None, device: torch.device | str | None = None):
        self.config, self.device = config, pick_device(device)
        train, test = load_dataset(config.dataset, "train"), load_dataset(config.dataset, "test")
        if config.model == "cvae" and train.labels is None:
            raise ValueError(f"data set {config.dataset!r} has no labels; a conditional VAE needs them")
        require_images(test, 1, "the epoch-end test loss", f"the test split of {config.dataset}")
        self.classes, self.image_shape = train.classes, train.image_shape
        self.x_train, self.x_test = flat_pixels(train.images, self.device), flat_pixels(test.images, self.device)
        self.y_train = None if train.labels is None else train.labels.to(self.device)
        self.y_test = None if test.labels is None else test.labels.to(self.device)
        seed_everything(config.seed)
        num_classes = len(train.classes) or 10
        self.model = MLP_MODELS[config.model](config.latent, config.hidden, train.image_shape, num_classes)
        self.model.to(self.device)
        self.optimizer = adam(self.model.parameters(), config.lr)
        self.batches = IndexBatches(len(self.x_train), config.batch_size, seed=config.seed, drop_last=False)
        per_epoch = self.batches.steps_per_epoch
        run_config = {**stored_settings(config), "image_shape": list(train.image_shape), "num_classes": num_classes,
                      "steps_per_epoch": per_epoch}
        self.trainer = Trainer({"model": self.model}, {"adam": self.optimizer}, run_config, path=path)
        self.description = f"{config.model} {config.dataset} z{config.latent}"
        self.log_every, self.checkpoint_every = min(10, per_epoch), 10 * per_epoch

    @property
    def total_steps(self) -> int:
        return self.config.epochs * self.batches.steps_per_epoch

    def batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Flat images in [0, 1] and their labels (None for an unlabelled set) of step ``index``."""
        rows = self.batches(index).to(self.device)
        return self.x_train[rows], None if self.y_train is None else self.y_train[rows]

    def step(self, batch: tuple[torch.Tensor, torch.Tensor | None]) -> dict[str, torch.Tensor]:
        """One Adam step on the batch mean of the negative ELBO (:func:`training_loss`)."""
        x, labels = batch
        loss = training_loss(self.model, x, labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.trainer.tallies.add(loss=loss.detach() * len(x), images=len(x))  # checkpointed epoch sums
        return {"loss": loss.detach()}

    def epoch_hooks(self) -> dict[int, Callable[[Trainer], None]]:
        def end_of_epoch(trainer: Trainer) -> None:
            total, count = trainer.tallies.take("loss", "images").values()
            trainer.record("train_loss", total / count)
            for name, value in split_elbo(self.model, self.x_test, self.y_test, seed=EVAL_SEED).items():
                trainer.record(f"test_{name}", value)

        return {self.batches.steps_per_epoch: end_of_epoch}

    def sample(self, n: int, seed: int = 0, labels: torch.Tensor | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """``n`` uint8 images decoded from ``z ~ N(0, T^2 I)`` (a CVAE: given ``labels``, int64 ``n``)."""
        return sample(self.model, n, labels, seed=seed, temperature=temperature)


@torch.no_grad()
def decode(model: MLPVAE, z: torch.Tensor, labels: torch.Tensor | None = None, batch_size: int = 5000) -> torch.Tensor:
    """uint8 images (the Bernoulli means, ``N x C x H x W`` of ``model.image_shape``) decoded from codes ``z``.

    ``labels`` (int64 ``N``) condition a CVAE; a plain VAE ignores them.
    """
    model.eval()
    device = next(model.parameters()).device
    z = torch.as_tensor(z, dtype=torch.float32)
    parts = []
    for part in chunks(len(z), batch_size):
        condition = labels[part].to(device) if labels is not None and model.conditional else None
        parts.append(torch.sigmoid(model.decode(z[part].to(device), condition)).cpu())
    return to_uint8(torch.cat(parts), (0.0, 1.0)).reshape(-1, *model.image_shape)


@torch.no_grad()
def sample(model: MLPVAE, n: int, labels: torch.Tensor | None = None, seed: int = 0,
           temperature: float = 1.0) -> torch.Tensor:
    """``n`` uint8 samples, ``z ~ N(0, temperature^2 I)``; a CVAE needs ``labels`` (int64, length ``n``).

    Sample ``k``'s code depends only on ``(seed, k)``, not on ``n`` (:func:`utils.noise.per_sample_randn`).
    """
    if model.conditional and (labels is None or len(labels) != n):
        raise ValueError(f"a CVAE samples with one label per image ({n})")
    return decode(model, temperature * per_sample_randn(n, (model.latent,), seed), labels)


@torch.no_grad()
def encode(model: MLPVAE, x: torch.Tensor, labels: torch.Tensor | None = None, batch_size: int = 2000) -> torch.Tensor:
    """Posterior means ``mu(x)`` (``mu(x, y)`` for a CVAE) of flat inputs ``x`` in [0, 1]: CPU, ``N x latent``."""
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([model.encode(x[part].to(device), None if labels is None else labels[part].to(device))[0].cpu()
                      for part in chunks(len(x), batch_size)])
