"""Resampling layers, output shapes, and a few training steps on a toy set."""

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from gan.models import (
    DigitDiscriminator,
    DigitGenerator,
    DownsampleConv2d,
    ResBlockDown,
    ResBlockUp,
    ResNetDiscriminator,
    ResNetGenerator,
    UpsampleConv2d,
    build_gan,
    mean_pool_downsample,
    nearest_upsample,
)
from gan.train import (
    GanConfig,
    GanRun,
    bilinear_grid,
    config_for,
    load_generator,
    seed_direction_corners,
    weight_average,
)
from utils.data import ImageSet
from utils.devices import small_model_threads


def toy_digits(n: int = 64) -> ImageSet:
    """Bright squares at random places on black: a data set with structure, made in no time."""
    generator = torch.Generator().manual_seed(0)
    images = torch.zeros(n, 1, 28, 28, dtype=torch.uint8)
    for image, (row, col) in zip(images, torch.randint(0, 20, (n, 2), generator=generator).tolist(), strict=True):
        image[0, row : row + 8, col : col + 8] = 255
    return ImageSet("toy", "train", images, torch.zeros(n, dtype=torch.int64), ("square",))


def test_upsampling_is_nearest_neighbour_channel_for_channel():
    x = torch.randn(2, 5, 3, 4)
    assert torch.equal(nearest_upsample(x), F.interpolate(x, scale_factor=2, mode="nearest"))


def test_downsampling_is_mean_pooling_channel_for_channel():
    x = torch.randn(2, 5, 6, 8)
    assert torch.allclose(mean_pool_downsample(x), F.avg_pool2d(x, 2), atol=1e-6)


def test_seed_resampling_would_mix_channels():
    # What the reference write-up did (repeat, not repeat_interleave): channel 0's output holds channel 1's pixels.
    x = torch.stack([torch.zeros(2, 2), torch.ones(2, 2)]).unsqueeze(0)
    seed_style = F.pixel_shuffle(x.repeat(1, 4, 1, 1), 2)
    assert not torch.equal(seed_style, nearest_upsample(x))
    assert nearest_upsample(x)[0, 0].eq(0).all() and nearest_upsample(x)[0, 1].eq(1).all()


def test_seed_downsampling_would_mix_channels():
    # The reference write-up viewed PixelUnshuffle's output as (B, 4, C, ...): its "mean" averages pixels of
    # different channels.
    x = torch.stack([torch.zeros(4, 4), torch.ones(4, 4)]).unsqueeze(0)
    seed_style = F.pixel_unshuffle(x, 2).view(1, 4, 2, 2, 2).mean(dim=1)
    assert not torch.allclose(seed_style, F.avg_pool2d(x, 2))
    assert mean_pool_downsample(x)[0, 0].eq(0).all() and mean_pool_downsample(x)[0, 1].eq(1).all()


def test_resampling_convolutions_follow_the_seed_order():
    x = torch.randn(2, 3, 8, 8)
    up, down = UpsampleConv2d(3, 5, 3), DownsampleConv2d(3, 5, 3)
    assert torch.allclose(up(x), up.conv(F.interpolate(x, scale_factor=2, mode="nearest")), atol=1e-6)
    assert torch.allclose(down(x), down.conv(F.avg_pool2d(x, 2)), atol=1e-6)


def test_resnet_blocks_change_resolution():
    assert ResBlockUp(8, 4)(torch.randn(2, 8, 4, 4)).shape == (2, 4, 8, 8)
    assert ResBlockDown(3, 8)(torch.randn(2, 3, 8, 8)).shape == (2, 8, 4, 4)


def test_resnet_gan_shapes_match_the_seed_set_up():
    generator, discriminator = ResNetGenerator(z_dim=128, channels=16), ResNetDiscriminator(channels=16)
    images = generator(torch.randn(3, 128))
    assert images.shape == (3, 3, 32, 32) and images.abs().max() <= 1
    assert discriminator(images).shape == (3,)
    assert ResNetGenerator().project.out_features == 2048  # Linear 128 -> 2048 = 128 x 4 x 4


def test_digit_gan_shapes():
    generator, discriminator = DigitGenerator(z_dim=16, channels=8), DigitDiscriminator(channels=8)
    images = generator(torch.randn(5, 16))
    assert images.shape == (5, 1, 28, 28)
    assert discriminator(images).shape == (5,)


def test_build_gan_rejects_unknown_architectures():
    with pytest.raises(ValueError, match="unknown architecture"):
        build_gan("vit", 8, 8, 1)


@pytest.mark.parametrize("loss", ["vanilla", "lsgan", "wgan-gp"])
def test_a_few_steps_reduce_the_discriminator_loss(loss):
    config = GanConfig(loss=loss, dataset="toy", iters=20, batch_size=32, n_critic=1000, z_dim=8, channels=8, lr=1e-3)
    run = GanRun(config, device="cpu", data=toy_digits())
    real = run.images[:32]
    torch.manual_seed(1)
    before = run.loss.discriminator(*run.discriminator(torch.cat([real, run.generator(run.noise(32))])).chunk(2))
    with small_model_threads("cpu"):  # G is never updated (n_critic > iters): D must learn to tell them apart
        for step in range(config.iters):
            run.step(run.batch(step))
    torch.manual_seed(1)
    after = run.loss.discriminator(*run.discriminator(torch.cat([real, run.generator(run.noise(32))])).chunk(2))
    assert after.item() < before.item() - 0.1


def test_generator_is_updated_every_n_critic_iterations():
    config = GanConfig(loss="wgan-gp", dataset="toy", iters=5, batch_size=8, n_critic=5, z_dim=8, channels=8)
    run = GanRun(config, device="cpu", data=toy_digits())
    start = [p.clone() for p in run.generator.parameters()]
    for step in range(4):
        run.step(run.batch(step))  # one critic update each: the generator waits for the fifth
    assert all(torch.equal(a, b) for a, b in zip(start, run.generator.parameters(), strict=True))
    run.step(run.batch(4))
    assert not all(torch.equal(a, b) for a, b in zip(start, run.generator.parameters(), strict=True))


@pytest.mark.parametrize("loss", ["vanilla", "lsgan", "wgan-gp"])
def test_profiles_pick_the_seed_set_up_in_full(loss):
    full = config_for("full", loss=loss)
    set_up = (full.dataset, full.architecture, full.batch_size, full.n_critic, full.iters, full.z_dim, full.channels)
    assert set_up == ("cub", "resnet", 256, 5, 30_000, 128, 128)
    assert (full.lr, full.betas, full.lr_decay) == (2e-4, (0.0, 0.9), "constant")
    assert config_for("smoke", loss=loss).architecture == config_for("quick", loss=loss).architecture == "digits"


def test_bilinear_grid_hits_the_corners_and_contains_the_seed_grid():
    corners = seed_direction_corners(6)
    grid = bilinear_grid(corners, 3, 5)
    assert grid.shape == (15, 6)
    assert torch.equal(grid[0], corners[0]) and torch.equal(grid[4], corners[1])
    assert torch.equal(grid[10], corners[2]) and torch.equal(grid[14], corners[3])
    assert torch.allclose(grid[:5, 0], torch.linspace(-1, 1, 5)) and grid[:, 2:].eq(0).all()


def test_the_resnet_set_up_trains_on_colour_images():
    images = torch.randint(0, 256, (16, 3, 40, 40), dtype=torch.uint8)  # resized to 32 px by the run
    config = GanConfig(loss="wgan-gp", dataset="toy", architecture="resnet", iters=2, batch_size=8, n_critic=1,
                       z_dim=16, channels=8)
    run = GanRun(config, device="cpu", data=ImageSet("toy", "train", images, None, ()))
    losses = run.step(run.batch(0))
    assert run.images.shape == (16, 3, 32, 32) and all(torch.isfinite(v) for v in losses.values())
    assert run.sample(3, seed=0).shape == (3, 3, 32, 32)


def test_linear_learning_rate_decay_reaches_zero_at_the_end():
    config = GanConfig(loss="lsgan", dataset="toy", iters=10, batch_size=8, z_dim=8, channels=8, lr=1e-3,
                       lr_decay="linear")
    run = GanRun(config, device="cpu", data=toy_digits(16))
    assert [run.learning_rate(s) for s in (0, 5, 10)] == pytest.approx([1e-3, 5e-4, 0.0])
    run.trainer.step = 5  # the learning rate follows the trainer's step, as in a run resumed there
    run.step(run.batch(5))
    assert run.opt_d.param_groups[0]["lr"] == run.opt_g.param_groups[0]["lr"] == pytest.approx(5e-4)
    assert GanRun(GanConfig(loss="lsgan", dataset="toy", z_dim=8, channels=8), device="cpu",
                  data=toy_digits(16)).learning_rate(500) == 2e-4
    with pytest.raises(ValueError, match="unknown lr_decay"):
        GanConfig(loss="lsgan", lr_decay="cosine")


def test_weight_average_is_the_mean_first_then_a_moving_average():
    average = weight_average(0.9)  # the mean of the first 1 / (1 - 0.9) = 10 values, then a moving average
    value = torch.tensor(0.0)
    values = [float(v) for v in range(1, 13)]
    for count, new in enumerate(values, start=1):  # AveragedModel copies the first value, then averages
        value = torch.tensor(new) if count == 1 else average(value, torch.tensor(new), torch.tensor(count - 1))
        if count == 10:
            assert value.item() == pytest.approx(sum(values[:10]) / 10)
    expected = sum(values[:10]) / 10
    for new in values[10:]:
        expected = 0.9 * expected + 0.1 * new
    assert value.item() == pytest.approx(expected)


def test_the_weight_average_samples_is_checkpointed_and_loaded(tmp_path):
    config = GanConfig(loss="wgan-gp", dataset="toy", iters=6, batch_size=8, n_critic=2, z_dim=8, channels=8,
                       ema_decay=0.999)
    run = GanRun(config, path=tmp_path / "gan.pt", device="cpu", data=toy_digits(16))
    run.train(progress=False)
    assert run.ema.n_averaged.item() == 3  # one update per generator step
    average = run.sampler.state_dict()
    assert not torch.equal(average["project.0.weight"], run.generator.state_dict()["project.0.weight"])
    generator, loaded = load_generator(tmp_path / "gan.pt")
    assert loaded == config
    for name, value in generator.state_dict().items():
        assert torch.equal(value, average[name]), name
    resumed = GanRun(config, path=tmp_path / "gan.pt", device="cpu", data=toy_digits(16))
    assert resumed.trainer.resume() and resumed.ema.n_averaged.item() == 3
    assert torch.equal(resumed.sample(4, seed=1), run.sample(4, seed=1))


def test_quick_tuned_wgan_gp_samples_a_wider_generator_through_its_weight_average():
    tuned = config_for("quick", loss="wgan-gp", recipe="tuned")
    assert (tuned.channels, tuned.d_channels, tuned.ema_decay, tuned.iters) == (32, 16, 0.999, 16_000)
    assert config_for("full", loss="wgan-gp", recipe="tuned") == config_for("full", loss="wgan-gp")
    with pytest.raises(ValueError, match="no tuned recipe for 'lsgan'"):
        config_for("quick", loss="lsgan", recipe="tuned")


def test_the_shared_recipe_gives_every_loss_the_same_budget():
    for profile in ("smoke", "quick", "full"):
        shared = [replace(config_for(profile, loss=loss), loss="") for loss in ("vanilla", "lsgan", "wgan-gp")]
        assert shared[0] == shared[1] == shared[2]  # iterations, batch, networks, schedule, averaging: all equal


def test_config_for_holds_the_evaluation_counts_and_checkpoints_leave_them_out():
    full, quick = config_for("full", loss="lsgan"), config_for("quick", loss="lsgan")
    assert (full.fid_every, full.fid_samples, full.final_samples) == (1000, 10_000, 50_000)  # the published FIDs
    assert (quick.fid_every, quick.fid_samples, quick.final_samples) == (500, 1000, 1000)
    stored = config_for("quick", loss="lsgan", final_samples=10, amp=True).for_trainer()
    assert stored == quick.for_trainer() and "final_samples" not in stored and "amp" not in stored
