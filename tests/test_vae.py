"""Chapters 02-03's package: the losses by hand and by Monte Carlo, beta schedules, shapes, training."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from utils.training import epoch_curve
from vae.losses import autoencoder_loss, bernoulli_nll, beta_at, beta_vae_loss, gaussian_kl, sse_per_image
from vae.models import Autoencoder, ConvVAE, NaturalImageVAE, build_model
from vae.train import (
    VAEConfig,
    VAERun,
    codes,
    config_for,
    eval_split,
    load_images,
    load_model,
    loss_terms,
    profile_defaults,
    reconstruct,
    sample,
)

# --------------------------------------------------------------------------- losses


def test_kl_matches_a_monte_carlo_estimate():
    torch.manual_seed(0)
    mu = torch.tensor([[0.5, -1.0, 2.0], [0.0, 0.3, -0.7]])
    logvar = torch.tensor([[0.0, -1.0, 0.7], [1.2, -0.4, 0.1]])
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    z = q.sample((200_000,))
    monte_carlo = (q.log_prob(z) - p.log_prob(z)).sum(-1).mean(0)
    closed = gaussian_kl(mu, logvar)
    assert closed.shape == (2,)
    assert torch.allclose(closed, monte_carlo, atol=0.02), (closed, monte_carlo)
    assert torch.allclose(closed, torch.distributions.kl_divergence(q, p).sum(-1), atol=1e-5)


def test_kl_is_zero_only_at_the_prior():
    assert gaussian_kl(torch.zeros(4, 8), torch.zeros(4, 8)).abs().max() < 1e-7
    assert (gaussian_kl(torch.full((1, 8), 0.1), torch.zeros(1, 8)) > 0).all()


def test_sse_is_summed_over_pixels_and_averaged_over_the_batch():
    x = torch.zeros(2, 3, 4, 4)
    output = torch.zeros(2, 3, 4, 4)
    output[0] = 0.5  # 48 pixels, each error 0.25 -> 12
    output[1, 0, 0, 0] = -2.0  # one pixel, error 4
    assert sse_per_image(output, x).tolist() == [12.0, 4.0]
    assert autoencoder_loss(output, x)["loss"].item() == 8.0


def test_beta_weights_only_the_kl():
    recon, kl = torch.tensor([10.0, 20.0]), torch.tensor([1.0, 3.0])
    for beta in (0.0, 0.8, 1.2):
        terms = beta_vae_loss(recon, kl, beta)
        assert terms["recon"].item() == 15.0 and terms["kl"].item() == 2.0
        assert math.isclose(terms["loss"].item(), 15.0 + beta * 2.0, rel_tol=1e-6)


# --------------------------------------------------------------------------- schedules


@pytest.mark.parametrize("epochs", [2, 10, 20])
def test_schedules_at_their_end_points(epochs):
    target = 1.2
    assert all(beta_at("constant", target, e, epochs) == target for e in range(epochs))
    linear = [beta_at("linear", target, e, epochs) for e in range(epochs)]
    assert linear[0] == 0.0 and linear[-1] == pytest.approx(target, abs=1e-12)  # the write-up's stopped at 0.95
    assert all(a < b for a, b in zip(linear, linear[1:], strict=False))
    cyclical = [beta_at("cyclical", target, e, epochs) for e in range(epochs)]
    assert cyclical[0] == 0.0 and cyclical[-1] == target
    assert all(0.0 <= b <= target for b in cyclical)


def test_cyclical_schedule_restarts():
    betas = [beta_at("cyclical", 1.0, e, 20, cycles=4) for e in range(20)]
    restarts = sum(1 for a, b in zip(betas, betas[1:], strict=False) if b < a)
    assert restarts == 3  # four cycles
    assert betas.count(1.0) >= 4  # each cycle reaches the target and holds it


def test_schedule_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown beta schedule"):
        beta_at("exponential", 1.0, 0, 10)
    with pytest.raises(ValueError, match="outside"):
        beta_at("linear", 1.0, 10, 10)


# --------------------------------------------------------------------------- shapes


def test_seed_cifar_shapes():
    ae, vae = Autoencoder(latent=16), ConvVAE(latent=1024)
    assert ae.encoder.fc.in_features == 4096 and ae.encoder.fc.out_features == 16  # 256 x 4 x 4
    assert vae.encoder.fc.out_features == 2 * 1024 and vae.decoder.fc.in_features == 1024
    convs = [m for m in ae.encoder.convs if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0]) for c in convs] == [
        (3, 32, 1), (32, 64, 2), (64, 128, 2), (128, 256, 2)]
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert ae(x).shape == x.shape and ae.encode(x).shape == (2, 16)
    output, mu, logvar = vae(x)
    assert output.shape == x.shape and mu.shape == logvar.shape == (2, 1024)


def test_digits_keep_their_size():
    for name in ("ae", "vae"):
        model = build_model(name, 8, channels=1, image_size=28, width=4)
        out = model(torch.zeros(3, 1, 28, 28))
        assert (out[0] if isinstance(out, tuple) else out).shape == (3, 1, 28, 28)
    mlp = build_model("mlp-vae", 2, channels=1, image_size=28, width=50)
    logits, mu, _ = mlp(torch.zeros(3, 1, 28, 28))
    assert logits.shape == (3, 784) and mu.shape == (3, 2)


def test_natural_image_vae_shapes_and_range():
    model = NaturalImageVAE(latent=128)
    convs = [m for m in model.encoder if isinstance(m, torch.nn.Conv2d)]
    assert all(c.kernel_size == (5, 5) and c.stride == (2, 2) for c in convs) and len(convs) == 4
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.encoder)
    output, mu, _ = model(torch.rand(2, 3, 64, 64) * 2 - 1)
    assert output.shape == (2, 3, 64, 64) and mu.shape == (2, 128)
    assert output.abs().max() <= 1  # tanh
    with pytest.raises(ValueError, match="divisible"):
        NaturalImageVAE(image_size=28)


def test_the_encoder_learns_from_the_reconstruction_loss():
    """The reference write-up's default mode never gives its encoder this gradient; here beta = 0 still trains it."""
    torch.manual_seed(0)
    model = build_model("natural-vae", 16, channels=3, image_size=64, width=4)
    assert (model.kind, model.image_shape, model.variational) == ("natural-vae", (3, 64, 64), True)  # its own
    _, recon, kl = loss_terms(model, torch.rand(4, 3, 64, 64) * 2 - 1)
    beta_vae_loss(recon, kl, beta=0.0)["loss"].backward()
    first_conv = model.encoder[0].weight.grad
    assert first_conv is not None and first_conv.abs().sum() > 0


# --------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("vae") / "vae.pt"
    config = VAEConfig(model="vae", latent=16, epochs=2, width=4, batch_size=64, train_subset=256,
                       beta=0.5, beta_schedule="linear")
    return config, path, VAERun(config, path=path).load_or_train(progress=False).trainer


def test_training_records_the_curves(vae_run):
    config, _, trainer = vae_run
    assert trainer.step == 2 * 4
    assert [e for e, _ in epoch_curve(trainer, "val_loss")] == [1, 2]  # epoch 1 is the first
    assert [b for _, b in epoch_curve(trainer, "beta")] == [0.0, 0.5]  # linear: 0, then the target
    for (_, loss), (_, recon), (_, kl) in zip(trainer.history["val_loss"], trainer.history["val_recon"],
                                              trainer.history["val_kl"], strict=True):
        assert loss == pytest.approx(recon + kl)  # validation weighs the KL by 1 whatever the schedule
    assert trainer.history["val_loss"][-1][1] < trainer.history["val_loss"][0][1]


def test_cosine_learning_rate_ends_at_zero_and_constant_stays(vae_run):
    _, _, trainer = vae_run  # the smoke-sized run uses the constant rate: VAEConfig's default
    assert trainer.optimizers["adam"].param_groups[0]["lr"] == pytest.approx(1e-3)
    cosine = VAERun(VAEConfig(model="ae", latent=4, epochs=2, width=4, batch_size=64, train_subset=128,
                              lr_schedule="cosine")).train(progress=False)
    assert cosine.optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="learning-rate schedule"):
        VAEConfig(lr_schedule="step").resolved()


def test_checkpoint_reloads_and_reconstructs(vae_run):
    config, path, trainer = vae_run
    again = VAERun(config, path=path).load_or_train(progress=False)  # finished checkpoint: nothing to train
    assert again.trainer.step == trainer.step and again.history == trainer.history
    model, loaded = load_model(path)
    assert loaded == config.resolved() and model.kind == "vae"
    test = load_images("mnist5k", "test", "vae")
    images = reconstruct(model, test, slice(0, 10))
    assert images.dtype == torch.uint8 and images.shape == (10, 1, 28, 28)
    assert torch.equal(images, reconstruct(model, test, slice(0, 10)))  # decoded from the mean: no noise
    drawn = sample(model, 5, seed=3)
    assert drawn.shape == (5, 1, 28, 28) and torch.equal(drawn, sample(model, 5, seed=3))
    assert codes(model, test.x[:7]).shape == (7, 16)


def test_user_hooks_run_beside_the_epoch_evaluation():
    seen = []
    config = VAEConfig(model="ae", latent=4, epochs=2, width=4, batch_size=64, train_subset=128)
    run = VAERun(config).train(progress=False,
                               hooks={2: lambda trainer: seen.append((trainer.step, "val_recon" in trainer.history))})
    assert seen == [(2, True), (4, True)]  # the user's epoch hook runs after the run's own evaluation
    assert len(run.history["val_recon"]) == 2


def test_autoencoder_has_no_kl_and_no_prior(tmp_path):
    run = VAERun(VAEConfig(model="ae", latent=8, epochs=1, width=4, train_subset=128)).train(progress=False)
    assert "val_kl" not in run.history and "beta" not in run.history
    with pytest.raises(ValueError, match="no prior"):
        run.sample(4)


def test_mlp_vae_trains_on_bernoulli_pixels():
    run = VAERun(VAEConfig(model="mlp-vae", latent=2, epochs=1, width=50, train_subset=256)).train(progress=False)
    recon = run.trainer.last("val_recon")
    assert 100 < recon < 784 * math.log(2) + 1  # BCE per image, below the all-0.5 guess
    assert run.model.latent == 2 and run.model.likelihood == "bernoulli"


def test_profiles_and_splits():
    assert profile_defaults("full", "vae") == {"epochs": 20, "width": None, "batch_size": None,
                                               "lr_schedule": "constant", "train_subset": None}
    quick = profile_defaults("quick", "ae")
    assert quick["width"] < 32 and quick["epochs"] >= 10 and quick["lr_schedule"] == "cosine"
    assert config_for("full", model="vae", beta=1.2).batch_size == 256  # the published one, from resolved()
    assert config_for("quick", model="ae", epochs=None).epochs == quick["epochs"]  # None keeps the default
    assert VAEConfig(model="vae").resolved().width == 32 and VAEConfig(model="vae").resolved().grad_clip == 1.0
    assert VAEConfig(model="natural-vae").resolved().image_size == 64
    assert eval_split("mnist5k") == "test" and eval_split("coco") == "validation"
    with pytest.raises(ValueError, match="beta schedule"):
        VAEConfig(beta_schedule="exp").resolved()


def test_skimage_photos_are_an_offline_natural_image_set():
    train_split, test_split = (load_images("skimage_photos", s, "natural-vae") for s in ("train", "test"))
    assert train_split.image_shape == test_split.image_shape == (3, 64, 64)
    assert len(train_split) == 4 * len(test_split) and len(test_split.classes) == 12
    assert torch.equal(torch.bincount(test_split.labels), torch.full((12,), 100))
    assert -1 <= train_split.x.min() and train_split.x.max() <= 1


def test_cpu_bernoulli_nll_matches_torch_in_value_and_gradient():
    torch.manual_seed(0)
    logits = torch.cat([torch.randn(4, 50) * 4, torch.tensor([[-80.0, -17.0, 0.0, 17.0, 80.0] * 10])])
    target = torch.rand(5, 50)
    target[0, :10] = 0.0
    target[1, :10] = 1.0
    ours, theirs = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    mine = bernoulli_nll(ours, target)
    reference = F.binary_cross_entropy_with_logits(theirs, target, reduction="none")
    torch.testing.assert_close(mine, reference, atol=1e-6, rtol=1e-6)
    weights = torch.rand(5, 50)
    (mine * weights).sum().backward()
    (reference * weights).sum().backward()
    torch.testing.assert_close(ours.grad, theirs.grad, atol=1e-6, rtol=1e-6)
    double = torch.randn(3, 7, dtype=torch.float64, requires_grad=True)
    fixed_target = torch.rand(3, 7, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda values: bernoulli_nll(values, fixed_target), (double,))
