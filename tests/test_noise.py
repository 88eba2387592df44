"""Per-sample noise: sample k of seed S is the same whatever n > k is asked for, in every sampler."""

from __future__ import annotations

import pytest
import torch

from cvae.models import build_model as build_cvae
from cvae.train import sample as cvae_sample
from gan.train import GanRun, config_for
from utils.noise import categorical, per_sample_rand, per_sample_randn, sample_seed
from vae.latent import GaussianMixtureSampler, NearestNeighbourSampler, prior_codes
from vae.train import VAEConfig, make_model
from vae.train import sample as vae_sample
from vqvae.prior_runs import sample_code_gan, sample_pixelcnn
from vqvae.priors import CodeGenerator, GatedPixelCNN


def assert_k_ignores_n(draw, k: int = 2, n: int = 10) -> None:
    """``draw(n)[k]`` equals ``draw(k + 1)[k]``, and the rows are not all equal."""
    few, many = draw(k + 1), draw(n)
    assert len(few) == k + 1 and len(many) == n
    assert torch.equal(torch.as_tensor(few)[k], torch.as_tensor(many)[k])
    assert not torch.equal(torch.as_tensor(many)[0], torch.as_tensor(many)[1])


def test_torch_randn_alone_would_not_do():
    # the fault this module exists for: the first row of randn(n, 20) changes with n
    first = torch.randn(1, 20, generator=torch.Generator().manual_seed(0))
    many = torch.randn(10, 20, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(first[0], many[0])


@pytest.mark.parametrize("shape", [(), (3,), (20,), (7, 7), (2, 3, 5)])
def test_per_sample_noise_rows_depend_only_on_seed_and_index(shape):
    for draw in (per_sample_randn, per_sample_rand):
        assert_k_ignores_n(lambda n, draw=draw: draw(n, shape, seed=4), k=3)
        rows = draw(5, shape, seed=4)
        assert rows.shape == (5, *shape) and rows.dtype == torch.float32
        assert not torch.equal(rows, draw(5, shape, seed=5))  # another seed, other numbers
        assert not torch.equal(rows, draw(5, shape, seed=4, stream=1))  # another stream too
    uniform = per_sample_rand(2000, (), seed=0)
    assert 0 <= uniform.min() and uniform.max() < 1 and abs(uniform.mean().item() - 0.5) < 0.02
    assert per_sample_randn(0, (3,), seed=0).shape == (0, 3)


def test_sample_seeds_differ_in_the_bits_torch_keeps():
    # torch's CPU generator keeps the low 32 bits of a seed: neighbouring seeds and indices must differ there
    seeds = {sample_seed(seed, index, stream) for seed in range(30) for index in range(200) for stream in range(2)}
    assert len(seeds) == 30 * 200 * 2 and max(seeds) < 2**32
    assert sample_seed(-1, 0) != sample_seed(0, 0)  # negative seeds work
    with pytest.raises(ValueError, match="index"):
        sample_seed(0, -1)
    with pytest.raises(ValueError, match=">= 0"):
        per_sample_randn(-1, (2,), seed=0)


def test_categorical_is_the_inverse_cdf():
    probabilities = torch.tensor([[0.5, 0.25, 0.25]] * 5)
    uniform = torch.tensor([0.0, 0.49, 0.5, 0.74, 0.99])
    assert categorical(probabilities, uniform).tolist() == [0, 0, 1, 1, 2]
    assert categorical(torch.tensor([[0.0, 1.0, 0.0]]), torch.tensor([0.0])).tolist() == [1]  # never a 0 class


def test_gan_sample():
    run = GanRun(config_for("smoke", loss="wgan-gp"), device="cpu")
    assert_k_ignores_n(lambda n: run.sample(n, seed=7), k=4)


@pytest.mark.parametrize("model, latent", [("vae", 8), ("mlp-vae", 20), ("natural-vae", 10)])
def test_vae_sample(model, latent):
    torch.manual_seed(0)
    shape = (3, 64, 64) if model == "natural-vae" else (1, 28, 28)
    vae = make_model(VAEConfig(model=model, latent=latent, width=4 if model != "mlp-vae" else 50).resolved(),
                     shape).eval()
    assert_k_ignores_n(lambda n: vae_sample(vae, n, seed=0), k=0)
    assert_k_ignores_n(lambda n: vae_sample(vae, n, seed=3, temperature=0.5), k=6)


@pytest.mark.parametrize("conditional", [True, False])
def test_cvae_sample(conditional):
    torch.manual_seed(0)
    model = build_cvae("cvae" if conditional else "vae", 2, 50, (1, 28, 28), 10).eval()

    def draw(n):
        labels = torch.arange(n) % 10 if conditional else None
        return cvae_sample(model, n, labels, seed=1)

    assert_k_ignores_n(draw, k=3)


def test_latent_samplers_of_chapter_04():
    assert_k_ignores_n(lambda n: prior_codes(n, 3, seed=2), k=1)
    codes = torch.cat([torch.randn(200, 2) + 4, torch.randn(200, 2) - 4])
    labels = torch.cat([torch.zeros(200), torch.ones(200)]).long()
    mixture = GaussianMixtureSampler(components=2).fit(codes)
    assert_k_ignores_n(lambda n: mixture.sample(n, seed=3), k=5)
    neighbours = NearestNeighbourSampler(k=3).fit(codes, labels)
    assert_k_ignores_n(lambda n: neighbours.sample(n, seed=3), k=5)
    drawn = mixture.sample(2000, seed=0)  # still the mixture: half the codes near each centre
    assert abs((drawn[:, 0] > 0).float().mean().item() - 0.5) < 0.05


@pytest.mark.parametrize("num_classes", [None, 10])
def test_pixelcnn_prior(num_classes):
    torch.manual_seed(0)
    prior = GatedPixelCNN(num_codes=12, channels=8, layers=3, num_classes=num_classes).eval()
    if num_classes:
        torch.nn.init.normal_(prior.condition.weight)
    assert_k_ignores_n(lambda n: sample_pixelcnn(prior, n, (5, 5), seed=5), k=3)
    if num_classes:
        assert_k_ignores_n(lambda n: sample_pixelcnn(prior, n, (5, 5), seed=5, labels=6), k=3)


def test_dcgan_prior():
    torch.manual_seed(0)
    generator = CodeGenerator(num_codes=12, map_size=7, z_dim=16, width=16).eval()
    assert_k_ignores_n(lambda n: sample_code_gan(generator, n, seed=5), k=3)

