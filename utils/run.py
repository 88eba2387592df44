"""The one shape of every model family's training run.

A family's run is built from its configuration (``<family>.config_for(profile, dataset=None, **overrides)``)
and holds its networks as named attributes, its optimisers, and the :class:`~utils.training.Trainer` that
checkpoints them.  It defines what differs between families, and inherits the rest from :class:`Run`:

==================  ================================================================================
``batch(index)``    the training batch of step ``index``, a function of the index alone (a resumed run
                    sees the batches an uninterrupted one does)
``step(batch)``     one optimisation step on that batch; returns a dict of 0-d loss tensors, logged by
                    the Trainer.  The same call is what the benchmark times and what the notebooks
                    write out by hand
``total_steps``     the length of the run
``sample(n, seed)`` ``n`` uint8 images ``N x C x H x W``; image ``k`` fixed by ``(seed, k)``
``epoch_hooks()``   the family's own evaluation, as ``Trainer.run`` hooks (optional)
==================  ================================================================================

:meth:`Run.train` runs the steps (with any extra hooks) and :meth:`Run.load_or_train` is load-or-train with
exact resume in one call, which is what a notebook cell needs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import torch

from utils.devices import small_model_threads
from utils.training import History, Trainer, add_hook, epoch_curve

Hooks = Mapping[int, Callable[[Trainer], None]]  # every that many steps, call with the Trainer


class Run:
    """Base class of a family's run; see the module docstring for what a subclass defines."""

    config: Any
    device: torch.device
    trainer: Trainer
    description = "training"  # the progress bar's label
    log_every = 10  # steps between logged losses
    checkpoint_every: int | None = None  # steps between checkpoints (and always at the end)

    # ----- what a family defines
    @property
    def total_steps(self) -> int:
        raise NotImplementedError

    def batch(self, index: int) -> Any:
        raise NotImplementedError

    def step(self, batch: Any) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def sample(self, n: int, seed: int = 0, **condition) -> torch.Tensor:
        raise NotImplementedError

    def epoch_hooks(self) -> dict[int, Callable[[Trainer], None]]:
        return {}

    # ----- what every family shares
    def train(self, hooks: Hooks | None = None, progress: bool = True) -> Run:
        """Train until ``total_steps`` (from where the trainer stands); the family's hooks run before ``hooks``."""
        merged = self.epoch_hooks()
        for every, hook in (hooks or {}).items():
            merged = _after(merged, every, hook)
        estimate = _TimeEstimate(self.description, self.trainer.step, self.total_steps, self.device)

        def one_step(index: int) -> dict[str, torch.Tensor]:
            losses = self.step(self.batch(index))
            estimate.after(index)
            return losses

        with small_model_threads(self.device):
            self.trainer.run(one_step, self.total_steps, desc=self.description,
                             log_every=min(self.log_every, self.total_steps), checkpoint_every=self.checkpoint_every,
                             hooks=merged, progress=progress)
        for module in self.trainer.modules.values():
            module.eval()
        return self

    def load_or_train(self, retrain: bool = False, hooks: Hooks | None = None, progress: bool = True) -> Run:
        """Resume from the run's checkpoint (unless ``retrain``) and train what is left: a finished one just loads."""
        if not retrain:
            self.trainer.resume()
        return self.train(hooks, progress)

    @property
    def history(self) -> History:
        return self.trainer.history

    def last(self, name: str) -> float:
        """The last logged value of ``name`` (``KeyError`` if the run never logged it)."""
        return self.trainer.last(name)

    def epoch_curve(self, name: str) -> list[tuple[int, float]]:
        """``[(epoch, value), ...]`` of a metric logged at epoch ends (epoch 1 is the first)."""
        return epoch_curve(self.trainer, name)


class _TimeEstimate:
    """Prints, once, how long the rest of a run will take, from the speed of its first steps.

    After ``MEASURE_SECONDS`` of training (or a tenth of the run, if sooner) it prints e.g. ``DCGAN prior: about
    12 min for the 5,400 steps left (7.4 steps/s measured; evaluations add to it)``, when that is a minute or
    more: what a student on a Colab GPU wants to know before waiting.
    """

    MEASURE_SECONDS = 10.0

    def __init__(self, description: str, start: int, total: int, device: torch.device):
        self.description, self.start, self.total, self.device = description, start, total, device
        self.started: float | None = None
        self.done = total - start < 20

    def after(self, index: int) -> None:
        if self.done:
            return
        if self.started is None:  # the clock starts after the first step (warm-up, allocation)
            self.started, self.first = time.perf_counter(), index + 1
            return
        steps = index + 1 - self.first
        elapsed = time.perf_counter() - self.started
        if elapsed < self.MEASURE_SECONDS and steps < (self.total - self.start) / 10:
            return
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            elapsed = time.perf_counter() - self.started
        self.done = True
        speed, left = steps / elapsed, self.total - index - 1
        if left / speed >= 60:
            print(f"{self.description}: about {left / speed / 60:.0f} min for the {left:,} steps left "
                  f"({speed:.1f} steps/s measured; evaluations add to it)", flush=True)


def _after(hooks: Mapping[int, Callable[[Trainer], None]], every: int,
           hook: Callable[[Trainer], None]) -> dict[int, Callable[[Trainer], None]]:
    """``hooks`` plus ``hook`` every ``every`` steps, run after one already there."""
    earlier = dict(hooks).get(every)
    if earlier is None:
        return {**hooks, every: hook}
    return add_hook({**hooks, every: hook}, every, earlier)  # add_hook runs its argument first: the earlier one
