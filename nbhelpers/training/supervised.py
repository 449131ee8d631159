"""Classifier training and inference. Classifiers define ``features(x)`` and ``forward(x)`` (logits)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from nbhelpers.training.device import module_device
from nbhelpers.training.inference import eval_batches, evaluated, evaluating


def classifier_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor,
                    y: torch.Tensor) -> dict[str, float]:
    """One cross-entropy step; returns the loss and the batch accuracy."""
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"loss": loss.item(), "acc": (logits.argmax(1) == y).float().mean().item()}


def _apply(fn: Callable[[torch.Tensor], torch.Tensor], model: nn.Module, images: torch.Tensor | Dataset,
           batch_size: int, transform: Callable | None) -> torch.Tensor:
    device = module_device(model)
    outs = []
    with evaluating(model):
        for batch in eval_batches(images, batch_size):
            x = (batch if isinstance(images, torch.Tensor) else batch[0]).to(device)  # dataset: (image, label)
            outs.append(fn(transform(x) if transform is not None else x).cpu())
    return torch.cat(outs)


def predict(model: nn.Module, images: torch.Tensor | Dataset, *, batch_size: int = 512,
            transform: Callable | None = None) -> torch.Tensor:
    """Logits for every image (a few under ``NBH_MAX_EVAL_ITEMS``), in eval mode, without gradients."""
    return _apply(model, model, images, batch_size, transform)


def extract_features(model: nn.Module, images: torch.Tensor | Dataset, *, batch_size: int = 512,
                     transform: Callable | None = None) -> torch.Tensor:
    """Penultimate-layer features (``model.features``) for every image (a few under the cap)."""
    return _apply(model.features, model, images, batch_size, transform)


def classify(model: nn.Module, dataset: Dataset, *, batch_size: int = 512,
             transform: Callable | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted class, true label) for every image of a labelled dataset that :func:`predict` ran.

    The labels come back with the predictions so that the two stay paired when
    ``NBH_MAX_EVAL_ITEMS`` runs only a few of the images.
    """
    predicted = predict(model, dataset, batch_size=batch_size, transform=transform).argmax(1)
    if hasattr(dataset, "labels"):
        labels = evaluated(torch.as_tensor(dataset.labels))
    else:
        labels = torch.as_tensor([int(dataset[i][1]) for i in evaluated(range(len(dataset)))])
    return predicted, labels


def evaluate_accuracy(model: nn.Module, dataset: Dataset, *, batch_size: int = 512,
                      transform: Callable | None = None) -> float:
    """Top-1 accuracy of ``model`` on a labelled dataset."""
    predicted, labels = classify(model, dataset, batch_size=batch_size, transform=transform)
    return (predicted == labels).float().mean().item()
