"""DCGAN / cDCGAN / WGAN-GP critic: shapes at every supported size, init statistics, conditioning."""

import pytest
import torch
from torch import nn

from nbhelpers.models.dcgan import Discriminator, Generator
from nbhelpers.models.init import init_dcgan_weights


@pytest.mark.parametrize("size", [28, 32, 64, 128])
@pytest.mark.parametrize(("n_classes", "norm"), [(0, "batch"), (8, "batch"), (0, "layer"), (8, "none")])
def test_shapes_and_range(size, n_classes, norm):
    G = Generator(latent_dim=16, channels=3, image_size=size, width=8, n_classes=n_classes)
    D = Discriminator(channels=3, image_size=size, width=8, n_classes=n_classes, norm=norm)
    labels = torch.arange(4) % 8 if n_classes else None
    x = G(torch.randn(4, 16), labels)
    assert x.shape == (4, 3, size, size)
    assert x.min() >= -1 and x.max() <= 1
    assert D(x, labels).shape == (4,)


def test_one_channel_and_bad_size():
    assert Generator(8, channels=1, image_size=28, width=4)(torch.randn(2, 8)).shape == (2, 1, 28, 28)
    with pytest.raises(ValueError, match="image_size=48"):
        Generator(image_size=48)
    with pytest.raises(ValueError, match="norm='spectral'"):
        Discriminator(norm="spectral")


def test_critic_without_batchnorm_scores_each_sample_alone():
    """The WGAN-GP critic must not couple samples: a sample's score is the same alone or in a batch."""
    for norm in ("layer", "none"):
        D = Discriminator(image_size=32, width=8, norm=norm).train()
        assert not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())
        x = torch.randn(6, 3, 32, 32)
        torch.testing.assert_close(D(x)[:1], D(x[:1]))


def test_dcgan_init_statistics():
    torch.manual_seed(0)
    G = Generator(latent_dim=100, image_size=64, width=64).apply(init_dcgan_weights)
    convs = [m.weight for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    w = torch.cat([c.flatten() for c in convs])
    assert abs(w.mean().item()) < 1e-3
    assert w.std().item() == pytest.approx(0.02, rel=0.02)
    bn = torch.cat([m.weight for m in G.modules() if isinstance(m, nn.BatchNorm2d)])
    assert bn.mean().item() == pytest.approx(1.0, abs=5e-3)
    assert bn.std().item() == pytest.approx(0.02, rel=0.2)
    biases = [m.bias for m in G.modules() if isinstance(m, nn.BatchNorm2d | nn.ConvTranspose2d)
              and m.bias is not None]
    assert all(torch.all(b == 0) for b in biases)


def test_conditioning_changes_the_output():
    torch.manual_seed(0)
    G = Generator(latent_dim=16, image_size=28, width=8, n_classes=8).eval()
    z = torch.randn(1, 16).expand(8, 16)
    x = G(z, torch.arange(8))
    # Same noise, different labels: every pair of classes gives a different image.
    dist = torch.cdist(x.flatten(1), x.flatten(1))
    assert (dist + torch.eye(8) > 1e-3).all()
    with pytest.raises(ValueError, match="pass labels"):
        G(z)


def test_conditional_discriminator_learns_class_specific_scores():
    """The label reaches D through its input maps and its projection; a step on class 3 moves class 3 most."""
    torch.manual_seed(0)
    D = Discriminator(image_size=28, width=8, n_classes=8).eval()
    assert torch.all(D.embed.weight == 0)  # the projection starts neutral
    x = torch.randn(1, 3, 28, 28).expand(8, 3, 28, 28)
    before = D(x, torch.arange(8)).detach()
    assert before.unique().numel() == 8  # the one-hot input maps already separate the labels
    opt = torch.optim.SGD(D.parameters(), lr=0.01)
    (-D(x[:1], torch.tensor([3]))).sum().backward()  # raise the "real" score of class 3
    opt.step()
    gain = D(x, torch.arange(8)).detach() - before
    assert gain.argmax() == 3 and gain[3] > gain[torch.arange(8) != 3].max() + 1e-3
