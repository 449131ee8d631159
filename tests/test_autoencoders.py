"""Autoencoders: shapes and ranges, the noise function, the reconstruction step, ECG thresholds."""

import numpy as np
import pytest
import torch

from nbhelpers.models.autoencoders import DenoisingConvAutoencoder, DenseAutoencoder, ECGAutoencoder
from nbhelpers.training.autoencoder import (
    add_gaussian_noise,
    anomaly_report,
    mean_std_threshold,
    per_sample_loss,
    reconstruction_errors,
    reconstruction_step,
    roc_threshold,
)


def test_shapes_and_output_range():
    x = torch.rand(5, 1, 28, 28)
    dense = DenseAutoencoder(latent_dim=64)
    assert dense.encode(x).shape == (5, 64)
    for model, inputs in [(dense, x), (DenoisingConvAutoencoder(), x), (ECGAutoencoder(), torch.rand(5, 140))]:
        out = model(inputs)
        assert out.shape == inputs.shape
        assert out.min() >= 0 and out.max() <= 1  # sigmoid outputs, like the [0, 1] inputs
    conv = DenoisingConvAutoencoder()
    assert conv.encoder(x).shape == (5, 8, 7, 7)  # the tutorial's 8x7x7 code


def test_ecg_autoencoder_layer_widths():
    widths = [m.out_features for m in ECGAutoencoder().modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [32, 16, 8, 16, 32, 140]


def test_noise_stays_in_range_and_is_seeded():
    x = torch.rand(200, 1, 28, 28)
    noisy = add_gaussian_noise(x, 0.5, torch.Generator().manual_seed(0))
    assert noisy.min() == 0 and noisy.max() == 1  # factor 0.5 pushes many pixels past both ends
    again = add_gaussian_noise(x, 0.5, torch.Generator().manual_seed(0))
    assert torch.equal(noisy, again)
    assert torch.equal(add_gaussian_noise(x, 0.0), x)
    # Away from the clip the noise is N(0, factor^2).
    mid = add_gaussian_noise(torch.full((100_000,), 0.5), 0.05, torch.Generator().manual_seed(1)) - 0.5
    assert abs(mid.std().item() - 0.05) < 1e-3 and abs(mid.mean().item()) < 1e-3


def test_per_sample_loss_hand_values():
    x = torch.zeros(2, 4)
    x_hat = torch.tensor([[1.0, 1.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0]])
    assert per_sample_loss(x_hat, x, "mse").tolist() == [0.5, 1.0]
    assert per_sample_loss(x_hat, x, "mae").tolist() == [0.5, 0.5]
    with pytest.raises(ValueError, match="'mse' or 'mae'"):
        per_sample_loss(x_hat, x, "l2")


def test_reconstruction_step_learns():
    torch.manual_seed(0)
    model = ECGAutoencoder()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    beats = torch.sin(torch.linspace(0, 6.28, 140)).add(1).div(2).repeat(32, 1)
    before = reconstruction_errors(model, beats, loss="mae").mean()
    for _ in range(100):
        reconstruction_step(model, opt, beats, loss="mae")
    assert reconstruction_errors(model, beats, loss="mae").mean() < 0.5 * before


def test_mean_std_threshold():
    # mean 2.5, population std sqrt(1.25), as np.std (and the tutorial) computes it
    assert mean_std_threshold(np.array([1.0, 2.0, 3.0, 4.0])) == pytest.approx(2.5 + 1.25 ** 0.5)
    assert mean_std_threshold(np.array([1.0, 3.0]), k=2.0) == pytest.approx(4.0)


def test_roc_threshold_separates_constructed_losses():
    losses = np.array([0.1, 0.2, 0.3, 0.5, 0.6])
    assert roc_threshold(losses, np.array([0, 0, 0, 1, 1])) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="both normal and anomalous"):
        roc_threshold(losses, np.zeros(5))


def test_anomaly_report_hand_counts():
    losses = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.6])
    is_anomaly = np.array([0, 0, 0, 1, 0, 1, 1])
    r = anomaly_report(losses, is_anomaly, threshold=0.35)  # a loss equal to it counts as anomalous
    # Normal predicted for 0.1, 0.2, 0.3 (all truly normal) out of four normals.
    assert r["precision"] == 1.0 and r["recall"] == 0.75
    # Flagged 0.35, 0.4, 0.5, 0.6: three true anomalies, one normal.
    assert r["anomaly_precision"] == 0.75 and r["anomaly_recall"] == 1.0
    assert r["accuracy"] == pytest.approx(6 / 7)
    assert r["auc_roc"] == pytest.approx(11 / 12)  # 11 of 12 (anomaly, normal) pairs ordered right
