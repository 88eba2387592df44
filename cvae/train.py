"""Training, evaluation, sampling and reconstruction for the VAE and the CVAE.

Data live on the training device as flat floats in ``[0, 1]`` (the Bernoulli
targets) with integer labels; batches are index slices (``IndexBatches``).  At
the end of every epoch the run records the mean loss of that epoch's batches
(the reference write-up's train loss) and the per-image loss of the whole test split (one
reparameterised ``z`` per image, drawn from a fixed generator so the number is
repeatable): those are the curves of the notebook.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from cvae.models import VAE, build_model
from utils.config import by_profile
from utils.data import IndexBatches, chunks, load_dataset, require_images, to_float, to_uint8
from utils.devices import pick_device, small_model_threads
from utils.noise import per_sample_randn
from utils.training import Trainer, adam, add_hook, load_checkpoint, seed_everything
from vae.mlp import split_elbo, training_loss

EVAL_SEED = 1234
PUBLISHED_EPOCHS = 200


@dataclass(frozen=True)
class CVAEConfig:
    """One run; ``latent=None`` picks the reference write-up's size for the data set (2 for digits, else 10)."""

    model: str = "cvae"
    dataset: str = "mnist5k"
    latent: int | None = None
    hidden: int = 500
    epochs: int = PUBLISHED_EPOCHS
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0

    def resolved(self) -> CVAEConfig:
        latent = self.latent if self.latent is not None else default_latent(self.dataset)
        return CVAEConfig(**{**asdict(self), "latent": latent})


def default_latent(dataset: str) -> int:
    """The reference write-up's latent sizes: 2 for MNIST digits, 10 for FashionMNIST and KMNIST."""
    return 2 if dataset in ("mnist", "mnist5k") else 10


def default_epochs(profile: str) -> int:
    """Epochs per run: the reference write-up's 200 in ``full``; in ``quick`` (mnist5k) 100, where every digit's
    samples pass 90 %."""
    return by_profile(profile, smoke=2, quick=100, full=PUBLISHED_EPOCHS)


@dataclass
class Split:
    """One split as training tensors: flat floats in [0, 1] and labels, on one device."""

    x: torch.Tensor
    y: torch.Tensor
    image_shape: tuple[int, int, int]
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.x)


def load_split(dataset: str, split: str, device: torch.device | str = "cpu") -> Split:
    data = load_dataset(dataset, split)
    if data.labels is None:
        raise ValueError(f"data set {dataset!r} has no labels; a conditional VAE needs them")
    x = to_float(data.images, (0.0, 1.0)).flatten(1)
    return Split(x.to(device), data.labels.to(device), tuple(data.image_shape), data.classes)


# --------------------------------------------------------------------------- evaluation


def evaluate(model: VAE, data: Split, batch_size: int = 2000, seed: int = EVAL_SEED) -> dict[str, float]:
    """Mean per-image loss, BCE and KL over a whole split (one fixed-seed ``z`` per image)."""
    return split_elbo(model, data.x, data.y, batch_size, seed)


# --------------------------------------------------------------------------- training


def make_trainer(config: CVAEConfig, data: Split, path: str | Path | None = None,
                 device: torch.device | str | None = None) -> Trainer:
    """A fresh model + Adam in a :class:`Trainer` whose checkpoint config fully describes the model."""
    config = config.resolved()
    seed_everything(config.seed)
    model = build_model(config.model, config.latent, config.hidden, math.prod(data.image_shape), len(data.classes))
    model.to(pick_device(device))
    optimizer = adam(model.parameters(), config.lr)
    run_config = {**asdict(config), "image_shape": list(data.image_shape), "num_classes": len(data.classes),
                  "steps_per_epoch": math.ceil(len(data) / config.batch_size)}
    return Trainer({"model": model}, {"adam": optimizer}, run_config, path=path)


def train(config: CVAEConfig, path: str | Path | None = None, device: torch.device | str | None = None,
          resume: bool = True, progress: bool = True,
          hooks: Mapping[int, Callable[[Trainer], None]] | None = None) -> Trainer:
    """Train (or, from a finished checkpoint at ``path``, just load) one VAE or CVAE.

    On the CPU it trains on one thread unless ``COURSE_THREADS`` says otherwise (:func:`small_model_threads`):
    the same weights on every machine, and faster than two threads on a busy two-core machine.

    History: ``loss`` (training batches, every 10 steps); at every epoch end, logged at
    that epoch's last step, ``train_loss`` (mean over the epoch's batches, as the reference write-up
    reports it) and ``test_loss``, ``test_bce``, ``test_kl`` (the whole test split).
    ``hooks`` are extra ``Trainer.run`` hooks (every that many steps).
    """
    config = config.resolved()
    device = pick_device(device)
    train_split, test_split = load_split(config.dataset, "train", device), load_split(config.dataset, "test", device)
    require_images(test_split, 1, "the epoch-end test loss", f"the test split of {config.dataset}")
    trainer = make_trainer(config, train_split, path, device)
    if resume:
        trainer.resume()
    model, optimizer = trainer.modules["model"], trainer.optimizers["adam"]
    batches = IndexBatches(len(train_split), config.batch_size, seed=config.seed, drop_last=False)

    def step(i: int) -> dict[str, torch.Tensor]:
        index = batches(i).to(device)
        x, y = train_split.x[index], train_split.y[index]
        loss = training_loss(model, x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        trainer.tallies.add(loss=loss.detach() * len(index), images=len(index))  # checkpointed epoch sums
        return {"loss": loss.detach()}

    def end_of_epoch(run: Trainer) -> None:
        total, count = run.tallies.take("loss", "images").values()
        run.record("train_loss", total / count)
        for name, value in evaluate(model, test_split).items():
            run.record(f"test_{name}", value)

    per_epoch = batches.steps_per_epoch
    every = add_hook(hooks, per_epoch, end_of_epoch)  # the epoch's test loss first, then a caller's hook
    with small_model_threads(device):
        trainer.run(step, config.epochs * per_epoch, desc=f"{config.model} {config.dataset}",
                    log_every=min(10, per_epoch), checkpoint_every=10 * per_epoch, hooks=every, progress=progress)
    model.eval()
    return trainer


# --------------------------------------------------------------------------- using a trained model


def load_model(path: str | Path, device: torch.device | str = "cpu") -> VAE:
    """The model of a checkpoint written by :func:`train` (``DIR/model.pt``), in eval mode."""
    state = load_checkpoint(path, map_location=device)
    config = state.get("config", {})
    try:
        model = build_model(config["model"], config["latent"], config["hidden"],
                            math.prod(config["image_shape"]), config["num_classes"])
        model.load_state_dict(state["modules"]["model"])
    except (KeyError, RuntimeError) as error:
        raise ValueError(f"{path} is not a cvae checkpoint ({type(error).__name__}: {error})") from None
    model.image_shape = tuple(config["image_shape"])
    return model.to(device).eval()


def _as_images(logits: torch.Tensor, image_shape) -> torch.Tensor:
    return to_uint8(torch.sigmoid(logits), (0.0, 1.0)).reshape(-1, *image_shape)


@torch.no_grad()
def decode_images(model: VAE, z: torch.Tensor, labels: torch.Tensor | None = None, image_shape=(1, 28, 28)):
    """uint8 images (Bernoulli means) for latent codes ``z`` (and labels, for the CVAE)."""
    device = next(model.parameters()).device
    labels = labels.to(device) if labels is not None and model.conditional else None
    return _as_images(model.decode(z.to(device), labels), image_shape).cpu()


@torch.no_grad()
def sample(model: VAE, n: int, labels: torch.Tensor | None = None, seed: int = 0, temperature: float = 1.0,
           image_shape=(1, 28, 28)) -> torch.Tensor:
    """``n`` uint8 samples, ``z ~ N(0, temperature^2 I)``; a CVAE needs ``labels`` (length ``n``).

    Sample ``k``'s code depends only on ``(seed, k)``, not on ``n`` (:func:`utils.noise.per_sample_randn`).
    """
    if model.conditional and (labels is None or len(labels) != n):
        raise ValueError(f"a CVAE samples with one label per image ({n})")
    z = temperature * per_sample_randn(n, (model.latent,), seed)
    return decode_images(model, z, labels, image_shape)


@torch.no_grad()
def encode_means(model: VAE, data: Split, batch_size: int = 2000) -> torch.Tensor:
    """Posterior means ``mu(x, y)`` of a whole split (CPU tensor ``N x latent``)."""
    model.eval()
    return torch.cat([model.encode(data.x[p], data.y[p])[0] for p in chunks(len(data), batch_size)]).cpu()


@torch.no_grad()
def reconstruct(model: VAE, data: Split, index: torch.Tensor | slice) -> torch.Tensor:
    """uint8 reconstructions decoded from the posterior mean (no sampling noise)."""
    model.eval()
    x, y = data.x[index], data.y[index]
    mu, _ = model.encode(x, y)
    return _as_images(model.decode(mu, y), data.image_shape).cpu()
