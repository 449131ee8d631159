"""The MNIST VAE: the shared VAE convention, and the ELBO in nats against hand computations."""

import math

import pytest
import torch
from torch import nn

from nbhelpers.models.mnist_vae import MnistVAE
from nbhelpers.training.vae import negative_elbo, vae_step


def test_forward_follows_the_vae_convention():
    torch.manual_seed(0)
    model = MnistVAE(latent_dim=8, channels=4, hidden=16)
    x = torch.rand(5, 1, 28, 28)
    x_hat, mu, logvar = model(x)
    assert x_hat.shape == x.shape and mu.shape == logvar.shape == (5, 8)
    assert x_hat.min() >= 0 and x_hat.max() <= 1
    assert model.latent_dim == 8
    assert torch.equal(torch.stack(model.encode(x)), torch.stack((mu, logvar)))
    assert model.decode(torch.randn(3, 8)).shape == (3, 1, 28, 28)


def test_forward_samples_z_but_encode_is_deterministic():
    torch.manual_seed(0)
    model = MnistVAE(latent_dim=8, channels=4, hidden=16)
    x = torch.rand(2, 1, 28, 28)
    assert not torch.equal(model(x)[0], model(x)[0]), "the reparameterised z must be random"
    assert torch.equal(model.encode(x)[0], model.encode(x)[0])


class FixedVAE(nn.Module):
    """A stand-in with known posterior and decoder: q(z|x) = N(0.5, 0.25) per dim, p(x_i=1|z) = 0.8."""

    latent_dim = 2

    def encode(self, x):
        n = len(x)
        return torch.full((n, 2), 0.5), torch.full((n, 2), math.log(0.25))

    def decode(self, z):
        return torch.full((len(z), 1, 2, 2), 0.8)


def test_negative_elbo_in_nats_matches_a_hand_computation():
    x = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]]])
    # Bernoulli: three pixels on at p = 0.8, one off at 1 - 0.8 = 0.2.
    recon = -(3 * math.log(0.8) + math.log(0.2))
    # KL(N(0.5, 0.25) || N(0, 1)) = 1/2 (mu^2 + sigma^2 - 1 - log sigma^2), twice.
    kl = 2 * 0.5 * (0.25 + 0.25 - 1 - math.log(0.25))
    assert recon + kl == pytest.approx(2.27887 + 0.88629, abs=1e-4)  # the numbers written out
    got = negative_elbo(FixedVAE(), x, samples=3)
    assert got.shape == (1,)
    assert got.item() == pytest.approx(recon + kl, rel=1e-5)


def test_an_uninformed_decoder_costs_log_2_per_pixel():
    torch.manual_seed(0)
    model = MnistVAE(latent_dim=4, channels=4, hidden=16)
    last = model.decoder[-1]
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)  # every pixel p = sigmoid(0) = 1/2, whatever z is
    x = torch.bernoulli(torch.full((3, 1, 28, 28), 0.3))
    mu, logvar = model.encode(x)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
    expected = 784 * math.log(2) + kl
    assert torch.allclose(negative_elbo(model, x), expected, rtol=1e-5)


def test_a_few_steps_lower_the_bound_on_binary_digits():
    torch.manual_seed(0)
    model = MnistVAE(latent_dim=4, channels=4, hidden=32)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x = torch.zeros(16, 1, 28, 28)
    x[:, :, 6:22, 12:16] = 1.0  # one binary "digit", repeated
    before = negative_elbo(model, x).mean().item()
    for _ in range(30):
        vae_step(model, opt, x)
    assert negative_elbo(model, x).mean().item() < 0.5 * before
