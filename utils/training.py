"""Training plumbing every model family shares.

:class:`Trainer` owns the modules, optimisers, step counter, metric history and
running tallies (epoch sums) of one run.  It runs a step function under a
``tqdm.auto`` progress bar with the live loss, writes checkpoints atomically
(temp file, then ``os.replace``), resumes exactly (weights, optimiser moments,
step, every RNG, history, tallies, and the hooks an interrupt cut short), saves
on Ctrl-C, and stops at the first NaN or Inf loss with a message naming the
step.  A checkpoint that already reached ``total_steps`` makes ``run`` a no-op,
which is what notebooks need for load-or-train.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from utils.files import atomic_write
from utils.noise import capture_rng_state, restore_rng_state
from utils.progress import tqdm

CHECKPOINT_FORMAT = 1
History = dict[str, list[tuple[int, float]]]
StepFn = Callable[[int], Mapping[str, float | torch.Tensor]]


class NonFiniteLossError(FloatingPointError):
    """A logged loss became NaN or Inf."""


class CheckpointMismatchError(ValueError):
    """A checkpoint was written by a run with a different configuration."""


# --------------------------------------------------------------------------- optimiser


def adam(parameters, lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Adam:
    """Adam as every family uses it: the fused kernel, one pass over all parameters per step.

    The same update as PyTorch's default (a loop over the parameters on the CPU); on one thread of this
    course's CPU the MLP VAE's training step ran about 20 % faster with it (``python tools/bench.py mlp_vae``).
    """
    return torch.optim.Adam(parameters, lr=lr, betas=betas, fused=True)


# --------------------------------------------------------------------------- checkpoint files


def save_checkpoint(path: str | Path, state: Mapping[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically: an interrupted write leaves the old file intact."""
    path = Path(path)
    with atomic_write(path) as temporary:
        torch.save(dict(state), temporary)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # a foreign or damaged file: say which file, not a pickle trace
        raise ValueError(f"{path} is not a readable course checkpoint ({type(error).__name__}: {error})") from None


# --------------------------------------------------------------------------- interrupts


class _DeferredInterrupt:
    """Hold Ctrl-C until the current step ends, so the saved checkpoint is a whole step.

    A second Ctrl-C interrupts at once.  Outside the main thread (where signal
    handlers cannot be set) interrupts arrive as usual.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> _DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


# --------------------------------------------------------------------------- running tallies


class Tallies:
    """Named float64 numbers a run carries from one step to the next, saved in its checkpoint.

    Epoch means are sums over the epoch's images and their count (:meth:`add`, then :meth:`take` at the
    epoch's end); a value a step keeps for later ones (the GAN's last generator loss) is :meth:`set`.
    Kept in a closure instead, such numbers would be lost by an interrupt: a resumed run would log the
    mean of the batches after the resume only.  Values stay on the device of what was added (no
    synchronisation per step).  Every :class:`Trainer` has one, ``trainer.tallies``.
    """

    def __init__(self) -> None:
        self._values: dict[str, torch.Tensor] = {}

    def _slot(self, name: str, like: torch.Tensor | float) -> torch.Tensor:
        if name not in self._values:
            device = like.device if isinstance(like, torch.Tensor) else torch.device("cpu")
            self._values[name] = torch.zeros((), dtype=torch.float64, device=device)
        return self._values[name]

    def add(self, **values: torch.Tensor | float) -> None:
        """Add each value (a number or a 0-d tensor) to the tally of its name (a new name starts at 0)."""
        for name, value in values.items():
            slot = self._slot(name, value)
            slot.add_(value.detach().to(slot) if isinstance(value, torch.Tensor) else float(value))

    def set(self, **values: torch.Tensor | float) -> None:
        """Replace the tallies of these names by the values."""
        for name, value in values.items():
            slot = self._slot(name, value)
            slot.copy_(value.detach() if isinstance(value, torch.Tensor) else torch.tensor(float(value)))

    def get(self, name: str) -> torch.Tensor:
        """The tally of ``name`` as a 0-d float64 tensor (a copy; 0 if never added to)."""
        return self._values[name].clone() if name in self._values else torch.zeros((), dtype=torch.float64)

    def take(self, *names: str) -> dict[str, float]:
        """The tallies of ``names`` as floats (0.0 if never added to), each reset to 0 (one synchronisation)."""
        present = [name for name in names if name in self._values]
        values = torch.stack([self._values[n].to("cpu") for n in present]).tolist() if present else []
        for name in present:
            self._values[name].zero_()
        taken = dict(zip(present, values, strict=True))
        return {name: taken.get(name, 0.0) for name in names}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: value.clone() for name, value in self._values.items()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self._values = {name: torch.as_tensor(value, dtype=torch.float64).clone() for name, value in state.items()}


# --------------------------------------------------------------------------- the trainer


class Trainer:
    """One training run: modules, optimisers, step, history and the checkpoint that holds them.

    ``modules`` and ``optimizers`` are dicts so a GAN (``G``, ``D``) and a VAE
    (``model``) use the same code; ``extras`` takes anything else with
    ``state_dict``/``load_state_dict`` (an AMP ``GradScaler``, an LR scheduler);
    ``tallies`` (:class:`Tallies`) holds the numbers a step function carries
    between steps, such as epoch sums.  Everything a step or hook reads from
    earlier steps must live in one of these, so that a resumed run logs exactly
    what an uninterrupted one does.
    """

    def __init__(
        self,
        modules: Mapping[str, torch.nn.Module],
        optimizers: Mapping[str, torch.optim.Optimizer],
        config: Mapping[str, Any],
        path: str | Path | None = None,
        extras: Mapping[str, Any] | None = None,
    ):
        self.modules = dict(modules)
        self.optimizers = dict(optimizers)
        self.extras = dict(extras or {})
        self.config = dict(config)
        self.path = Path(path) if path is not None else None
        self.step = 0
        self.history: History = {}
        self.tallies = Tallies()
        self.wall_seconds = 0.0
        self.hooks_pending = False  # an interrupt cut the hooks of ``step`` short: run them first on resume

    # ----- state
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "modules": {name: m.state_dict() for name, m in self.modules.items()},
            "optimizers": {name: o.state_dict() for name, o in self.optimizers.items()},
            "extras": {name: e.state_dict() for name, e in self.extras.items()},
            "step": self.step,
            "rng": capture_rng_state(),
            "config": self.config,
            "history": {name: [list(point) for point in points] for name, points in self.history.items()},
            "tallies": self.tallies.state_dict(),
            "hooks_pending": self.hooks_pending,
            "wall_seconds": self.wall_seconds,
        }

    def load_state_dict(self, state: Mapping[str, Any], restore_rng: bool = True) -> None:
        self._check_config(state.get("config", {}))
        for group, parts in (("modules", self.modules), ("optimizers", self.optimizers), ("extras", self.extras)):
            saved = state.get(group, {})
            missing = sorted(set(parts) - set(saved))
            if missing:
                raise CheckpointMismatchError(f"checkpoint has no {group} named {', '.join(missing)}")
            for name, part in parts.items():
                part.load_state_dict(saved[name])
        self.step = int(state["step"])
        self.history = {name: [(int(s), float(v)) for s, v in points] for name, points in state["history"].items()}
        device = next((p.device for m in self.modules.values() for p in m.parameters()), torch.device("cpu"))
        self.tallies.load_state_dict({name: value.to(device) for name, value in state.get("tallies", {}).items()})
        self.hooks_pending = bool(state.get("hooks_pending", False))
        self.wall_seconds = float(state.get("wall_seconds", 0.0))
        if restore_rng:
            restore_rng_state(state["rng"])

    def _check_config(self, saved: Mapping[str, Any]) -> None:
        changed = sorted(k for k in set(saved) | set(self.config) if saved.get(k) != self.config.get(k))
        if changed:
            details = ", ".join(f"{k}: {saved.get(k)!r} -> {self.config.get(k)!r}" for k in changed)
            where = f" {self.path}" if self.path else ""
            raise CheckpointMismatchError(
                f"checkpoint{where} was written with a different configuration ({details}); "
                "delete it or retrain (RETRAIN = True in a notebook)"
            )

    def save(self, path: str | Path | None = None) -> Path | None:
        target = Path(path) if path is not None else self.path
        if target is None:
            return None
        return save_checkpoint(target, self.state_dict())

    def resume(self, path: str | Path | None = None) -> bool:
        """Load the checkpoint at ``path`` (default: the run's own) if there is one."""
        source = Path(path) if path is not None else self.path
        if source is None or not source.exists():
            return False
        device = next((p.device for m in self.modules.values() for p in m.parameters()), torch.device("cpu"))
        self.load_state_dict(load_checkpoint(source, map_location=device))
        return True

    # ----- metrics
    def record(self, name: str, value: float | torch.Tensor, step: int | None = None) -> float:
        """Append ``value`` to the history of ``name``; NaN or Inf stops the run."""
        value = float(value)
        step = self.step if step is None else step
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"training stopped at step {step}: {name} = {value}. The last good checkpoint is kept"
                f"{' at ' + str(self.path) if self.path else ''}; try a lower learning rate or check the data."
            )
        self.history.setdefault(name, []).append((step, value))
        return value

    def last(self, name: str) -> float:
        return self.history[name][-1][1]

    # ----- the loop
    def _one_step(self, step_fn: StepFn, total_steps: int, log_every: int, bar) -> None:
        losses = step_fn(self.step)
        self.step += 1
        if self.step % log_every == 0 or self.step == total_steps:
            values = {name: self.record(name, value) for name, value in losses.items()}
            bar.set_postfix({name: f"{v:.4g}" for name, v in values.items()}, refresh=False)
        bar.update(1)

    def _run_hooks(self, hooks: Mapping[int, Callable[[Trainer], None]] | None) -> None:
        """The hooks due after ``self.step``, all or none: an interrupt inside one undoes what they logged.

        The history, tallies and RNG go back to how the step left them and the checkpoint notes that the
        hooks are pending; a resumed run runs them all again first, so it logs what an uninterrupted one does.
        """
        due = [hook for every, hook in (hooks or {}).items() if self.step % every == 0]
        if not due:
            self.hooks_pending = False
            return
        lengths = {name: len(points) for name, points in self.history.items()}
        tallies, rng = self.tallies.state_dict(), capture_rng_state()
        try:
            for hook in due:
                hook(self)
        except KeyboardInterrupt:
            self.history = {name: points[: lengths[name]] for name, points in self.history.items() if name in lengths}
            self.tallies.load_state_dict(tallies)
            restore_rng_state(rng)
            self.hooks_pending = True
            raise
        self.hooks_pending = False

    def run(
        self,
        step_fn: StepFn,
        total_steps: int,
        desc: str = "training",
        log_every: int = 1,
        checkpoint_every: int | None = None,
        hooks: Mapping[int, Callable[[Trainer], None]] | None = None,
        progress: bool = True,
    ) -> History:
        """Call ``step_fn(step)`` until ``total_steps``; returns the history.

        ``step_fn`` returns a dict of losses (floats or 0-d tensors); they are
        logged every ``log_every`` steps (fewer GPU synchronisations).  ``hooks``
        maps an interval to a function called with the trainer after every that
        many steps (evaluation, FID, sample grids).

        Ctrl-C is held until the step ends; the checkpoint then holds whole steps and
        resumes exactly.  A ``KeyboardInterrupt`` that arrives inside a step anyway
        (a second Ctrl-C) leaves the last checkpoint as it was: a half-done step
        cannot be resumed exactly.  One raised inside a hook is saved with the
        step's hooks marked pending (see :meth:`_run_hooks`).
        """
        if self.step >= total_steps and not self.hooks_pending:
            return self.history
        for module in self.modules.values():
            module.train()
        bar = tqdm(total=total_steps, initial=self.step, desc=desc, disable=not progress, leave=True)
        started = time.perf_counter()
        in_step = False
        try:
            with _DeferredInterrupt() as interrupt:
                if self.hooks_pending:  # the previous session was interrupted inside these
                    self._run_hooks(hooks)
                while self.step < total_steps:
                    in_step = True
                    self._one_step(step_fn, total_steps, log_every, bar)
                    in_step = False
                    self._run_hooks(hooks)
                    if interrupt.requested:
                        raise KeyboardInterrupt
                    if checkpoint_every and self.step % checkpoint_every == 0:
                        self.wall_seconds += time.perf_counter() - started
                        started = time.perf_counter()
                        self.save()
        except KeyboardInterrupt:
            if in_step:
                kept = f"; the checkpoint at {self.path} is kept as it was" if self.path and self.path.exists() else ""
                print(f"Interrupted inside step {self.step + 1}; that step is not saved{kept}")
                raise
            self.wall_seconds += time.perf_counter() - started
            where = self.save()
            print(f"Interrupted at step {self.step}" + (f"; checkpoint saved to {where}" if where else ""))
            raise
        finally:
            bar.close()
        self.wall_seconds += time.perf_counter() - started
        self.save()
        return self.history


def epoch_curve(trainer: Trainer, name: str) -> list[tuple[int, float]]:
    """``[(epoch, value), ...]`` of a metric logged at epoch ends; epoch 1 is the first pass over the data.

    The one epoch numbering of the course: a value logged after step ``s`` belongs to epoch
    ``s / steps_per_epoch`` (the run's config must hold ``steps_per_epoch``).  ``KeyError`` names a
    metric the run never logged.
    """
    if name not in trainer.history:
        raise KeyError(f"the run logged no {name!r}; it logged: {', '.join(sorted(trainer.history))}")
    per_epoch = trainer.config["steps_per_epoch"]
    return [(step // per_epoch, value) for step, value in trainer.history[name]]


def add_hook(hooks: Mapping[int, Callable[[Trainer], None]] | None, every: int,
             hook: Callable[[Trainer], None]) -> dict[int, Callable[[Trainer], None]]:
    """``hooks`` (for :meth:`Trainer.run`) plus ``hook`` every ``every`` steps, run before one already there."""
    merged = dict(hooks or {})
    earlier = merged.get(every)

    def both(run: Trainer) -> None:
        hook(run)
        earlier(run)

    merged[every] = hook if earlier is None else both
    return merged
