"""Autoencoder training and scoring: the reconstruction step, input noise, anomaly thresholds.

After the TensorFlow tutorial "Intro to Autoencoders": MSE for images, MAE for ECG beats, and
an anomaly threshold at the mean plus one standard deviation of the training losses. We add the
threshold that a ROC curve on a labelled validation set picks (Youden's J), for comparison.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from nbhelpers import metrics
from nbhelpers.training.device import module_device
from nbhelpers.training.inference import eval_batches

LossKind = Literal["mse", "mae"]


def per_sample_loss(x_hat: torch.Tensor, x: torch.Tensor, kind: LossKind = "mse") -> torch.Tensor:
    """Mean squared (``mse``) or absolute (``mae``) error per sample, shape (N,)."""
    if kind not in ("mse", "mae"):
        raise ValueError(f"loss kind must be 'mse' or 'mae', not {kind!r}")
    err = (x_hat - x).pow(2) if kind == "mse" else (x_hat - x).abs()
    return err.flatten(1).mean(1)


def add_gaussian_noise(x: torch.Tensor, factor: float,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """``x + factor * N(0, 1)``, clipped back to [0, 1] as the tutorial does.

    The noise is drawn where ``generator`` lives (CUDA refuses a CPU generator for a draw on the
    GPU), then moved to ``x``, so a seeded CPU generator gives the same noise on any device.
    """
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype,
                        device=generator.device if generator is not None else x.device).to(x.device)
    return (x + factor * noise).clamp_(0.0, 1.0)


def reconstruction_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, *,
                        target: torch.Tensor | None = None, loss: LossKind = "mse") -> dict[str, float]:
    """One Adam step on the reconstruction loss of ``model(x)`` against ``target`` (default ``x``).

    A denoising autoencoder passes the noisy image as ``x`` and the clean one as ``target``.
    """
    model.train()
    target = x if target is None else target
    value = per_sample_loss(model(x), target, loss).mean()
    opt.zero_grad(set_to_none=True)
    value.backward()
    opt.step()
    return {"loss": value.item()}


@torch.no_grad()
def reconstruct(model: nn.Module, data: torch.Tensor | Dataset, *, batch_size: int = 512,
                noise: float = 0.0, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run ``model`` over ``data`` in eval mode; return (clean inputs, model inputs, outputs) on the CPU.

    ``data`` is a tensor of inputs or a dataset whose items start with the input. With ``noise``
    > 0 the model sees :func:`add_gaussian_noise` copies, drawn from ``generator``. Under
    ``NBH_MAX_EVAL_ITEMS`` only a few items are run, and all three tensors hold those.
    """
    device = module_device(model)
    model.eval()
    clean, fed, out = [], [], []
    for batch in eval_batches(data, batch_size):
        x = batch if isinstance(data, torch.Tensor) else batch[0]
        x_in = add_gaussian_noise(x, noise, generator) if noise > 0 else x
        clean.append(x)
        fed.append(x_in)
        out.append(model(x_in.to(device)).cpu())
    return torch.cat(clean), torch.cat(fed), torch.cat(out)


def reconstruction_errors(model: nn.Module, data: torch.Tensor | Dataset, *,
                          loss: LossKind = "mse", batch_size: int = 512) -> np.ndarray:
    """Per-sample reconstruction loss of ``model`` over ``data``, as a NumPy array (N,)."""
    x, _, x_hat = reconstruct(model, data, batch_size=batch_size)
    return per_sample_loss(x_hat, x, loss).numpy()


def mean_std_threshold(train_losses: np.ndarray, k: float = 1.0) -> float:
    """The tutorial's anomaly threshold: mean + k standard deviations of the training losses."""
    losses = np.asarray(train_losses, dtype=np.float64)
    return float(losses.mean() + k * losses.std())


def roc_threshold(val_losses: np.ndarray, val_is_anomaly: np.ndarray) -> float:
    """The loss cut that maximises Youden's J (TPR - FPR) on a labelled validation set."""
    labels = np.asarray(val_is_anomaly).astype(int)
    if labels.min() == labels.max():
        raise ValueError("the validation set needs both normal and anomalous examples "
                         "to place a ROC threshold; use a larger or stratified split.")
    return float(metrics.choose_threshold(labels, np.asarray(val_losses), method="youden"))


def anomaly_report(losses: np.ndarray, is_anomaly: np.ndarray, threshold: float) -> dict[str, float]:
    """Scores of the rule "loss >= threshold means anomalous", counted both ways round.

    ``accuracy``, ``precision`` and ``recall`` take *normal* as the positive class, the TF
    tutorial's convention (its ``predict`` returns ``loss < threshold``), so they compare with its
    published figures; ``anomaly_precision`` and ``anomaly_recall`` take the anomaly as positive.
    ``auc_roc`` does not depend on the threshold.
    """
    losses = np.asarray(losses, dtype=np.float64)
    is_anomaly = np.asarray(is_anomaly).astype(int)
    # Negating scores and threshold turns "loss < t means normal" into binary_report's ">= t".
    normal = metrics.binary_report(1 - is_anomaly, -losses, np.nextafter(-threshold, np.inf))
    anomalous = metrics.binary_report(is_anomaly, losses, threshold)
    return {
        "accuracy": float(normal["accuracy"]),
        "precision": float(normal["precision"]),
        "recall": float(normal["recall"]),
        "anomaly_precision": float(anomalous["precision"]),
        "anomaly_recall": float(anomalous["recall"]),
        "auc_roc": float(metrics.roc(is_anomaly, losses)["auc"]),
    }

