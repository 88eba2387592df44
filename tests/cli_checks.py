"""Running a ``python -m <family>`` entry point in this process, as ``__main__`` does, for CLI tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence

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
