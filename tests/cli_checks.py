"""Running a ``python -m <family>`` entry point in this process, as ``__main__`` does, for CLI tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest

from utils.cli import run_cli


def run_command(main: Callable[[Sequence[str] | None], int], capsys, *argv: str) -> tuple[int, str, str]:
    """``run_cli(main, argv)``: its exit status, stdout and stderr."""
    with pytest.raises(SystemExit) as exited:
        run_cli(main, list(argv))
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


def one_line(stderr: str) -> str:
    """The single line of an error message (fails the test if there are more)."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def sampled_images(main: Callable[[Sequence[str] | None], int], capsys, out, *argv: str) -> np.ndarray:
    """``images`` of the ``samples.npz`` that ``<family> sample ... --out out`` writes."""
    code, _, err = run_command(main, capsys, *argv, "--out", str(out))
    assert code == 0, err
    with np.load(out) as saved:
        return saved["images"].copy()


def assert_sample_k_ignores_n(main: Callable[[Sequence[str] | None], int], capsys, tmp_path, *argv: str,
                              k: int = 2) -> None:
    """Image ``k`` of ``sample ... -n k+1`` equals image ``k`` of ``-n 10`` (same seed): one sample re-drawn alone."""
    few = sampled_images(main, capsys, tmp_path / "few.npz", *argv, "-n", str(k + 1))
    many = sampled_images(main, capsys, tmp_path / "many.npz", *argv, "-n", "10")
    assert few.shape[0] == k + 1 and many.shape[0] == 10
    assert np.array_equal(few, many[: k + 1]), f"max difference {np.abs(few.astype(int) - many[: k + 1]).max()}"
    assert not np.array_equal(many[0], many[1])  # and the samples are not all one image


def load_tool(name: str):
    """``tools/<name>.py`` (a script outside the library) imported as the module ``name``."""
    import importlib.util
    import sys
    from pathlib import Path

    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent.parent / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module
