"""Profiles and paths: the one place that decides how big a run is and where files go.

A profile is chosen by the notebook's parameters cell or the ``COURSE_PROFILE``
environment variable:

* ``smoke``: seconds per notebook section on the embedded ``mnist5k`` set (CI, ``make test``);
* ``quick``: minutes per notebook on two CPU cores, still meaningful results (``make course``);
* ``full``: the real data sets on a GPU, reproducing the published tables;
* ``auto``: ``full`` when CUDA is available, else ``quick``.

``COURSE_SCALE`` (a fraction, default 1) shrinks every profile's amount of work: iterations, epochs, steps,
sample counts and batch sizes, not the data sets or the networks.  ``COURSE_PROFILE=full COURSE_SCALE=0.0001``
is the rehearsal of the GPU path that CI runs on small copies of the real data sets (``make test``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, field, fields
from pathlib import Path
from typing import Any, TypeVar

import torch

PROFILES = ("smoke", "quick", "full")
PROFILE_CHOICES = (*PROFILES, "auto")
PROFILE_ENV_VAR = "COURSE_PROFILE"
SCALE_ENV_VAR = "COURSE_SCALE"

REPO_ROOT = Path(__file__).resolve().parent.parent

T = TypeVar("T")


class ProfileError(ValueError):
    """An unknown profile name."""


def resolve_profile(requested: str | None = None) -> str:
    """Turn ``requested`` (or ``$COURSE_PROFILE``, or ``auto``) into one of ``PROFILES``."""
    name = requested or os.environ.get(PROFILE_ENV_VAR) or "auto"
    name = name.strip().lower()
    if name not in PROFILE_CHOICES:
        raise ProfileError(f"unknown profile {name!r}; choose one of: {', '.join(PROFILE_CHOICES)}")
    if name == "auto":
        return "full" if torch.cuda.is_available() else "quick"
    return name


def by_profile(profile: str, *, smoke: T, quick: T, full: T) -> T:
    """Pick the setting that belongs to ``profile`` (already resolved)."""
    choices = {"smoke": smoke, "quick": quick, "full": full}
    if profile not in choices:
        raise ProfileError(f"unknown profile {profile!r}; choose one of: {', '.join(PROFILES)}")
    return choices[profile]


def course_scale() -> float:
    """``COURSE_SCALE`` from the environment: the fraction of each profile's work to do (default 1).

    ``ValueError`` unless it is a number in (0, 1].
    """
    value = os.environ.get(SCALE_ENV_VAR, "").strip() or "1"
    try:
        scale = float(value)
    except ValueError:
        scale = math.nan
    if not 0 < scale <= 1:
        raise ValueError(f"{SCALE_ENV_VAR} must be a fraction in (0, 1] of each profile's work, not {value!r}")
    return scale


def scaled(count: int, minimum: int = 1, scale: float | None = None) -> int:
    """``count`` times the course scale (:func:`course_scale` unless ``scale`` is given), rounded up, at least
    ``minimum`` (and never more than ``count``)."""
    scale = course_scale() if scale is None else scale
    return count if scale == 1 else min(count, max(minimum, math.ceil(count * scale)))


def rescale(settings: Mapping[str, Any], minimums: Mapping[str, int], scale: float | None = None) -> dict[str, Any]:
    """``settings`` with each field named in ``minimums`` (present in ``settings``) :func:`scaled`.

    A family's ``config_for`` lists its counts of work and their smallest sensible values, e.g.
    ``rescale(settings, {"iters": 2, "batch_size": 4, "final_samples": 16})``.
    """
    return {key: scaled(value, minimums[key], scale) if key in minimums and value is not None else value
            for key, value in settings.items()}


def scale_note() -> str:
    """For the set-up cell's first line, after the profile: empty at scale 1, else what ``COURSE_SCALE`` does.

    ``print(f"profile: {profile}{scale_note()}, ...")``.
    """
    scale = course_scale()
    if scale == 1:
        return ""
    return (f" (rehearsal: {SCALE_ENV_VAR}={scale:g} shrinks iterations, epochs, batch sizes and sample counts; "
            "same data sets and networks; its numbers mean nothing)")


def quality_checks(profile: str) -> bool:
    """Whether a notebook's checks cell should test what training achieves (orderings, thresholds).

    Not in ``smoke`` (seconds of training) nor at rehearsal scale (``COURSE_SCALE`` < 1); it then prints which
    checks are skipped and why, so that a skip is never silent.  The checks of the code itself always run.
    """
    if profile == "smoke":
        print("checks of what training achieves: skipped in the smoke profile (seconds of training prove only that "
              "the code runs)")
        return False
    if course_scale() < 1:
        print(f"checks of what training achieves: skipped at rehearsal scale ({SCALE_ENV_VAR}={course_scale():g}); "
              "they need the profile's whole training")
        return False
    return True


def default_dataset(profile: str, full: str) -> str:
    """The embedded ``mnist5k`` offline (smoke, quick); the family's real data set in ``full``."""
    return by_profile(profile, smoke="mnist5k", quick="mnist5k", full=full)


def data_root() -> Path:
    """Where data sets are downloaded and cached (``$COURSE_DATA`` or ``datasets/``)."""
    return Path(os.environ.get("COURSE_DATA", REPO_ROOT / "datasets")).expanduser()


def checkpoint_dir(profile: str) -> Path:
    """Notebook checkpoints: ``checkpoints/<profile>/`` (``$COURSE_CHECKPOINTS`` overrides the root)."""
    root = Path(os.environ.get("COURSE_CHECKPOINTS", REPO_ROOT / "checkpoints")).expanduser()
    return root / profile


def outputs_dir() -> Path:
    """Executed notebooks and reports written by ``make course``."""
    return Path(os.environ.get("COURSE_OUTPUTS", REPO_ROOT / "outputs")).expanduser()


# --------------------------------------------------------------------------- run settings vs evaluation settings


def not_stored(default: Any) -> Any:
    """A config field that is not part of what a checkpoint holds (speed and evaluation settings).

    ``amp: bool = not_stored(False)`` in a dataclass: a run resumed or reloaded with another value of
    such a field (mixed precision, channels-last, an FID cadence, a sample count) is the same run, so
    :func:`stored_settings` leaves it out of the settings a checkpoint is checked against.
    """
    return field(default=default, metadata={"stored": False})


def stored_settings(config: Any) -> dict[str, Any]:
    """The fields of the dataclass ``config`` that make a run (those not marked :func:`not_stored`), as a dict."""
    values = asdict(config)
    return {f.name: values[f.name] for f in fields(config) if f.metadata.get("stored", True)}


def from_stored(config_class: type[T], saved: Mapping[str, Any]) -> T:
    """The config ``config_class`` rebuilt from what :func:`stored_settings` wrote (speed and evaluation fields
    take their defaults; other keys in ``saved`` are ignored).  ``KeyError`` if a stored field is missing."""
    return config_class(**{f.name: saved[f.name] for f in fields(config_class) if f.metadata.get("stored", True)})
