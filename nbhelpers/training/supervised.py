"""Classifier training and inference. Classifiers define ``features(x)`` and ``forward(x)`` (logits)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from nbhelpers import settings


def classifier_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor,
                    y: torch.Tensor) -> dict[str, float]:
    """One cross-entropy step; returns the loss and the batch accuracy."""
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"loss": loss.item(), "acc": (logits.argmax(1) == y).float().mean().item()}


def _batches(images: torch.Tensor | Dataset, batch_size: int):
    """Image batches from a tensor or from a dataset of (image, label) pairs."""
    n = len(images)
    for i in range(0, n, batch_size):
        if isinstance(images, torch.Tensor):
            yield images[i:i + batch_size]
        else:
            yield torch.stack([images[j][0] for j in range(i, min(i + batch_size, n))])


@torch.no_grad()
def _apply(fn: Callable[[torch.Tensor], torch.Tensor], model: nn.Module, images: torch.Tensor | Dataset,
           batch_size: int, transform: Callable | None) -> torch.Tensor:
    device = settings.current().device
    was_training = model.training
    model.eval()
    outs = []
    for x in _batches(images, batch_size):
        x = x.to(device)
        outs.append(fn(transform(x) if transform is not None else x).cpu())
    model.train(was_training)
    return torch.cat(outs)


def predict(model: nn.Module, images: torch.Tensor | Dataset, *, batch_size: int = 512,
            transform: Callable | None = None) -> torch.Tensor:
    """Logits for every image, in eval mode and without gradients."""
    return _apply(model, model, images, batch_size, transform)


def extract_features(model: nn.Module, images: torch.Tensor | Dataset, *, batch_size: int = 512,
                     transform: Callable | None = None) -> torch.Tensor:
    """Penultimate-layer features (``model.features``) for every image."""
    return _apply(model.features, model, images, batch_size, transform)


def evaluate_accuracy(model: nn.Module, dataset: Dataset, *, batch_size: int = 512,
                      transform: Callable | None = None) -> float:
    """Top-1 accuracy of ``model`` on a labelled dataset."""
    logits = predict(model, dataset, batch_size=batch_size, transform=transform)
    if hasattr(dataset, "labels"):
        labels = torch.as_tensor(dataset.labels)
    else:
        labels = torch.as_tensor([int(dataset[i][1]) for i in range(len(dataset))])
    return (logits.argmax(1) == labels).float().mean().item()
