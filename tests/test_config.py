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


# --------------------------------------------------------------------------- what a checkpoint stores


def test_speed_and_evaluation_fields_are_not_stored_and_take_defaults_when_rebuilt():
    from dataclasses import dataclass

    from utils.config import from_stored, not_stored, stored_settings

    @dataclass(frozen=True)
    class Example:
        epochs: int = 3
        amp: bool = not_stored(False)
        samples: int = not_stored(100)

    stored = stored_settings(Example(epochs=5, amp=True, samples=7))
    assert stored == {"epochs": 5}
    assert from_stored(Example, {**stored, "image_shape": [1, 28, 28]}) == Example(epochs=5)
    with pytest.raises(KeyError):
        from_stored(Example, {"amp": True})


def test_every_family_leaves_amp_and_channels_last_out_of_its_checkpoints():
    import gan
    import vae
    import vqvae
    from utils.config import stored_settings

    for config in (gan.config_for("quick"), vae.config_for("quick"), vqvae.config_for("quick").vqvae):
        assert {"amp", "channels_last"} <= set(vars(config)) and not {"amp", "channels_last"} & set(
            stored_settings(config))
    assert "fid_every" not in gan.config_for("quick").for_trainer()


def test_chapter_04_evaluation_counts_come_from_its_config_for():
    from utils.config import stored_settings
    from vae.latent import config_for

    quick, full = config_for("quick"), config_for("full")
    assert (quick.score_samples, quick.distribution_samples) == (5000, 30_000)
    assert (full.score_samples, full.epochs, full.dataset) == (10_000, 100, "mnist")
    assert config_for("quick", score_samples=None).score_samples == 5000  # None keeps the profile's value
    assert stored_settings(config_for("quick", score_samples=50)) == stored_settings(quick)  # not part of the run


def test_channels_last_is_a_config_choice_applied_on_cuda_only():
    from utils.devices import use_channels_last

    assert use_channels_last("cuda") and not use_channels_last("cuda", wanted=False)
    assert not use_channels_last("cpu") and not use_channels_last("cpu", wanted=True)


# --------------------------------------------------------------------------- COURSE_SCALE: the rehearsal knob


def test_course_scale_shrinks_the_counts_of_work_and_nothing_else(monkeypatch):
    import gan
    import vqvae
    from utils.config import course_scale, rescale, scaled

    monkeypatch.delenv("COURSE_SCALE", raising=False)
    assert course_scale() == 1 and scaled(30_000) == 30_000
    full = gan.config_for("full")
    monkeypatch.setenv("COURSE_SCALE", "0.001")
    assert scaled(30_000) == 30 and scaled(20, minimum=1) == 1 and scaled(3, minimum=5) == 3  # never above count
    rehearsal = gan.config_for("full")
    assert (rehearsal.iters, rehearsal.final_samples, rehearsal.batch_size) == (30, 50, 4)
    assert (rehearsal.architecture, rehearsal.channels, rehearsal.dataset) == (full.architecture, full.channels, "cub")
    assert gan.config_for("full", iters=7).iters == 7  # what the caller asks for is not scaled
    settings = vqvae.config_for("full")
    assert settings.pixelcnn.channels == 128 and settings.pixelcnn.sample_positions == 32
    assert rescale({"epochs": 20, "lr": 1e-3}, {"epochs": 1}) == {"epochs": 1, "lr": 1e-3}


@pytest.mark.parametrize("value", ["0", "2", "-0.5", "half", "nan"])
def test_a_bad_course_scale_is_one_clear_error(monkeypatch, value):
    from utils.config import course_scale

    monkeypatch.setenv("COURSE_SCALE", value)
    with pytest.raises(ValueError, match=r"COURSE_SCALE must be a fraction in \(0, 1\]"):
        course_scale()


def test_quality_checks_say_why_they_are_skipped(monkeypatch, capsys):
    from utils.config import quality_checks

    monkeypatch.delenv("COURSE_SCALE", raising=False)
    assert quality_checks("quick") and capsys.readouterr().out == ""
    assert not quality_checks("smoke") and "smoke profile" in capsys.readouterr().out
    monkeypatch.setenv("COURSE_SCALE", "0.01")
    assert not quality_checks("full") and "skipped at rehearsal scale (COURSE_SCALE=0.01)" in capsys.readouterr().out


def test_a_rehearsal_pixelcnn_draws_only_the_first_positions():
    from vqvae.priors import GatedPixelCNN

    prior = GatedPixelCNN(num_codes=8, channels=8, layers=2).eval()
    uniform = torch.rand(2, 5, 5, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        whole, first = prior.sample(uniform), prior.sample(uniform, positions=7)
    assert torch.equal(first.flatten(1)[:, :7], whole.flatten(1)[:, :7])
    assert (first.flatten(1)[:, 7:] == 0).all()
