"""The fully-connected GAN: shapes, output ranges, and that D's verdict reaches G's weights."""

import pytest
import torch
import torch.nn.functional as F

from nbhelpers.models.mlp_gan import Discriminator, Generator


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 8, 8)])
def test_generator_shape_and_tanh_range(shape):
    torch.manual_seed(0)
    G = Generator(latent_dim=16, image_shape=shape)
    x = G(torch.randn(5, 16) * 10)  # large noise drives tanh to its limits, never past them
    assert x.shape == (5, *shape)
    assert x.min() >= -1 and x.max() <= 1


def test_generator_has_no_batchnorm_on_the_noise():
    layers = list(Generator().net)
    assert isinstance(layers[0], torch.nn.Linear) and not isinstance(layers[1], torch.nn.BatchNorm1d)
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in layers) == 3


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 8, 8)])
def test_discriminator_returns_one_logit_per_image(shape):
    D = Discriminator(image_shape=shape)
    logits = D(torch.rand(7, *shape) * 2 - 1)
    assert logits.shape == (7,)
    assert torch.isfinite(logits).all()
    assert not isinstance(list(D.net)[-1], torch.nn.Sigmoid), "D must return logits, not probabilities"


def test_generator_loss_reaches_every_generator_weight():
    torch.manual_seed(0)
    G, D = Generator(latent_dim=8), Discriminator()
    logits = D(G(torch.randn(4, 8)))
    F.binary_cross_entropy_with_logits(logits, torch.ones(4)).backward()
    for name, p in G.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name

