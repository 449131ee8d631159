"""The write-up's conv VAE: shapes at 28 and 64, output range, the reparameterisation."""

import pytest
import torch

from nbhelpers.models.conv_vae import ConvVAE


@pytest.mark.parametrize("size", [28, 32, 64])
def test_shapes_and_range(size):
    model = ConvVAE(channels=3, image_size=size, latent_dim=10, width=8)
    x = torch.rand(5, 3, size, size)
    x_hat, mu, logvar = model(x)
    assert x_hat.shape == x.shape and mu.shape == logvar.shape == (5, 10)
    assert x_hat.min() >= 0 and x_hat.max() <= 1
    assert model.decode(torch.randn(2, 10)).shape == (2, 3, size, size)
    assert model.latent_dim == 10


def test_reparameterize_has_the_posterior_moments_and_passes_gradients():
    torch.manual_seed(0)
    model = ConvVAE(image_size=28, latent_dim=4, width=4)
    mu = torch.tensor([[1.0, -2.0, 0.0, 3.0]]).expand(20000, 4).requires_grad_(True)
    logvar = torch.log(torch.tensor([[0.25, 1.0, 4.0, 0.01]])).expand(20000, 4)
    z = model.reparameterize(mu, logvar)
    torch.testing.assert_close(z.mean(0), mu[0].detach(), atol=0.05, rtol=0)
    torch.testing.assert_close(z.std(0), torch.tensor([0.5, 1.0, 2.0, 0.1]), atol=0.05, rtol=0.03)
    z.sum().backward()
    torch.testing.assert_close(mu.grad, torch.ones_like(mu))


def test_bad_size():
    with pytest.raises(ValueError, match="image_size=30"):
        ConvVAE(image_size=30)
