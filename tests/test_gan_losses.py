"""GAN losses against hand-computed values, and the per-sample gradient penalty."""

import math

import pytest
import torch

from gan.losses import (
    get_loss,
    gradient_penalty,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    per_sample_eps,
    vanilla_discriminator_loss,
    vanilla_generator_loss,
    wgan_discriminator_loss,
    wgan_generator_loss,
)

REAL = torch.tensor([2.0, 0.0])
FAKE = torch.tensor([-1.0, 1.0])


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_vanilla_discriminator_loss_is_bce_on_logits():
    # -log sigmoid(r) = softplus(-r); -log(1 - sigmoid(f)) = softplus(f)
    expected = (softplus(-2.0) + softplus(0.0)) / 2 + (softplus(-1.0) + softplus(1.0)) / 2
    assert vanilla_discriminator_loss(REAL, FAKE).item() == pytest.approx(expected, rel=1e-6)


def test_vanilla_generator_loss_is_non_saturating():
    expected = (softplus(1.0) + softplus(-1.0)) / 2  # -log sigmoid(f)
    assert vanilla_generator_loss(FAKE).item() == pytest.approx(expected, rel=1e-6)
    # A confident discriminator (very negative logit) still gives G a gradient near -1, not near 0.
    logit = torch.tensor([-10.0], requires_grad=True)
    vanilla_generator_loss(logit).backward()
    assert logit.grad.item() == pytest.approx(-1.0, abs=1e-4)


def test_lsgan_losses_use_targets_a0_b1_c1():
    # D: 1/2 mean((r - 1)^2) + 1/2 mean(f^2) = 1/2 * (1 + 1)/2 + 1/2 * (1 + 1)/2
    assert lsgan_discriminator_loss(REAL, FAKE).item() == pytest.approx(1.0)
    # G: 1/2 mean((f - 1)^2) = 1/2 * (4 + 0)/2
    assert lsgan_generator_loss(FAKE).item() == pytest.approx(1.0)
    assert lsgan_discriminator_loss(torch.ones(3), torch.zeros(3)).item() == 0.0


def test_wgan_losses():
    # D: -(mean(real) - mean(fake)) = -(1 - 0); G: -mean(fake) = 0
    assert wgan_discriminator_loss(REAL, FAKE).item() == pytest.approx(-1.0)
    assert wgan_generator_loss(torch.tensor([3.0, 1.0])).item() == pytest.approx(-2.0)


def test_loss_table_and_penalty_weight():
    assert get_loss("wgan-gp").penalty_weight == 10.0
    assert get_loss("vanilla").penalty_weight == get_loss("lsgan").penalty_weight == 0.0
    with pytest.raises(ValueError, match="unknown loss"):
        get_loss("hinge")


@pytest.mark.parametrize("weight_norm", [0.5, 1.0, 3.0])
def test_gradient_penalty_of_a_linear_critic_is_exact(weight_norm):
    # D(x) = w.x has gradient w everywhere, so GP = (|w| - 1)^2 wherever the mixed points lie.
    torch.manual_seed(0)
    w = torch.randn(1, 3, 4, 4)
    w = w / w.norm() * weight_norm

    def critic(x):
        return (x * w).flatten(1).sum(dim=1)

    real, fake = torch.randn(8, 3, 4, 4), torch.randn(8, 3, 4, 4)
    penalty = gradient_penalty(critic, real, fake)
    assert penalty.item() == pytest.approx((weight_norm - 1) ** 2, abs=1e-5)


def test_gradient_penalty_is_per_sample_and_differentiable():
    # D(x) = 1/2 |x|^2 has gradient x: the penalty is the mean over samples of (|x_hat_i| - 1)^2.
    real = torch.tensor([[[[2.0]]], [[[0.0]]]])
    fake = torch.tensor([[[[0.0]]], [[[4.0]]]])
    eps = torch.tensor([0.5, 0.25]).view(2, 1, 1, 1)  # x_hat = 1.0 and 3.0
    scale = torch.tensor(1.0, requires_grad=True)

    def critic(x):
        return scale * 0.5 * x.pow(2).flatten(1).sum(dim=1)

    penalty = gradient_penalty(critic, real, fake, eps=eps)
    assert penalty.item() == pytest.approx(((1 - 1) ** 2 + (3 - 1) ** 2) / 2, abs=1e-5)
    penalty.backward()  # the critic's parameters get a gradient through the penalty (create_graph)
    assert scale.grad is not None and scale.grad.item() != 0


def test_eps_is_drawn_per_sample():
    eps = per_sample_eps(64, 4)
    assert eps.shape == (64, 1, 1, 1)
    assert ((eps >= 0) & (eps <= 1)).all() and eps.unique().numel() > 1
