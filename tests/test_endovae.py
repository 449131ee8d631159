"""EndoVAE and its anomaly scores: shapes, the KL and ELBO against hand computations, Mahalanobis,
the encoder-feature score and pixel AUROC of notebook 02's exercises on constructed cases."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from nbhelpers.data.core import DataSource, TensorImageDataset
from nbhelpers.editions import taught
from nbhelpers.models.endovae import EndoVAE, SpatialEndoVAE
from nbhelpers.training.vae import gaussian_kl, reconstruction_loss, vae_step
from nbhelpers.vae_anomaly import (
    VAEOutputs,
    anomaly_scores,
    combined_score,
    encoder_statistics,
    reconstruction_quality,
    run_vae,
)

# Notebook 02 teaches these (its exercises 2.2 to 2.4): the tests use the notebook's own version.
feature_mahalanobis = taught("02", "feature_mahalanobis")
error_maps = taught("02", "error_maps")
pixel_auroc = taught("02", "pixel_auroc")


@pytest.mark.parametrize("latent_dim", [16, 128])
def test_shapes_and_range(latent_dim):
    model = EndoVAE(latent_dim)
    x = torch.rand(3, 3, 96, 96)
    x_hat, mu, logvar = model(x)
    assert x_hat.shape == x.shape and mu.shape == logvar.shape == (3, latent_dim)
    assert x_hat.min() >= 0 and x_hat.max() <= 1
    assert model.decode(torch.randn(2, latent_dim)).shape == (2, 3, 96, 96)
    assert model.latent_dim == latent_dim


def test_architecture_is_the_write_up_s():
    model = EndoVAE()
    convs = [m for m in model.encoder if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 128, 256]
    assert all(c.stride == (2, 2) for c in convs)
    assert model.encoder(torch.zeros(1, 3, 96, 96)).shape == (1, 256 * 6 * 6)
    deconvs = [m for m in model.decoder if isinstance(m, nn.ConvTranspose2d)]
    assert [d.out_channels for d in deconvs] == [128, 64, 32, 3]
    assert isinstance(model.decoder[-1], nn.Sigmoid)


def test_bad_size():
    with pytest.raises(ValueError, match="image_size=90"):
        EndoVAE(image_size=90)


def test_kl_matches_the_closed_form():
    mu = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    logvar = torch.log(torch.tensor([[1.0, 4.0], [1.0, 1.0]]))
    # 1/2 sum(sigma^2 + mu^2 - 1 - log sigma^2): (1 + 1 - 1 - 0) + (4 + 0 - 1 - log 4), halved
    expected = torch.tensor([0.5 * (1 + 3 - math.log(4)), 0.0])
    torch.testing.assert_close(gaussian_kl(mu, logvar), expected)


class ConstantDecoderVAE(nn.Module):
    """A fixed posterior N((1, -1), I) and a decoder that ignores z: every term is known by hand.

    The scores only call ``encode`` and ``decode``, so there is no ``forward``.
    """

    def encode(self, x):
        return torch.tensor([1.0, -1.0]).expand(len(x), 2), torch.zeros(len(x), 2)

    def decode(self, z):
        return torch.full((len(z), 1, 2, 2), 0.5)


def test_elbo_and_reconstruction_scores_by_hand():
    x = torch.tensor([0.0, 1.0, 0.25, 0.75]).view(1, 1, 2, 2)
    model = ConstantDecoderVAE()
    kl = 0.5 * (1 + 1)  # mu = (1, -1), sigma = 1
    bce = run_vae(model, x, recon="bce")
    # BCE against 0.5 is log 2 for any target; summed over 4 pixels.
    assert bce.neg_elbo.item() == pytest.approx(4 * math.log(2) + kl, rel=1e-6)
    mse = run_vae(model, x, recon="mse")
    assert mse.neg_elbo.item() == pytest.approx(0.25 + 0.25 + 0.0625 + 0.0625 + kl, rel=1e-6)
    scores = anomaly_scores(bce, train_mu=torch.randn(10, 2))
    assert scores["mse"][0] == pytest.approx(0.625 / 4)
    assert scores["bce"][0] == pytest.approx(math.log(2), rel=1e-5)


def test_run_vae_is_repeatable_skips_augmentation_and_keeps_the_global_rng():
    torch.manual_seed(0)
    images = torch.rand(5, 3, 96, 96)
    flip = TensorImageDataset(images, torch.zeros(5, dtype=torch.long), ["normal"],
                              DataSource("toy", "standin", "test"), transform=lambda x: 1 - x)
    model = EndoVAE(8).train()
    state = torch.get_rng_state()
    a, b = run_vae(model, flip, elbo_samples=3), run_vae(model, flip, elbo_samples=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert model.training  # the mode is restored
    torch.testing.assert_close(a.images, images)  # the transform was not applied
    torch.testing.assert_close(a.neg_elbo, b.neg_elbo, rtol=0, atol=0)
    torch.testing.assert_close(a.recon, model.decode(model.encode(images)[0]).detach())
    assert a.mu.shape == (5, 8) and a.neg_elbo.shape == (5,)
    assert (a.neg_elbo > 0).all()


def test_latent_mahalanobis_on_a_constructed_case():
    # Training latents spread 10x more along the second axis: mean 0, variances 4/3 and 400/3.
    train_mu = torch.tensor([[1.0, 10.0], [1.0, -10.0], [-1.0, 10.0], [-1.0, -10.0]])
    mu = torch.tensor([[0.0, 10.0], [3.0, 0.0]])
    out = VAEOutputs(images=torch.zeros(2, 1, 2, 2), recon=torch.zeros(2, 1, 2, 2), mu=mu,
                     logvar=torch.zeros(2, 2), neg_elbo=torch.zeros(2), labels=None)
    d = anomaly_scores(out, train_mu)["latent_mahalanobis"]
    # Further in Euclidean terms, but nearer in the normals' own spread: the order flips.
    np.testing.assert_allclose(d, [10 / math.sqrt(400 / 3), 3 / math.sqrt(4 / 3)], rtol=1e-3)
    assert d[0] < d[1]


def test_combined_score_standardises_each_score_on_its_references():
    # References: mean 2, std 1 for the first score; mean 10, std 5 for the second.
    refs = [np.array([1.0, 3.0]), torch.tensor([5.0, 15.0])]
    a, b = np.array([2.0, 4.0, 0.0]), torch.tensor([10.0, 0.0, 25.0])
    # z-scores (0, 2, -2) and (0, -2, 3), averaged.
    np.testing.assert_allclose(combined_score(refs, [a, b]), [0.0, 0.0, 0.5])
    # Each image is scored on its own: scoring one image alone gives the same value.
    np.testing.assert_allclose(combined_score(refs, [a[2:], b[2:]]), [0.5])
    # Rescaling one score (another model's units) changes nothing once it is standardised.
    np.testing.assert_allclose(combined_score([refs[0] * 7, refs[1]], [a * 7, b]), [0.0, 0.0, 0.5])
    with pytest.raises(ValueError, match="one reference per score"):
        combined_score(refs[:1], [a, b])
    with pytest.raises(ValueError, match="no spread"):
        combined_score([np.ones(3)], [a])


def test_encoder_statistics_are_the_channel_moments_at_every_depth():
    torch.manual_seed(0)
    model = EndoVAE(8).train()
    x = torch.rand(5, 3, 96, 96)
    levels = encoder_statistics(model, x, batch_size=2)  # three batches, stitched back in order
    assert [f.shape for f in levels] == [(5, 64), (5, 128), (5, 256), (5, 512)]
    first = torch.relu(model.encoder[0](x))
    torch.testing.assert_close(levels[0], torch.cat([first.mean((2, 3)), first.std((2, 3))], 1))
    assert model.training  # the mode is restored...
    assert not any(m._forward_hooks for m in model.modules())  # ...and the hooks are gone


def test_encoder_features_score_flags_an_image_unlike_the_training_set():
    torch.manual_seed(0)
    model = EndoVAE(8)
    smooth = torch.rand(40, 3, 1, 1) * 0.2 + 0.4 + 0.02 * torch.randn(40, 3, 96, 96)  # flat, slightly noisy
    spotted = smooth[:2].clone()
    spotted[:, :, 30:60, 30:60] = torch.rand(2, 3, 30, 30)  # a textured patch
    train, test = encoder_statistics(model, smooth[10:]), encoder_statistics(model, torch.cat([smooth[:2], spotted]))
    d = feature_mahalanobis(train, test)
    assert d.shape == (4,) and d[2:].min() > 10 * d[:2].max()


def test_feature_mahalanobis_on_a_constructed_case():
    # Both levels have an isotropic sample covariance, which Ledoit-Wolf leaves as it is (biased,
    # 1/n): 0.5 I for the first, 50 I for the second (the same points scaled by 10).
    level = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    d = feature_mahalanobis([level, 10 * level], [np.array([[1.0, 1.0]]), np.array([[10.0, 0.0]])])
    # (1 + 1) / 0.5 = 4 and 100 / 50 = 2, each divided by the level's dimension 2
    np.testing.assert_allclose(d, [4 / 2 + 2 / 2])


def test_pixel_auroc_of_error_maps_on_a_synthetic_mask():
    torch.manual_seed(0)
    images = torch.rand(4, 3, 32, 32)
    masks = torch.zeros(4, 1, 32, 32)
    masks[:, :, 8:20, 10:24] = 1
    recon = images + 0.02 * torch.randn_like(images)  # small errors everywhere...
    recon = recon + 0.5 * masks  # ...and large ones on the "polyp"
    maps = error_maps(images, recon)
    assert maps.shape == (4, 1, 32, 32)
    assert pixel_auroc(maps, masks) == 1.0
    assert pixel_auroc(-maps, masks) == 0.0
    smooth = error_maps(images, recon, sigma=2.0)
    assert smooth.shape == maps.shape and 0.9 < pixel_auroc(smooth, masks) < 1.0
    # Hand case: positives 0.35 and 0.8 against negatives 0.1 and 0.4 win 3 of 4 pairs.
    assert pixel_auroc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75


def test_reconstruction_quality_of_a_perfect_and_a_noisy_reconstruction():
    x = torch.rand(2, 3, 16, 16)
    noisy = (x + 0.1).clamp(0, 1)
    out = VAEOutputs(images=x, recon=torch.stack([x[0], noisy[1]]), mu=torch.zeros(2, 1),
                     logvar=torch.zeros(2, 1), neg_elbo=torch.zeros(2), labels=None)
    with np.errstate(divide="ignore"):  # a perfect reconstruction has infinite PSNR
        q = reconstruction_quality(out)
    assert q["mse"][0] == 0 and q["ssim"][0] == pytest.approx(1.0) and q["psnr"][0] == np.inf
    assert q["psnr"][1] == pytest.approx(10 * math.log10(1 / q["mse"][1]))


def test_sigma_reconstruction_loss_by_hand():
    # Two images of two pixel values each, x = 0: errors (0.1, 0.3) and (0.2, 0.0).
    x = torch.zeros(2, 1, 1, 2)
    x_hat = torch.tensor([0.1, 0.3, 0.2, 0.0]).view(2, 1, 1, 2).requires_grad_()
    loss = reconstruction_loss(x_hat, x, "sigma")
    variance = (0.01 + 0.09 + 0.04) / 4  # the batch's mean squared error per pixel value: 0.035
    expected = torch.tensor([0.10 / (2 * variance) + math.log(variance), 0.04 / (2 * variance) + math.log(variance)])
    torch.testing.assert_close(loss, expected)
    loss.sum().backward()  # sigma^2 carries no gradient: d/dx_hat = (x_hat - x) / sigma^2
    torch.testing.assert_close(x_hat.grad, x_hat.detach() / variance)
    assert torch.isfinite(reconstruction_loss(x, x, "sigma")).all()  # a perfect batch stays finite
    with pytest.raises(ValueError, match="'bce', 'mse' or 'sigma'"):
        reconstruction_loss(x_hat, x, "l1")


def test_spatial_endovae_keeps_a_latent_map_and_fits_a_tiny_batch():
    torch.manual_seed(0)
    model = SpatialEndoVAE(latent_channels=4, image_size=32)
    x = torch.rand(4, 3, 32, 32)
    x_hat, mu, logvar = model(x)
    assert x_hat.shape == x.shape and x_hat.min() >= 0 and x_hat.max() <= 1
    assert mu.shape == logvar.shape == (4, 4 * 4 * 4) == (4, model.latent_dim)
    assert model.decode(mu).shape == x.shape
    with pytest.raises(ValueError, match="multiple of 8"):
        SpatialEndoVAE(image_size=30)
    images = torch.rand(4, 3, 1, 1).expand(4, 3, 32, 32).contiguous()  # four flat colours
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    before = reconstruction_loss(model.decode(model.encode(images)[0]), images, "mse").mean().item()
    for _ in range(150):
        vae_step(model, opt, images, recon="sigma", beta=0.01)
    after = reconstruction_loss(model.decode(model.encode(images)[0]), images, "mse").mean().item()
    assert after < 0.1 * before  # the mean reconstruction error falls by more than ten times
