"""Command-line plumbing shared by every ``python -m <family>`` and ``datasets/*.py``.

Bad input ends with one clear line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from utils.config import PROFILE_CHOICES
from utils.data import DatasetError, available_datasets


class CourseArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are a single line: ``<prog>: error: <message>``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def dataset_name(value: str) -> str:
    """argparse ``type=`` for a registered data set name; an unknown one lists the known ones."""
    known = available_datasets()
    if value not in known:
        raise argparse.ArgumentTypeError(f"unknown data set {value!r}; known: {', '.join(known)}")
    return value


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value!r}")
    return number


def add_common_training_arguments(parser: argparse.ArgumentParser, default_dataset: str = "mnist5k") -> None:
    parser.add_argument("--dataset", type=dataset_name, default=default_dataset, help="registered data set name")
    parser.add_argument("--profile", choices=PROFILE_CHOICES, default=None, help="smoke, quick, full or auto")
    parser.add_argument("--out", required=True, help="run folder: model.pt, metrics.json, samples.png")
    parser.add_argument("--seed", type=int, default=0)


def run_cli(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> NoReturn:
    """Run ``main`` and turn the errors a user can fix into one line and exit status 2."""
    try:
        code = main(argv)
    except (DatasetError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    sys.exit(code or 0)
