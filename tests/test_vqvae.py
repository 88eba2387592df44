"""The VQ-VAE chapter's package: quantiser, losses, models and priors against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from utils.noise import categorical, per_sample_rand
from vqvae.losses import (
    codebook_loss,
    commitment_loss,
    discriminator_loss,
    generator_loss,
    perplexity,
    straight_through,
    vqvae_loss,
)
from vqvae.models import PRESETS, VQVAE
from vqvae.prior_runs import sample_pixelcnn, sampling_labels
from vqvae.priors import CodeDiscriminator, CodeGenerator, GatedPixelCNN, upsampling_steps
from vqvae.quantizer import VectorQuantizer


def test_straight_through_passes_the_gradient_unchanged():
    z_e = torch.tensor([[0.2, -1.0], [3.0, 0.5]], requires_grad=True)
    z_q = torch.tensor([[0.0, -1.0], [2.0, 2.0]], requires_grad=True)
    out = straight_through(z_e, z_q)
    assert torch.equal(out, z_q.detach())  # forward: the code vectors
    weights = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    (out * weights).sum().backward()
    assert torch.equal(z_e.grad, weights)  # backward: d out / d z_e = identity
    assert z_q.grad is None or torch.count_nonzero(z_q.grad) == 0


def test_codebook_and_commitment_losses_by_hand():
    z_e = torch.tensor([[1.0, 2.0], [0.0, 0.0]], requires_grad=True)
    e = torch.tensor([[0.0, 2.0], [1.0, 1.0]], requires_grad=True)
    # squared differences: (1, 0), (1, 1) -> mean 3 / 4
    assert codebook_loss(z_e, e).item() == pytest.approx(0.75)
    assert commitment_loss(z_e, e).item() == pytest.approx(0.75)
    codebook_loss(z_e, e).backward()
    assert z_e.grad is None and torch.allclose(e.grad, 2 * (e - z_e).detach() / 4)  # moves the codes only
    z_e.grad, e.grad = None, None
    commitment_loss(z_e, e).backward()
    assert e.grad is None and torch.allclose(z_e.grad, 2 * (z_e - e).detach() / 4)  # moves the encoder only
    x, x_hat = torch.zeros(1, 4), torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    total = vqvae_loss(x_hat, x, torch.tensor(0.75), torch.tensor(0.75), beta=0.25, data_variance=0.5)
    assert total["reconstruction"].item() == pytest.approx(0.5 / 0.5)
    assert total["loss"].item() == pytest.approx(1.0 + 0.75 + 0.25 * 0.75)


def test_perplexity_by_hand():
    assert perplexity(torch.tensor([5, 5, 5, 5])).item() == pytest.approx(4.0)
    assert perplexity(torch.tensor([0, 9, 0])).item() == pytest.approx(1.0)
    # p = (1/2, 1/4, 1/4): entropy = 1.5 ln 2 -> perplexity 2^1.5
    assert perplexity(torch.tensor([2, 1, 1])).item() == pytest.approx(2**1.5, rel=1e-6)


def test_gan_losses_by_hand():
    assert discriminator_loss(torch.zeros(3), torch.zeros(3)).item() == pytest.approx(2 * math.log(2))
    assert generator_loss(torch.tensor([math.log(3)])).item() == pytest.approx(-math.log(0.75))


def quantizer_with(codes: torch.Tensor, **options) -> VectorQuantizer:
    quantizer = VectorQuantizer(len(codes), codes.shape[1], **options)
    quantizer.codebook.data.copy_(codes)
    quantizer.code_sum.copy_(codes)
    quantizer.cluster_size.fill_(1.0)
    quantizer.initialised.fill_(True)
    return quantizer


def test_quantiser_picks_the_nearest_code_and_reports_usage():
    codes = torch.tensor([[0.0, 0.0], [1.0, 1.0], [-2.0, 0.0]])
    quantizer = quantizer_with(codes).eval()
    z_e = torch.tensor([[0.9, 1.2], [0.1, -0.1], [-1.5, 0.2], [0.7, 0.6]]).t().reshape(1, 2, 2, 2)
    out = quantizer(z_e)
    assert out.indices.tolist() == [[[1, 0], [2, 1]]]
    assert torch.equal(out.z_q, codes[out.indices].permute(0, 3, 1, 2))
    assert out.counts.tolist() == [1, 2, 1]
    assert out.perplexity.item() == pytest.approx(perplexity(torch.tensor([1, 2, 1])).item())
    assert torch.equal(quantizer.lookup(out.indices), out.z_q)


def test_ema_moves_a_code_to_the_mean_of_its_vectors():
    codes = torch.tensor([[0.0, 0.0], [10.0, 10.0]])
    quantizer = quantizer_with(codes, decay=0.5, dead_fraction=0.0).train()
    z_e = torch.tensor([[1.0, 1.0], [3.0, 1.0], [9.0, 9.0], [11.0, 11.0]]).t().reshape(1, 2, 2, 2)
    quantizer(z_e)
    # cluster sizes 0.5 * 1 + 0.5 * 2 = 1.5 each; sums 0.5 * code + 0.5 * (sum of its vectors)
    assert torch.allclose(quantizer.cluster_size, torch.tensor([1.5, 1.5]))
    expected = torch.stack([(0.5 * codes[0] + 0.5 * torch.tensor([4.0, 2.0])) / 1.5,
                            (0.5 * codes[1] + 0.5 * torch.tensor([20.0, 20.0])) / 1.5])
    assert torch.allclose(quantizer.codebook, expected, atol=1e-4)
    assert not quantizer.codebook.requires_grad  # EMA: no gradient on the codebook


def test_dead_codes_restart_at_encoder_outputs():
    torch.manual_seed(0)
    codes = torch.tensor([[0.0, 0.0], [100.0, 100.0], [-100.0, 50.0]])
    quantizer = quantizer_with(codes, decay=0.5, dead_fraction=0.5).train()
    z_e = torch.randn(4, 2, 3, 3) * 0.1
    for _ in range(4):  # codes 1 and 2 are never chosen: their counts halve every step
        out = quantizer(z_e)
    assert int(quantizer.restarts) >= 2
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, 2)
    for k in (1, 2):  # each now sits on (a moving average of) encoder outputs, far from where it was
        assert quantizer.codebook[k].abs().max() < 1.0
    assert (quantizer(z_e).counts > 0).sum() >= 2 and out.z_q.shape == z_e.shape
    assert torch.cdist(quantizer.codebook[1:], flat).min() < 1.0


def test_gradient_codebook_without_ema_learns_by_the_codebook_loss():
    quantizer = VectorQuantizer(4, 3, ema=False).train()
    z_e = torch.randn(2, 3, 2, 2, requires_grad=True)
    out = quantizer(z_e)
    (out.codebook_loss + out.commitment_loss + out.z_q.sum()).backward()
    assert quantizer.codebook.requires_grad and quantizer.codebook.grad.abs().sum() > 0
    assert z_e.grad is not None


def test_the_oasis_set_up_and_the_digit_model_shapes():
    oasis = VQVAE(PRESETS["oasis"])
    assert oasis.encoder[0].out_channels == 64 and oasis.encoder[2].out_channels == 128
    assert oasis.quantizer.num_codes == 512 and oasis.quantizer.code_dim == 64
    assert sum(isinstance(m, torch.nn.ConvTranspose2d) for m in oasis.decoder) == 2
    x = torch.rand(1, 1, 256, 256)
    x_hat, out = oasis.train()(x)
    assert x_hat.shape == x.shape and out.indices.shape == (1, 64, 64) and out.z_q.shape == (1, 64, 64, 64)
    digits = VQVAE(PRESETS["digits"]).eval()
    indices = digits.encode_indices(torch.rand(3, 1, 28, 28))
    assert indices.shape == (3, 7, 7) and digits.decode_indices(indices).shape == (3, 1, 28, 28)


def test_pixelcnn_is_causal_in_raster_order():
    torch.manual_seed(0)
    prior = GatedPixelCNN(num_codes=5, channels=8, layers=4).eval()
    maps = torch.randint(0, 5, (1, 5, 5))
    base = prior(maps)
    for position in (0, 7, 12, 24):
        i, j = divmod(position, 5)
        changed = maps.clone()
        changed[0, i, j] = (changed[0, i, j] + 1) % 5
        diff = (prior(changed) - base).abs().sum(dim=1)[0].flatten()  # per position
        assert diff[: position + 1].max() < 1e-6, f"a change at {position} reached an earlier position"
        if position < 24:
            assert diff[position + 1 :].max() > 0  # and it does inform later ones
    # the first layer reaches the whole row above: no blind spot to the upper right
    changed = maps.clone()
    changed[0, 1, 4] = (changed[0, 1, 4] + 1) % 5
    assert (prior(changed) - base).abs().sum(dim=1)[0, 2, 0] > 0


def test_pixelcnn_sees_only_rows_above_within_its_receptive_field():
    torch.manual_seed(0)
    prior = GatedPixelCNN(num_codes=5, channels=8, layers=3, first_kernel=5, kernel=3).eval()
    assert prior.rows_above == 2 + 2 * 1
    maps = torch.randint(0, 5, (2, 12, 6))
    full = prior(maps)
    for i in (4, 7, 11):  # the crop that sampling uses gives the same logits for row i
        cropped = prior(maps[:, i - prior.rows_above : i + 1])[:, :, -1]
        assert torch.allclose(cropped, full[:, :, i], atol=1e-5)
    too_short = prior(maps[:, 11 - prior.rows_above + 1 : 12])[:, :, -1]
    assert not torch.allclose(too_short, full[:, :, 11], atol=1e-5)  # one row fewer changes them


def test_pixelcnn_sampling_is_reproducible():
    prior = GatedPixelCNN(num_codes=6, channels=8, layers=2).eval()
    first = prior.sample(per_sample_rand(3, (4, 4), seed=1))
    again = prior.sample(per_sample_rand(3, (4, 4), seed=1))
    assert first.shape == (3, 4, 4) and first.dtype == torch.long and torch.equal(first, again)
    assert first.min() >= 0 and first.max() < 6


def test_class_conditional_pixelcnn_is_still_causal_and_uses_its_label():
    torch.manual_seed(0)
    prior = GatedPixelCNN(num_codes=5, channels=8, layers=3, num_classes=4).eval()
    assert torch.equal(prior.condition.weight, torch.zeros_like(prior.condition.weight))  # starts unconditional
    torch.nn.init.normal_(prior.condition.weight)  # as after training: every class its own biases
    maps, labels = torch.randint(0, 5, (2, 5, 5)), torch.tensor([1, 3])
    base = prior(maps, labels)
    for position in (0, 12, 24):
        i, j = divmod(position, 5)
        changed = maps.clone()
        changed[:, i, j] = (changed[:, i, j] + 1) % 5
        diff = (prior(changed, labels) - base).abs().sum(dim=1).flatten(1)
        assert diff[:, : position + 1].max() < 1e-6, f"a change at {position} reached an earlier position"
    other = prior(maps, torch.tensor([2, 3]))
    assert (other[0, :, 0, 0] - base[0, :, 0, 0]).abs().max() > 1e-3  # the label alone moves the first position
    assert torch.equal(other[1], base[1])  # and only for the map it belongs to
    with pytest.raises(ValueError, match="one label per map"):
        prior(maps)
    with pytest.raises(ValueError, match="unconditional"):
        GatedPixelCNN(num_codes=5, channels=8, layers=3)(maps, labels)


def test_unconditional_pixelcnn_is_unchanged_by_the_option():
    torch.manual_seed(0)
    plain = GatedPixelCNN(num_codes=5, channels=8, layers=3)
    torch.manual_seed(0)
    none = GatedPixelCNN(num_codes=5, channels=8, layers=3, num_classes=None)
    assert plain.condition is None and plain.state_dict().keys() == none.state_dict().keys()
    assert not any("condition" in name for name in plain.state_dict())  # old checkpoints still load
    maps = torch.randint(0, 5, (2, 4, 4))
    assert torch.equal(plain(maps), none(maps))


def test_conditional_samples_follow_the_requested_labels():
    torch.manual_seed(0)
    prior = GatedPixelCNN(num_codes=6, channels=8, layers=2, num_classes=3).eval()
    torch.nn.init.normal_(prior.condition.weight, std=3.0)
    assert torch.equal(sampling_labels(prior, 7), torch.tensor([0, 1, 2, 0, 1, 2, 0]))  # every class in turn
    assert torch.equal(sampling_labels(prior, 3, 2), torch.tensor([2, 2, 2]))
    with pytest.raises(ValueError, match="labels in 0..2"):
        sampling_labels(prior, 3, 3)
    with pytest.raises(ValueError, match="unconditional"):
        sampling_labels(GatedPixelCNN(num_codes=6, channels=8, layers=2), 3, 1)
    maps = sample_pixelcnn(prior, 7, (3, 3), seed=1)
    labels = torch.arange(7) % 3
    direct = prior.sample(per_sample_rand(7, (3, 3), seed=1), labels=labels)
    assert maps.shape == (7, 3, 3) and maps.dtype == torch.long and torch.equal(maps, direct)
    other = prior.sample(per_sample_rand(7, (3, 3), seed=1), labels=(labels + 1) % 3)
    assert not torch.equal(other, direct)  # the same noise, other labels: other maps
    with pytest.raises(ValueError, match="one label per map"):
        prior.sample(per_sample_rand(4, (3, 3), seed=1), labels=labels[:2])


def test_inverse_cdf_draws_follow_the_probabilities():
    probabilities = torch.tensor([0.7, 0.2, 0.1]).view(1, 3).expand(20000, 3)
    draws = categorical(probabilities, per_sample_rand(20000, (), seed=0))
    frequencies = torch.bincount(draws, minlength=3).float() / len(draws)
    assert torch.allclose(frequencies, torch.tensor([0.7, 0.2, 0.1]), atol=0.015)


@pytest.mark.parametrize("map_size, steps", [(7, 0), (8, 1), (64, 4), (32, 3)])
def test_code_generator_outputs_k_logits_per_position(map_size, steps):
    assert upsampling_steps(map_size) == steps
    generator = CodeGenerator(num_codes=11, map_size=map_size, z_dim=8, width=32)
    logits = generator(torch.randn(2, 8))
    assert logits.shape == (2, 11, map_size, map_size)  # a categorical distribution, not an index number
    one_hot = generator.sample_one_hot(torch.randn(2, 8))
    assert torch.equal(one_hot.sum(dim=1), torch.ones(2, map_size, map_size))
    assert set(one_hot.unique().tolist()) <= {0.0, 1.0}


def test_discriminator_reads_code_vectors_and_its_gradient_reaches_the_generator_logits():
    torch.manual_seed(0)
    codebook = torch.randn(11, 4)
    generator = CodeGenerator(num_codes=11, map_size=7, z_dim=8, width=32)
    discriminator = CodeDiscriminator(codebook, map_size=7, width=8)
    one_hot = generator.sample_one_hot(torch.randn(2, 8))
    indices = one_hot.argmax(dim=1)
    assert torch.allclose(discriminator.embed(one_hot), codebook[indices].permute(0, 3, 1, 2))
    generator_loss(discriminator(one_hot)).backward()
    assert generator.body[-1].weight.grad.abs().sum() > 0
    assert "codebook" in dict(discriminator.named_buffers())  # frozen: not among the parameters
    assert all(p is not discriminator.codebook for p in discriminator.parameters())
