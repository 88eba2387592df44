import pytest
import torch

from utils.config import ProfileError, by_profile, checkpoint_dir, default_dataset, resolve_profile


def test_explicit_profile_wins_over_environment(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "full")
    assert resolve_profile("smoke") == "smoke"
    assert resolve_profile() == "full"


def test_auto_follows_cuda(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    expected = "full" if torch.cuda.is_available() else "quick"
    assert resolve_profile() == expected
    assert resolve_profile(" AUTO ") == expected


def test_unknown_profile_lists_the_choices():
    with pytest.raises(ProfileError, match="smoke, quick, full, auto"):
        resolve_profile("fast")


def test_by_profile_and_default_dataset():
    assert by_profile("quick", smoke=1, quick=2, full=3) == 2
    assert default_dataset("smoke", full="cub") == "mnist5k"
    assert default_dataset("full", full="cub") == "cub"
    with pytest.raises(ProfileError):
        by_profile("auto", smoke=1, quick=2, full=3)


def test_checkpoint_dir_is_per_profile(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_CHECKPOINTS", str(tmp_path))
    assert checkpoint_dir("quick") == tmp_path / "quick"
