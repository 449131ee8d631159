"""Autoencoder training and scoring: the reconstruction step, reconstructions, per-sample errors.

After the TensorFlow tutorial "Intro to Autoencoders": MSE for images, MAE for ECG beats. The
lessons of notebook 04 are written there, not here: the denoising step (exercise 4.1), the
tutorial's anomaly threshold (4.2) and the anomaly report (4.3).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from nbhelpers.training.device import module_device
from nbhelpers.training.inference import eval_batches, evaluating

LossKind = Literal["mse", "mae"]


def per_sample_loss(x_hat: torch.Tensor, x: torch.Tensor, kind: LossKind = "mse") -> torch.Tensor:
    """Mean squared (``mse``) or absolute (``mae``) error per sample, shape (N,)."""
    if kind not in ("mse", "mae"):
        raise ValueError(f"loss kind must be 'mse' or 'mae', not {kind!r}")
    err = (x_hat - x).pow(2) if kind == "mse" else (x_hat - x).abs()
    return err.flatten(1).mean(1)


def reconstruction_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, *,
                        loss: LossKind = "mse") -> dict[str, float]:
    """One optimiser step on the reconstruction loss of ``model(x)`` against ``x`` itself."""
    value = per_sample_loss(model(x), x, loss).mean()
    opt.zero_grad(set_to_none=True)
    value.backward()
    opt.step()
    return {"loss": value.item()}


def reconstruct(model: nn.Module, data: torch.Tensor | Dataset, *, batch_size: int = 512
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``model`` over ``data`` in eval mode; return (inputs, outputs) on the CPU.

    ``data`` is a tensor of inputs or a dataset whose items start with the input. Under
    ``NBH_MAX_EVAL_ITEMS`` only a few items are run (those ``inference.evaluated`` picks), and
    both tensors hold those.
    """
    device = module_device(model)
    fed, out = [], []
    with evaluating(model):
        for batch in eval_batches(data, batch_size):
            x = batch if isinstance(data, torch.Tensor) else batch[0]
            fed.append(x)
            out.append(model(x.to(device)).cpu())
    return torch.cat(fed), torch.cat(out)


def reconstruction_errors(model: nn.Module, data: torch.Tensor | Dataset, *,
                          loss: LossKind = "mse", batch_size: int = 512) -> np.ndarray:
    """Per-sample reconstruction loss of ``model`` over ``data``, as a NumPy array (N,)."""
    x, x_hat = reconstruct(model, data, batch_size=batch_size)
    return per_sample_loss(x_hat, x, loss).numpy()
