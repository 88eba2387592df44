"""Profiles and paths: the one place that decides how big a run is and where files go.

A profile is chosen by the notebook's parameters cell or the ``COURSE_PROFILE``
environment variable:

* ``smoke``: seconds per notebook section on the embedded ``mnist5k`` set (CI, ``make test``);
* ``quick``: minutes per notebook on two CPU cores, still meaningful results (``make course``);
* ``full``: the real data sets on a GPU, reproducing the published tables;
* ``auto``: ``full`` when CUDA is available, else ``quick``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, field, fields
from pathlib import Path
from typing import Any, TypeVar

import torch

PROFILES = ("smoke", "quick", "full")
PROFILE_CHOICES = (*PROFILES, "auto")
PROFILE_ENV_VAR = "COURSE_PROFILE"

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
