"""The CVAE chapter's package: the label really conditions the model, the loss by hand, training."""

from __future__ import annotations

import math

import pytest
import torch

from cvae.losses import elbo_loss, gaussian_kl
from cvae.models import CVAE, VAE, build_model
from cvae.train import config_for, decode, default_latent, encode_means, load_model, reconstruct, sample
from utils.training import epoch_curve
from vae.mlp import MLPVAERun


def test_shapes_follow_the_seed():
    cvae, vae = build_model("cvae", latent=2), build_model("vae", latent=2)
    assert cvae.encoder[0].in_features == 784 + 10 and cvae.encoder[0].out_features == 500
    assert cvae.decoder[0].in_features == 2 + 10 and cvae.decoder[-1].out_features == 784
    assert vae.encoder[0].in_features == 784 and vae.decoder[0].in_features == 2
    logits, mu, logvar = cvae(torch.rand(5, 1, 28, 28), torch.arange(5))
    assert logits.shape == (5, 784) and mu.shape == logvar.shape == (5, 2)
    assert default_latent("mnist5k") == default_latent("mnist") == 2
    assert default_latent("fashion_mnist") == default_latent("kmnist") == 10


def test_cvae_decoder_uses_the_label():
    torch.manual_seed(0)
    model = CVAE(latent=2)
    z = torch.randn(1, 2).expand(10, 2)
    images = torch.sigmoid(model.decode(z, torch.arange(10)))
    assert all(not torch.allclose(images[0], images[k]) for k in range(1, 10))  # same z, other label
    assert torch.allclose(images[3], torch.sigmoid(model.decode(z[:1], torch.tensor([3])))[0], atol=1e-6)
    # the label enters through the one-hot rows of the first decoder layer: its gradient reaches them
    model.decode(z[:1], torch.tensor([7])).sum().backward()
    label_columns = model.decoder[0].weight.grad[:, 2:]
    assert label_columns[:, 7].abs().sum() > 0 and label_columns[:, [0, 1, 2, 3, 4, 5, 6, 8, 9]].abs().sum() == 0


def test_cvae_encoder_uses_the_label_and_vae_ignores_it():
    torch.manual_seed(0)
    x = torch.rand(1, 784).expand(2, 784)
    mu, _ = CVAE(latent=2).encode(x, torch.tensor([1, 8]))
    assert not torch.allclose(mu[0], mu[1])
    vae = VAE(latent=2)
    z = torch.randn(2, 2)
    assert torch.equal(vae.decode(z, torch.tensor([1, 8])), vae.decode(z))
    with pytest.raises(ValueError, match="needs labels"):
        CVAE(latent=2).decode(z)


def test_loss_per_sample_matches_a_hand_computation():
    ln2, ln3 = math.log(2), math.log(3)
    logits = torch.tensor([[0.0, 0.0, 0.0], [ln3, ln3, 0.0]])
    x = torch.tensor([[1.0, 0.0, 0.5], [1.0, 0.0, 1.0]])
    mu = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    logvar = torch.tensor([[0.0, ln2], [0.0, 0.0]])
    # image 1: sigmoid(0) = 1/2 for every pixel -> 3 ln 2 whatever the targets;
    #          KL = -1/2 [(1 + 0 - 1 - 1) + (1 + ln 2 - 0 - 2)] = 1 - ln(2) / 2
    # image 2: sigmoid(ln 3) = 3/4 -> -ln(3/4) - ln(1/4) + ln 2; KL of N(0, I) is 0
    bce = torch.tensor([3 * ln2, -math.log(0.75) - math.log(0.25) + ln2])
    kl = torch.tensor([1 - ln2 / 2, 0.0])
    loss = elbo_loss(logits, x, mu, logvar)
    assert torch.allclose(gaussian_kl(mu, logvar), kl)
    assert loss["bce"].item() == pytest.approx(bce.mean().item(), rel=1e-6)
    assert loss["kl"].item() == pytest.approx(kl.mean().item(), rel=1e-6)
    assert loss["loss"].item() == pytest.approx((bce + kl).mean().item(), rel=1e-6)  # per image: 2.5500
    doubled = elbo_loss(logits.repeat(2, 1), x.repeat(2, 1), mu.repeat(2, 1), logvar.repeat(2, 1))
    assert doubled["loss"].item() == pytest.approx(loss["loss"].item(), rel=1e-6)  # a mean, not a sum


def test_sampling_needs_one_label_per_image_for_a_cvae():
    model = CVAE(latent=2).eval()
    with pytest.raises(ValueError, match="one label per image"):
        sample(model, 4)
    images = sample(model, 4, torch.tensor([0, 1, 2, 3]), seed=5)
    assert images.dtype == torch.uint8 and images.shape == (4, 1, 28, 28)
    assert torch.equal(images, sample(model, 4, torch.tensor([0, 1, 2, 3]), seed=5))


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory):
    path = tmp_path_factory.mktemp("cvae") / "model.pt"
    config = config_for("smoke", model="cvae", epochs=1)
    return MLPVAERun(config, path=path, device="cpu").load_or_train(progress=False), path


def test_training_records_epoch_curves_and_a_loadable_checkpoint(one_epoch):
    run, path = one_epoch
    trainer = run.trainer
    [(epoch, test_loss)] = epoch_curve(trainer, "test_loss")
    assert epoch == 1 and 100 < test_loss < 400
    with pytest.raises(KeyError, match="no 'val_loss'"):
        epoch_curve(trainer, "val_loss")
    assert 100 < trainer.last("train_loss") < 400
    model = load_model(path)
    assert isinstance(model, CVAE) and model.latent == 2 and model.image_shape == (1, 28, 28)
    digits = decode(model, torch.zeros(10, 2), torch.arange(10)).float()  # one z, ten labels
    assert all((digits[0] - digits[k]).abs().mean() > 5 for k in range(1, 10))
    again = MLPVAERun(config_for("smoke", model="cvae", epochs=1), path=path, device="cpu")
    again.load_or_train(progress=False)
    assert again.trainer.step == trainer.step and again.history == trainer.history  # a finished run only loads


def test_codes_and_reconstructions_of_a_split(one_epoch):
    from cvae.train import load_split

    run, _ = one_epoch
    test = load_split("mnist5k", "test")
    model = run.model
    assert encode_means(model, test).shape == (1000, 2)
    assert reconstruct(model, test, slice(0, 8)).shape == (8, 1, 28, 28)


def test_config_for_is_the_chapters_set_up():
    quick, full = config_for("quick"), config_for("full")
    assert (quick.model, quick.dataset, quick.latent, quick.hidden, quick.epochs) == ("cvae", "mnist5k", 2, 500, 100)
    assert (full.dataset, full.epochs, full.batch_size, full.lr) == ("mnist", 200, 128, 1e-3)  # the published runs
    assert config_for("quick", "kmnist", model="vae").latent == 10 and config_for("smoke", latent=None).latent == 2
