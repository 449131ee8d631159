"""PixelDA training (Bousmalis et al., CVPR 2017): the step, its wrapper for ``fit``, the
classifier-only references, and the digit preparation they share.

The paper's objective (its equations 1-3), with source images x^s and labels y^s, target images
x^t (never their labels) and noise z ~ U(-1, 1):

    L_d(D, G) = E[log D(x^t)] + E[log(1 - D(G(x^s, z)))]
    L_t(G, T) = E[-y^s . log T(G(x^s, z)) - y^s . log T(x^s)]
    min_{G, T} max_D  alpha * L_d + beta * L_t

It is optimised, as in the paper, by alternating two updates:

1. **D and T**, with G fixed: D learns to tell real MNIST-M from G's translations (binary
   cross-entropy with logits), and T learns the digit on both the source images and their
   translations, so it sees MNIST-M-like images with MNIST's labels.
2. **G**, with D and T fixed: the non-saturating adversarial loss -log D(G(x^s, z)) (as in the
   authors' code) plus beta times T's loss on the translations, which keeps the digit readable.

alpha = beta = 1 are the weights of the authors' released configuration. Gradients are clipped to
norm 5, also as there.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nbhelpers import settings
from nbhelpers.data.core import TensorImageDataset
from nbhelpers.models.pixelda import TaskClassifier, sample_z
from nbhelpers.training.loop import History, fit
from nbhelpers.training.supervised import classifier_step


def to_tanh_rgb(x: torch.Tensor) -> torch.Tensor:
    """Float images in [0, 1], ``(..., 1 or 3, H, W)`` -> three channels in [-1, 1]."""
    return x.expand(*x.shape[:-3], 3, *x.shape[-2:]) * 2 - 1


def prepare_digits(ds: TensorImageDataset, size: int = 32, chunk: int = 4096) -> TensorImageDataset:
    """Resize a digit dataset to ``size`` x ``size`` once, kept as uint8; items come out RGB in [-1, 1].

    Resizing the whole tensor once (bilinear, in chunks to bound memory) instead of per item keeps
    the per-step data cost negligible; the grey-to-RGB repeat is a free ``expand`` per item.
    """
    images = ds.images
    if images.dtype != torch.uint8:
        images = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    if images.shape[-1] != size or images.shape[-2] != size:
        images = torch.cat([
            F.interpolate(part.float(), size=(size, size), mode="bilinear", align_corners=False)
            .round_().clamp_(0, 255).to(torch.uint8)
            for part in images.split(chunk)
        ])
    return dataclasses.replace(ds, images=images, transform=to_tanh_rgb)


def _clipped_step(opt: torch.optim.Optimizer, loss: torch.Tensor, clip_norm: float | None) -> None:
    """Backward into ``opt``'s parameters only, clip their gradient norm to ``clip_norm``, step."""
    params = [p for group in opt.param_groups for p in group["params"]]
    opt.zero_grad(set_to_none=True)
    # ``inputs`` spares the weight gradients of the networks held fixed in this update.
    loss.backward(inputs=params)
    if clip_norm is not None:
        nn.utils.clip_grad_norm_(params, clip_norm)
    opt.step()


def pixelda_step(G: nn.Module, D: nn.Module, T: nn.Module, opt_dt: torch.optim.Optimizer,
                 opt_g: torch.optim.Optimizer, source: torch.Tensor, source_labels: torch.Tensor,
                 target: torch.Tensor, *, latent_dim: int = 10, alpha: float = 1.0, beta: float = 1.0,
                 clip_norm: float | None = 5.0) -> dict[str, float]:
    """One PixelDA update: D and T with G fixed (``opt_dt``), then G with D and T fixed (``opt_g``).

    ``source`` and ``target`` are image batches in [-1, 1]; the target's labels are not an
    argument, so they cannot leak into training. Returns batch means: ``loss_d`` (D's BCE),
    ``loss_g`` (G's adversarial term), ``loss_task`` (T's cross-entropy on source plus adapted),
    ``d_real``/``d_fake`` (mean D probabilities) and ``acc_adapted`` (T on the translations).
    """
    z = sample_z(source.shape[0], latent_dim, device=source.device)
    # One generator pass serves both updates: G's weights only change in the second one.
    adapted = G(source, z)

    # 1. D and T, G fixed.
    logits_real, logits_fake = D(target), D(adapted.detach())
    loss_d = (F.binary_cross_entropy_with_logits(logits_real, torch.ones_like(logits_real))
              + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake)))
    class_adapted = T(adapted.detach())
    loss_task = F.cross_entropy(T(source), source_labels) + F.cross_entropy(class_adapted, source_labels)
    _clipped_step(opt_dt, alpha * loss_d + beta * loss_task, clip_norm)

    # 2. G, D and T fixed.
    logits_gen = D(adapted)
    loss_g = F.binary_cross_entropy_with_logits(logits_gen, torch.ones_like(logits_gen))
    _clipped_step(opt_g, alpha * loss_g + beta * F.cross_entropy(T(adapted), source_labels), clip_norm)

    return {
        "loss_d": loss_d.item(),
        "loss_g": loss_g.item(),
        "loss_task": loss_task.item(),
        "d_real": torch.sigmoid(logits_real).mean().item(),
        "d_fake": torch.sigmoid(logits_fake).mean().item(),
        "acc_adapted": (class_adapted.argmax(1) == source_labels).float().mean().item(),
    }


class PixelDAStep:
    """``fit``'s step for PixelDA: one :func:`pixelda_step` per (source, target) batch.

    It drops the target labels unread, counts the steps, and decays both learning rates by
    ``lr_decay`` every ``lr_decay_steps`` (the paper: 0.95 every 20,000 steps), recomputed from the
    count so that a resume needs no scheduler. Put it in ``fit``'s state to checkpoint the count.
    """

    def __init__(self, G: nn.Module, D: nn.Module, T: nn.Module, opt_dt: torch.optim.Optimizer,
                 opt_g: torch.optim.Optimizer, *, latent_dim: int = 10, alpha: float = 1.0,
                 beta: float = 1.0, clip_norm: float | None = 5.0, lr_decay: float = 0.95,
                 lr_decay_steps: int = 20_000):
        self.nets, self.opts = (G, D, T), (opt_dt, opt_g)
        self.kwargs = {"latent_dim": latent_dim, "alpha": alpha, "beta": beta, "clip_norm": clip_norm}
        self.lr_decay, self.lr_decay_steps = lr_decay, lr_decay_steps
        self.base_lrs = [[group["lr"] for group in opt.param_groups] for opt in self.opts]
        self.steps = 0

    def __call__(self, batch: Any) -> dict[str, float]:
        (source, labels), (target, _target_labels) = batch  # the target labels stop here
        factor = self.lr_decay ** (self.steps // self.lr_decay_steps)
        for opt, lrs in zip(self.opts, self.base_lrs, strict=True):
            for group, lr in zip(opt.param_groups, lrs, strict=True):
                group["lr"] = lr * factor
        logs = pixelda_step(*self.nets, *self.opts, source, labels, target, **self.kwargs)
        self.steps += 1
        return logs

    def state_dict(self) -> dict[str, int]:
        return {"steps": self.steps}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.steps = int(state["steps"])


def train_task_classifier(name: str, dataset: TensorImageDataset, *, epochs: int, batch_size: int,
                          lr: float = 1e-3) -> tuple[TaskClassifier, History]:
    """T alone, trained on one labelled domain (the source-only baseline and the target-only bound).

    Adam with the paper's settings (lr 1e-3, beta1 0.5), checkpointed and resumable under ``name``.
    """
    image_size = dataset.images.shape[-1]
    T = TaskClassifier(image_size=image_size).to(settings.current().device)
    opt = torch.optim.Adam(T.parameters(), lr=lr, betas=(0.5, 0.999))
    history = fit(name, lambda batch: classifier_step(T, opt, *batch), dataset,
                  batch_size=batch_size, epochs=epochs, state={"T": T, "opt": opt},
                  config={"lr": lr, "image_size": image_size, "n": len(dataset)})
    return T, history


def epochs_for(steps: int, n: int, batch_size: int) -> int:
    """How many epochs of ``n`` examples hold ``steps`` batches (for ``fit``'s ``max_steps``)."""
    return math.ceil(steps / max(n // batch_size, 1))


@torch.no_grad()
def translate(G: nn.Module, source: torch.Tensor, z: torch.Tensor | None = None,
              batch_size: int = 512) -> torch.Tensor:
    """G's translations of ``source`` (in eval mode, without gradients); fresh z unless given."""
    was_training = G.training
    G.eval()
    device = next(G.parameters()).device
    z = sample_z(len(source), G.latent_dim) if z is None else z
    out = torch.cat([G(x.to(device), zz.to(device)).cpu()
                     for x, zz in zip(source.split(batch_size), z.split(batch_size), strict=True)])
    G.train(was_training)
    return out
