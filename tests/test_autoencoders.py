"""Autoencoders: shapes and ranges, the reconstruction step, reconstruct, and notebook 04's ECG exercises."""

import numpy as np
import pytest
import torch

from nbhelpers.editions import taught
from nbhelpers.models.autoencoders import DenoisingConvAutoencoder, DenseAutoencoder, ECGAutoencoder
from nbhelpers.training.autoencoder import (
    per_sample_loss,
    reconstruct,
    reconstruction_errors,
    reconstruction_step,
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


def test_reconstruct_runs_in_eval_mode_and_restores_the_mode():
    model = torch.nn.Sequential(torch.nn.Dropout(0.5))  # eval mode turns dropout off: output = input
    x = torch.rand(6, 10)
    inputs, outputs = reconstruct(model, x, batch_size=4)
    assert torch.equal(inputs, x) and torch.equal(outputs, x) and not outputs.requires_grad
    assert model.training
    model.eval()
    reconstruct(model, x)
    assert not model.training


def test_denoising_step_trains_the_conv_autoencoder():
    denoising_step = taught("04", "denoising_step")
    torch.manual_seed(0)
    model = DenoisingConvAutoencoder()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    clean = torch.zeros(16, 1, 28, 28)
    clean[:, :, 8:20, 8:20] = 1.0  # one bright square: learnable in a few steps
    first = denoising_step(model, opt, clean, std=0.2, seed=0)["loss"]
    for seed in range(1, 40):
        last = denoising_step(model, opt, clean, std=0.2, seed=seed)["loss"]
    assert last < 0.5 * first


def test_mean_std_threshold():
    mean_std_threshold = taught("04", "mean_std_threshold")
    # mean 2.5, population std sqrt(1.25), as np.std (and the tutorial) computes it
    assert mean_std_threshold(np.array([1.0, 2.0, 3.0, 4.0])) == pytest.approx(2.5 + 1.25 ** 0.5)
    assert mean_std_threshold(np.array([1.0, 3.0]), k=2.0) == pytest.approx(4.0)


def test_anomaly_report_hand_counts():
    anomaly_report = taught("04", "anomaly_report")
    losses = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.6])
    is_anomaly = np.array([0, 0, 0, 1, 0, 1, 1])
    r = anomaly_report(losses, is_anomaly, threshold=0.35)  # a loss equal to it counts as anomalous
    # Normal predicted for 0.1, 0.2, 0.3 (all truly normal) out of four normals.
    assert r["precision"] == 1.0 and r["recall"] == 0.75
    # Flagged 0.35, 0.4, 0.5, 0.6: three true anomalies, one normal.
    assert r["anomaly_precision"] == 0.75 and r["anomaly_recall"] == 1.0
    assert r["accuracy"] == pytest.approx(6 / 7)
