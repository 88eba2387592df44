"""The two priors over a VQ-VAE's code maps, each a Run: the gated PixelCNN and the DCGAN done right.

Each prior is fitted to the training split's code maps of a trained :class:`~vqvae.train.VQVAERun`; its
checkpoint config holds the VQ-VAE's, so a prior never pairs with another VQ-VAE.  Sampling draws code maps
(int64 ``n x h x w``); map ``k`` of a seed is fixed by ``(seed, k)`` (:mod:`utils.noise`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from utils.config import stored_settings
from utils.data import IndexBatches, chunks, require_images
from utils.devices import autocast, small_model_threads
from utils.noise import categorical, per_sample_rand, per_sample_randn, seed_everything
from utils.run import Run
from utils.training import Trainer, adam
from vqvae.losses import code_cross_entropy, discriminator_loss, generator_loss, perplexity
from vqvae.priors import CodeDiscriminator, CodeGenerator, GatedPixelCNN
from vqvae.train import EVAL_BATCH, CodeGANConfig, PixelCNNConfig, VQVAERun, _device_of


def _prior_run_config(prior: Any, vq: VQVAERun, map_shape: tuple[int, int]) -> dict[str, Any]:
    """A prior's checkpoint config: its own settings plus the VQ-VAE's, so they never mismatch."""
    return {**stored_settings(prior), "map_shape": list(map_shape), "num_codes": vq.model.num_codes,
            "vqvae": {**vq.trainer.config, "steps": vq.trainer.step}}


def pixelcnn_classes(config: PixelCNNConfig, labels: torch.Tensor | None, num_classes: int | None) -> int | None:
    """The PixelCNN's ``num_classes``: None (unconditional) unless ``config.conditional`` and the maps have labels."""
    if not config.conditional or labels is None:
        return None
    return num_classes if num_classes is not None else int(labels.max()) + 1


class PixelCNNRun(Run):
    """The gated PixelCNN prior (van den Oord et al. 2016) fitted to a VQ-VAE's training code maps.

    ``train_codes``: int64 ``N x h x w`` maps on the training device.  With ``train_labels`` (int64 ``N``, one
    per map; for :func:`augmented_codes` repeat the split's labels ``copies + 1`` times) and
    ``config.conditional``, the PixelCNN learns ``p(map | label)`` over ``num_classes`` classes (default: the
    largest label + 1); ``test_labels`` then go with ``test_codes``.  Without labels it learns ``p(map)``.

    History: ``loss`` (cross-entropy in nats per position, every 10 steps); at every epoch end ``test_nll``
    on ``test_codes`` (when given).
    """

    description = "PixelCNN prior"

    def __init__(self, config: PixelCNNConfig, vq: VQVAERun, train_codes: torch.Tensor,
                 test_codes: torch.Tensor | None = None, path: str | Path | None = None,
                 train_labels: torch.Tensor | None = None, test_labels: torch.Tensor | None = None,
                 num_classes: int | None = None):
        self.config, self.device = config, train_codes.device
        seed_everything(config.seed)
        num_classes = pixelcnn_classes(config, train_labels, num_classes)
        if num_classes is None:
            train_labels = test_labels = None
        else:
            if len(train_labels) != len(train_codes):
                raise ValueError(f"{len(train_labels)} labels for {len(train_codes)} code maps")
            if test_codes is not None and test_labels is None:
                raise ValueError("a class-conditional PixelCNN needs test_labels with test_codes")
            train_labels = train_labels.long().to(self.device)
        self.train_codes, self.test_codes = train_codes, test_codes
        self.train_labels, self.test_labels = train_labels, test_labels
        self.map_shape = tuple(train_codes.shape[1:])
        self.prior = GatedPixelCNN(vq.model.num_codes, config.channels, config.layers, num_classes=num_classes)
        self.prior.to(self.device)
        self.optimizer = adam(self.prior.parameters(), config.lr)
        self.batches = IndexBatches(len(train_codes), config.batch_size, seed=config.seed)
        per_epoch = self.batches.steps_per_epoch
        self.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, config.epochs * per_epoch)
        run_config = {**_prior_run_config(config, vq, self.map_shape), "steps_per_epoch": per_epoch,
                      "num_classes": num_classes}
        self.trainer = Trainer({"prior": self.prior}, {"adam": self.optimizer}, run_config, path=path,
                               extras={"schedule": self.schedule})
        self.log_every, self.checkpoint_every = min(10, per_epoch), per_epoch

    @property
    def total_steps(self) -> int:
        return self.config.epochs * self.batches.steps_per_epoch

    def batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The code maps of step ``index`` and their labels (None for an unconditional PixelCNN)."""
        rows = self.batches(index).to(self.device)
        return self.train_codes[rows], None if self.train_labels is None else self.train_labels[rows]

    def step(self, batch: tuple[torch.Tensor, torch.Tensor | None]) -> dict[str, torch.Tensor]:
        """One Adam step on the cross-entropy of every position's code given the codes before it."""
        codes, labels = batch
        with autocast(self.device):
            logits = self.prior(codes, labels)
        loss = code_cross_entropy(logits.float(), codes)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.schedule.step()
        return {"loss": loss.detach()}

    def epoch_hooks(self) -> dict[int, Callable[[Trainer], None]]:
        if self.test_codes is None:
            return {}

        def test_nll(trainer: Trainer) -> None:
            trainer.record("test_nll", code_nll(self.prior, self.test_codes, self.test_labels))

        return {self.batches.steps_per_epoch: test_nll}

    def sample(self, n: int, seed: int = 0, labels: torch.Tensor | int | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """``n`` code maps (int64, CPU); see :func:`sample_pixelcnn` (``config.sample_positions`` of them drawn)."""
        return sample_pixelcnn(self.prior, n, self.map_shape, seed, temperature, labels,
                               positions=self.config.sample_positions)


@torch.no_grad()
def code_nll(prior: GatedPixelCNN, codes: torch.Tensor, labels: torch.Tensor | None = None) -> float:
    """Mean negative log-likelihood (nats per position) of code maps under the PixelCNN.

    A class-conditional PixelCNN needs the maps' ``labels`` and gives ``-log p(map | label)``;
    an unconditional one ignores them.  No maps raise a ``ValueError``.
    """
    require_images(codes, 1, "the PixelCNN's test NLL", "the set of code maps")
    was_training = prior.training
    prior.eval()
    if prior.num_classes is None:
        labels = None
    elif labels is None:
        raise ValueError("a class-conditional PixelCNN needs the maps' labels")
    else:
        labels = labels.long().to(codes.device)
    total = sum(code_cross_entropy(prior(codes[part], None if labels is None else labels[part]).float(),
                                   codes[part]).item() * len(codes[part])
                for part in chunks(len(codes), EVAL_BATCH))
    prior.train(was_training)
    return total / len(codes)


def sampling_labels(prior: GatedPixelCNN, n: int, labels: torch.Tensor | int | None = None) -> torch.Tensor | None:
    """The labels ``n`` samples are drawn with: None for an unconditional PixelCNN; otherwise ``labels``
    (one int for all, or int64 ``n``), by default every class in turn (``arange(n) % num_classes``), so the
    maps follow ``p(map) = sum_y p(y) p(map | y)`` with uniform ``p(y)``."""
    if prior.num_classes is None:
        if labels is not None:
            raise ValueError("this PixelCNN is unconditional: it draws maps without labels")
        return None
    if labels is None:
        return torch.arange(n) % prior.num_classes
    labels = torch.full((n,), labels) if isinstance(labels, int) else torch.as_tensor(labels).long()
    if labels.shape != (n,) or not (0 <= int(labels.min()) and int(labels.max()) < prior.num_classes):
        raise ValueError(f"need {n} labels in 0..{prior.num_classes - 1}")
    return labels


def sample_pixelcnn(prior: GatedPixelCNN, n: int, map_shape: tuple[int, int], seed: int = 0,
                    temperature: float = 1.0, labels: torch.Tensor | int | None = None,
                    positions: int | None = None) -> torch.Tensor:
    """``n`` code maps (int64, CPU) from the PixelCNN; a class-conditional one draws them given
    :func:`sampling_labels` (every class in turn unless ``labels`` are given).

    Map ``k`` depends only on ``(seed, k)`` and its label, not on ``n``: its noise is
    :func:`utils.noise.per_sample_rand`, one uniform number per position.  ``positions``: see
    :meth:`~vqvae.priors.GatedPixelCNN.sample` (``None``, every position, unless rehearsing).
    """
    device = _device_of(prior)
    labels = sampling_labels(prior, n, labels)
    uniform = per_sample_rand(n, map_shape, seed)
    prior.eval()
    with small_model_threads(device):
        maps = [prior.sample(uniform[part], temperature=temperature, labels=None if labels is None else labels[part],
                             positions=positions) for part in chunks(n, EVAL_BATCH)]
    return torch.cat(maps).cpu()


# --------------------------------------------------------------------------- the DCGAN prior


class CodeGANRun(Run):
    """The DCGAN prior over code maps (Radford et al. 2016, done right): one discriminator and one generator
    update per step; the discriminator reads code vectors through the VQ-VAE's frozen codebook.

    History (every 10 steps): ``d_loss``, ``g_loss``, ``d_real`` / ``d_fake`` (mean discriminator
    probabilities) and ``fake_perplexity`` (code usage of the generated maps, to compare with the
    real maps' perplexity: a collapsing generator uses few codes).
    """

    description = "DCGAN prior"
    log_every, checkpoint_every = 10, 500

    def __init__(self, config: CodeGANConfig, vq: VQVAERun, train_codes: torch.Tensor,
                 path: str | Path | None = None):
        self.config, self.device = config, train_codes.device
        seed_everything(config.seed)
        self.num_codes, map_size = vq.model.num_codes, train_codes.shape[-1]
        self.generator = CodeGenerator(self.num_codes, map_size, config.z_dim, config.width).to(self.device)
        self.discriminator = CodeDiscriminator(vq.model.quantizer.codebook.detach(), map_size, config.d_width)
        self.discriminator.to(self.device)
        self.opt_g = adam(self.generator.parameters(), config.lr, config.betas)
        self.opt_d = adam(self.discriminator.parameters(), config.lr, config.betas)
        self.trainer = Trainer({"G": self.generator, "D": self.discriminator}, {"G": self.opt_g, "D": self.opt_d},
                               _prior_run_config(config, vq, tuple(train_codes.shape[1:])), path=path)
        self.train_codes = train_codes
        self.batches = IndexBatches(len(train_codes), config.batch_size, seed=config.seed)

    @property
    def total_steps(self) -> int:
        return self.config.steps

    def batch(self, index: int) -> torch.Tensor:
        """The real maps of step ``index``, one-hot: float ``B x K x h x w``."""
        real = torch.nn.functional.one_hot(self.train_codes[self.batches(index).to(self.device)], self.num_codes)
        return real.permute(0, 3, 1, 2).float()

    def step(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        """A discriminator update, then a generator update through straight-through Gumbel-softmax maps."""
        z = torch.randn(len(real), self.config.z_dim, device=self.device)
        with autocast(self.device):
            fake = self.generator.sample_one_hot(z, self.config.tau)
            real_logits, fake_logits = self.discriminator(real).float(), self.discriminator(fake.detach()).float()
        d_loss = discriminator_loss(real_logits, fake_logits)
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        with autocast(self.device):
            g_loss = generator_loss(self.discriminator(fake).float())
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        fake_counts = fake.detach().float().sum(dim=(0, 2, 3))
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(),
                "d_real": torch.sigmoid(real_logits).mean().detach(),
                "d_fake": torch.sigmoid(fake_logits).mean().detach(),
                "fake_perplexity": perplexity(fake_counts)}

    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` code maps (int64, CPU); see :func:`sample_code_gan`."""
        return sample_code_gan(self.generator, n, seed)


@torch.no_grad()
def sample_code_gan(generator: CodeGenerator, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` code maps (int64, CPU): ``z ~ N(0, I)``, then one code per position drawn from the generator's softmax.

    Map ``k`` depends only on ``(seed, k)``, not on ``n``: its ``z`` and the uniform numbers that pick its codes
    are per-sample draws (:mod:`utils.noise`).
    """
    device = _device_of(generator)
    z = per_sample_randn(n, (generator.z_dim,), seed, stream=0)
    uniform = per_sample_rand(n, (generator.map_size, generator.map_size), seed, stream=1)
    generator.eval()
    maps = []
    for part in chunks(n, EVAL_BATCH):
        probabilities = torch.softmax(generator(z[part].to(device)).float().cpu(), dim=1).permute(0, 2, 3, 1)
        maps.append(categorical(probabilities, uniform[part]))
    return torch.cat(maps)
