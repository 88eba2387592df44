"""Seeding, atomic checkpoints, exact resume, NaN stop, interrupts."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from utils.data import IndexBatches
from utils.devices import autocast, cpu_threads, small_model_threads
from utils.noise import seed_everything
from utils.training import (
    CheckpointMismatchError,
    NonFiniteLossError,
    Trainer,
    adam,
    load_checkpoint,
    save_checkpoint,
)

DATA = torch.randn(96, 5)
TARGET = DATA @ torch.randn(5, 1) + 0.1


def make_trainer(path=None, seed=0, config=None):
    seed_everything(seed)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Dropout(0.2), torch.nn.Linear(8, 1))
    optimizer = adam(model.parameters(), 1e-2)  # the course's (fused) Adam: resume must restore it exactly
    trainer = Trainer({"model": model}, {"opt": optimizer}, config or {"lr": 1e-2}, path=path)
    batches = IndexBatches(len(DATA), 16, seed=3)

    def step(i):
        idx = batches(i)
        noise = 0.01 * torch.randn(len(idx), 1)  # exercises the torch RNG state
        loss = torch.nn.functional.mse_loss(model(DATA[idx]), TARGET[idx] + noise)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return {"loss": loss.detach()}

    return trainer, model, step


def test_resume_continues_exactly(tmp_path):
    straight, model_a, step_a = make_trainer()
    straight.run(step_a, 20, progress=False)

    path = tmp_path / "run.pt"
    first, _, step_b = make_trainer(path)
    first.run(step_b, 9, progress=False)
    torch.randn(100)  # whatever happens between sessions must not matter

    resumed, model_c, step_c = make_trainer(path, seed=123)
    assert resumed.resume()
    assert resumed.step == 9
    resumed.run(step_c, 20, progress=False)

    for a, c in zip(model_a.parameters(), model_c.parameters(), strict=True):
        assert torch.equal(a, c)
    assert resumed.history == straight.history


def test_finished_checkpoint_makes_run_a_no_op(tmp_path):
    path = tmp_path / "run.pt"
    trainer, _, step = make_trainer(path)
    trainer.run(step, 5, progress=False)
    again, model, step_again = make_trainer(path, seed=7)
    assert again.resume()
    before = [p.clone() for p in model.parameters()]
    calls = []
    again.run(lambda i: calls.append(i) or step_again(i), 5, progress=False)
    assert calls == []
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_checkpoint_loads_with_weights_only(tmp_path):
    path = tmp_path / "run.pt"
    trainer, _, step = make_trainer(path)
    trainer.run(step, 3, progress=False)
    state = torch.load(path, weights_only=True)
    assert state["step"] == 3 and set(state) >= {"modules", "optimizers", "rng", "config", "history"}


def test_config_mismatch_is_refused_with_the_changed_key(tmp_path):
    path = tmp_path / "run.pt"
    trainer, _, step = make_trainer(path)
    trainer.run(step, 2, progress=False)
    other, _, _ = make_trainer(path, config={"lr": 1e-3})
    with pytest.raises(CheckpointMismatchError, match="lr"):
        other.resume()


def test_nan_loss_stops_and_names_the_step(tmp_path):
    path = tmp_path / "run.pt"
    trainer, _, step = make_trainer(path)

    def poisoned(i):
        losses = step(i)
        return {"loss": torch.tensor(float("nan"))} if i == 6 else losses

    with pytest.raises(NonFiniteLossError, match="step 7: loss = nan"):
        trainer.run(poisoned, 20, checkpoint_every=5, progress=False)
    assert load_checkpoint(path)["step"] == 5  # the last good checkpoint survives


def test_interrupted_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "run.pt"
    save_checkpoint(path, {"step": 1})

    def dies_half_way(obj, f, *args, **kwargs):
        with open(f, "wb") as handle:
            handle.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"step": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]  # no temp file left behind


def test_killed_process_mid_write_keeps_previous_checkpoint(tmp_path):
    """A real SIGKILL while torch.save is writing a large checkpoint."""
    path = tmp_path / "run.pt"
    save_checkpoint(path, {"step": 1, "weights": torch.zeros(3)})
    script = textwrap.dedent(
        f"""
        import os, signal, torch
        from utils.training import save_checkpoint
        real_save = torch.save
        def save_then_die(obj, f, *a, **k):
            real_save(obj, f, *a, **k)
            os.kill(os.getpid(), signal.SIGKILL)   # the temp file is written, os.replace never runs
        torch.save = save_then_die
        save_checkpoint({str(path)!r}, {{"step": 2, "weights": torch.ones(1_000_000)}})
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert result.returncode == -signal.SIGKILL
    assert load_checkpoint(path)["step"] == 1


def test_ctrl_c_saves_a_whole_step_that_resumes_exactly(tmp_path):
    straight, model_a, step_a = make_trainer()
    straight.run(step_a, 12, progress=False)

    path = tmp_path / "run.pt"
    trainer, _, step = make_trainer(path)

    def interrupted_mid_step(i):
        if i == 4:
            os.kill(os.getpid(), signal.SIGINT)  # arrives inside the step
        return step(i)

    with pytest.raises(KeyboardInterrupt):
        trainer.run(interrupted_mid_step, 12, progress=False)
    assert load_checkpoint(path)["step"] == 5

    resumed, model_c, step_c = make_trainer(path, seed=99)
    resumed.resume()
    resumed.run(step_c, 12, progress=False)
    assert all(torch.equal(a, c) for a, c in zip(model_a.parameters(), model_c.parameters(), strict=True))


def test_damaged_checkpoint_gives_a_clear_error(tmp_path):
    path = tmp_path / "run.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable course checkpoint"):
        load_checkpoint(path)


def test_index_batches_depend_only_on_step():
    a, b = IndexBatches(100, 32, seed=5), IndexBatches(100, 32, seed=5)
    assert a.steps_per_epoch == 3
    assert torch.equal(a(7), b(7))
    epoch = torch.cat(list(a.epoch(1)))
    assert len(epoch) == 96 and len(set(epoch.tolist())) == 96
    assert not torch.equal(a(0), a(3))  # a new permutation each epoch


def test_course_adam_is_the_fused_kernel_with_the_default_update():
    torch.manual_seed(0)
    layers = [torch.nn.Linear(6, 4) for _ in range(2)]
    layers[1].load_state_dict(layers[0].state_dict())
    fused = adam(layers[0].parameters(), 1e-2, (0.5, 0.9))
    default = torch.optim.Adam(layers[1].parameters(), 1e-2, (0.5, 0.9))
    assert fused.param_groups[0]["fused"] is True
    x = torch.randn(8, 6)
    for _ in range(5):
        for layer, optimizer in zip(layers, (fused, default), strict=True):
            optimizer.zero_grad()
            layer(x).pow(2).sum().backward()
            optimizer.step()
    torch.testing.assert_close(layers[0].weight, layers[1].weight)


def test_cpu_autocast_is_opt_in(monkeypatch):
    cpu = torch.device("cpu")
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    monkeypatch.delenv("COURSE_AMP", raising=False)
    with autocast(cpu):
        assert (a @ b).dtype == torch.float32  # off by default on the CPU
    monkeypatch.setenv("COURSE_AMP", "1")
    with autocast(cpu):
        assert (a @ b).dtype == torch.bfloat16
    with autocast(cpu, enabled=False):  # a family that keeps float32 stays there
        assert (a @ b).dtype == torch.float32
    monkeypatch.setenv("COURSE_AMP", "0")
    with autocast(cpu):
        assert (a @ b).dtype == torch.float32


def test_small_models_run_on_one_thread_or_course_threads(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv("COURSE_THREADS", raising=False)
    with cpu_threads(2):
        assert torch.get_num_threads() == 2
        with small_model_threads("cpu"):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == before
    monkeypatch.setenv("COURSE_THREADS", "3")
    with small_model_threads("cpu"):
        assert torch.get_num_threads() == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("COURSE_THREADS", bad)
        with pytest.raises(ValueError, match="COURSE_THREADS must be a positive whole number"):
            small_model_threads("cpu")


# --------------------------------------------------------------------------- tallies and interrupted hooks


def test_tallies_add_take_set_and_survive_a_checkpoint(tmp_path):
    trainer, _, _ = make_trainer(tmp_path / "run.pt")
    trainer.tallies.add(loss=torch.tensor(3.0), images=2)
    trainer.tallies.add(loss=1.5, images=1)
    trainer.tallies.set(last=torch.tensor(7.0))
    trainer.save()
    again, _, _ = make_trainer(tmp_path / "run.pt")
    assert again.resume()
    assert again.tallies.take("loss", "images", "never") == {"loss": 4.5, "images": 3.0, "never": 0.0}
    assert again.tallies.take("loss") == {"loss": 0.0}  # take resets
    assert again.tallies.get("last").item() == 7.0 and again.tallies.get("last").dtype == torch.float64


def test_an_interrupt_inside_a_hook_reruns_the_step_hooks_on_resume(tmp_path):
    def hooks_for(trainer_log, stop_at=None):
        def user_hook(run):  # runs first and may be interrupted
            run.record("user", run.step)
            if run.step == stop_at:
                raise KeyboardInterrupt

        def epoch_end(run):  # due at the same step: would be skipped for good without the pending mark
            run.tallies.add(calls=1)
            run.record("epoch_end", float(torch.rand(()).item()))  # exercises the RNG the hooks use

        return {1: user_hook, 4: epoch_end}

    straight, model_a, step_a = make_trainer()
    straight.run(step_a, 12, progress=False, hooks=hooks_for(None))

    path = tmp_path / "run.pt"
    first, _, step_b = make_trainer(path)
    with pytest.raises(KeyboardInterrupt):
        first.run(step_b, 12, progress=False, hooks=hooks_for(None, stop_at=8))
    saved = load_checkpoint(path)
    assert saved["step"] == 8 and saved["hooks_pending"]
    assert [s for s, _ in saved["history"]["user"]][-1] == 7  # the interrupted step's hook logs were undone

    resumed, model_c, step_c = make_trainer(path, seed=5)
    assert resumed.resume()
    resumed.run(step_c, 12, progress=False, hooks=hooks_for(None))
    assert resumed.history == straight.history
    assert resumed.tallies.get("calls").item() == straight.tallies.get("calls").item() == 3
    assert all(torch.equal(a, c) for a, c in zip(model_a.parameters(), model_c.parameters(), strict=True))


def test_an_interrupt_in_the_last_steps_hooks_is_finished_on_resume(tmp_path):
    straight, _, step_a = make_trainer()
    straight.run(step_a, 6, progress=False, hooks={3: lambda run: run.record("eval", run.step)})
    path = tmp_path / "run.pt"
    first, _, step_b = make_trainer(path)

    def interrupted(run):
        if run.step == 6:
            raise KeyboardInterrupt
        run.record("eval", run.step)

    with pytest.raises(KeyboardInterrupt):
        first.run(step_b, 6, progress=False, hooks={3: interrupted})
    resumed, _, step_c = make_trainer(path)
    resumed.resume()
    resumed.run(step_c, 6, progress=False, hooks={3: lambda run: run.record("eval", run.step)})
    assert resumed.history == straight.history and resumed.history["eval"][-1] == (6, 6.0)


def test_an_interrupt_that_lands_inside_a_step_keeps_the_last_checkpoint(tmp_path, capsys):
    path = tmp_path / "run.pt"
    trainer, model, step = make_trainer(path)

    def second_ctrl_c_mid_step(i):
        losses = step(i)  # the optimiser has stepped ...
        if i == 5:
            raise KeyboardInterrupt  # ... but the step never finished: it cannot be saved as whole
        return losses

    with pytest.raises(KeyboardInterrupt):
        trainer.run(second_ctrl_c_mid_step, 12, progress=False, checkpoint_every=4)
    assert load_checkpoint(path)["step"] == 4
    assert "Interrupted inside step 6; that step is not saved" in capsys.readouterr().out


def test_pending_hooks_are_cleared_when_the_resumed_run_has_none(tmp_path):
    path = tmp_path / "run.pt"
    first, _, step = make_trainer(path)

    def interrupted(run):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        first.run(step, 6, progress=False, hooks={6: interrupted})
    assert load_checkpoint(path)["hooks_pending"]
    resumed, _, step = make_trainer(path)
    resumed.resume()
    resumed.run(step, 6, progress=False)  # no hooks this time: nothing to re-run, and nothing left pending
    assert not load_checkpoint(path)["hooks_pending"] and resumed.step == 6


def test_a_run_says_once_how_long_the_rest_will_take(monkeypatch, capsys):
    from utils import run as run_module

    clock = iter(range(0, 10_000))  # one second per call of the clock
    monkeypatch.setattr(run_module.time, "perf_counter", lambda: float(next(clock)))
    estimate = run_module._TimeEstimate("WGAN-GP", 0, 1000, torch.device("cpu"))
    for index in range(30):
        estimate.after(index)
    lines = capsys.readouterr().out.splitlines()
    # the clock starts after step 0; after 10 s (10 more steps) 1 step/s is measured and 989 steps are left
    assert lines == ["WGAN-GP: about 16 min for the 989 steps left (1.0 steps/s measured; evaluations add to it)"]
    short = run_module._TimeEstimate("AE", 0, 40, torch.device("cpu"))
    for index in range(40):
        short.after(index)
    assert capsys.readouterr().out == ""  # under a minute to go: nothing to say
