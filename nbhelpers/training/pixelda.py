"""PixelDA training (Bousmalis et al., CVPR 2017): the step, its wrapper for ``fit``, the
classifier-only references and the self-training extension.

The paper's objective (its equations 1-3), with source images x^s and labels y^s, target images
x^t (never their labels) and noise z ~ U(-1, 1):

    L_d(D, G) = E[log D(x^t)] + E[log(1 - D(G(x^s, z)))]
    L_t(G, T) = E[-y^s . log T(G(x^s, z)) - y^s . log T(x^s)]
    min_{G, T} max_D  alpha * L_d + beta * L_t

It is optimised, as in the paper, by alternating two updates: D and T with G fixed, then G with D
and T fixed (with the non-saturating adversarial loss -log D(G(x^s, z)), as in the authors' code).
The three losses are exercises 1.1-1.3 of notebook 01 and the pseudo-labels of the self-training
extension exercise 1.4: this module does the bookkeeping around them (noise, the two clipped
updates, learning-rate decay, logs) and takes them as arguments. alpha = beta = 1 are the weights
of the authors' released configuration. Gradients are clipped to norm 5, also as there.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nbhelpers import settings
from nbhelpers.data.core import TensorImageDataset
from nbhelpers.data.mnistm import to_tanh_rgb
from nbhelpers.latent import sample_noise
from nbhelpers.models.pixelda import TaskClassifier
from nbhelpers.training.average import WeightAverage, warmed_up_decay
from nbhelpers.training.device import module_device
from nbhelpers.training.inference import eval_batches, evaluated, evaluating
from nbhelpers.training.loop import History, fit
from nbhelpers.training.supervised import classifier_step, predict

Tensor = torch.Tensor
# (D, target, adapted) -> (D's loss, D's logits on target, D's logits on adapted): exercise 1.1
DiscriminatorLoss = Callable[[nn.Module, Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]
# (T, source, source_labels, adapted) -> (T's loss, T's logits on adapted): exercise 1.2
TaskLoss = Callable[[nn.Module, Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]
# (D, T, adapted, source_labels, alpha=, beta=) -> (G's loss, its adversarial term): exercise 1.3
GeneratorLoss = Callable[..., tuple[Tensor, Tensor]]
# logits (N, K), threshold -> (labels, confidence, keep), each (N,): exercise 1.4
PseudoLabels = Callable[[Tensor, float], tuple[Tensor, Tensor, Tensor]]


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
                 opt_g: torch.optim.Optimizer, source: Tensor, source_labels: Tensor, target: Tensor, *,
                 discriminator_loss: DiscriminatorLoss, task_loss: TaskLoss,
                 generator_loss: GeneratorLoss, latent_dim: int = 10, alpha: float = 1.0,
                 beta: float = 1.0, clip_norm: float | None = 5.0) -> dict[str, float]:
    """One PixelDA update: D and T with G fixed (``opt_dt``), then G with D and T fixed (``opt_g``).

    ``source`` and ``target`` are image batches in [-1, 1]; the target's labels are not an
    argument, so they cannot leak into training. The three losses are the notebook's. Returns
    batch means: ``loss_d`` (D's BCE), ``loss_g`` (G's adversarial term), ``loss_task`` (T's
    cross-entropy on source plus adapted), ``d_real``/``d_fake`` (mean D probabilities) and
    ``acc_adapted`` (T on the translations).
    """
    z = sample_noise(source.shape[0], latent_dim, uniform=True, device=source.device)
    # One generator pass serves both updates: G's weights only change in the second one.
    adapted = G(source, z)

    # 1. D and T, G fixed.
    loss_d, logits_real, logits_fake = discriminator_loss(D, target, adapted)
    loss_task, class_adapted = task_loss(T, source, source_labels, adapted)
    _clipped_step(opt_dt, alpha * loss_d + beta * loss_task, clip_norm)

    # 2. G, D and T fixed.
    loss, loss_g = generator_loss(D, T, adapted, source_labels, alpha=alpha, beta=beta)
    _clipped_step(opt_g, loss, clip_norm)

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

    ``discriminator_loss``, ``task_loss`` and ``generator_loss`` are the notebook's (exercises
    1.1-1.3), passed on to :func:`pixelda_step`. It drops the target labels unread, counts the steps, and decays both learning rates by
    ``lr_decay`` every ``lr_decay_steps`` (the paper: 0.95 every 20,000 steps), recomputed from the
    count so that a resume needs no scheduler. With ``channels_last`` the batches take that memory
    layout, to match networks converted with ``.to(memory_format=torch.channels_last)``.
    ``seconds`` is the wall time of training so far, evaluations between steps included and summed
    over resumes, for accuracy-against-time curves. Put it in ``fit``'s state to checkpoint both.
    With ``T_average`` (a copy of ``T``), that module follows an exponential moving average of
    ``T``'s weights after every step (:class:`~nbhelpers.training.average.WeightAverage`, decay
    ``average_decay`` reached through :func:`~nbhelpers.training.average.warmed_up_decay`'s ramp);
    put it in ``fit``'s state too.
    """

    def __init__(self, G: nn.Module, D: nn.Module, T: nn.Module, opt_dt: torch.optim.Optimizer,
                 opt_g: torch.optim.Optimizer, *, discriminator_loss: DiscriminatorLoss,
                 task_loss: TaskLoss, generator_loss: GeneratorLoss, latent_dim: int = 10,
                 alpha: float = 1.0, beta: float = 1.0, clip_norm: float | None = 5.0,
                 lr_decay: float = 0.95, lr_decay_steps: int = 20_000, channels_last: bool = False,
                 T_average: nn.Module | None = None, average_decay: float = 0.998):
        self.nets, self.opts = (G, D, T), (opt_dt, opt_g)
        self.average = None if T_average is None else WeightAverage(T_average, T)
        self.average_decay = average_decay
        # Batches in the layout of channels_last networks, so no convolution converts them again.
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.kwargs = {"discriminator_loss": discriminator_loss, "task_loss": task_loss,
                       "generator_loss": generator_loss, "latent_dim": latent_dim, "alpha": alpha,
                       "beta": beta, "clip_norm": clip_norm}
        self.lr_decay, self.lr_decay_steps = lr_decay, lr_decay_steps
        self.base_lrs = [[group["lr"] for group in opt.param_groups] for opt in self.opts]
        self.steps, self.seconds = 0, 0.0
        self._last: float | None = None  # this process's previous call; None after a resume

    def __call__(self, batch: Any) -> dict[str, float]:
        (source, labels), (target, _target_labels) = batch  # the target labels stop here
        now = time.perf_counter()
        if self._last is not None:
            self.seconds += now - self._last
        self._last = now
        factor = self.lr_decay ** (self.steps // self.lr_decay_steps)
        for opt, lrs in zip(self.opts, self.base_lrs, strict=True):
            for group, lr in zip(opt.param_groups, lrs, strict=True):
                group["lr"] = lr * factor
        source, target = (x.contiguous(memory_format=self.memory_format) for x in (source, target))
        logs = pixelda_step(*self.nets, *self.opts, source, labels, target, **self.kwargs)
        if self.average is not None:
            self.average.update(warmed_up_decay(self.average_decay, self.steps))
        self.steps += 1
        return logs

    def state_dict(self) -> dict[str, float]:
        return {"steps": self.steps, "seconds": self.seconds}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.steps, self.seconds, self._last = int(state["steps"]), float(state.get("seconds", 0.0)), None


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


def self_train(name: str, T: nn.Module, G: nn.Module, source: TensorImageDataset,
               target: TensorImageDataset, *, pseudo_labels: PseudoLabels, rounds: int,
               steps_per_round: int, threshold: float, batch_size: int, lr: float,
               latent_dim: int = 10, teacher: nn.Module | None = None, teacher_decay: float = 0.995,
               max_shift: int = 0, n_translations: int | None = None,
               evaluate: Callable[[], dict[str, float]] | None = None) -> list[dict[str, float]]:
    """An extension beyond PixelDA: self-training of ``T`` on its confident target predictions.

    Pseudo-labelling (Lee, "Pseudo-Label", ICML 2013 workshop on representation learning) as
    used for domain adaptation: each round labels every target training image with a prediction
    and keeps those whose softmax confidence is at least ``threshold`` (the notebook's
    ``pseudo_labels``, exercise 1.4), then trains ``T`` for ``steps_per_round`` steps on them plus
    ``G``'s translations of source images (with the source labels, as in PixelDA, so the classes
    stay anchored). No target label is read: the dataset's own labels are replaced before
    training. ``G`` is fixed (eval mode). Three refinements, each optional:

    - ``teacher``: a mean teacher (Tarvainen & Valpola, NeurIPS 2017). Its weights follow an
      exponential moving average of ``T``'s, ``teacher <- d * teacher + (1 - d) * T`` with
      ``d = teacher_decay`` after every step, and it makes the pseudo-labels. An average over a
      few hundred steps is steadier than ``T``'s last step, so one round's noisy update teaches the
      next round fewer of its own mistakes. Pass a copy of ``T``; evaluate the teacher.
    - ``max_shift``: every training image (translation or target) moves by its own random offset
      of up to that many pixels (:func:`random_shift`), so ``T`` cannot memorise where a pseudo-label's
      pixels sit.
    - ``n_translations``: ``G`` is fixed, so it translates that many source images once (seeded,
      one ``z`` each) and the rounds draw from them, instead of running ``G`` at every step, where
      it costs about twice ``T``'s whole update. Without it, each step translates a fresh batch.

    Each round is its own checkpointed ``fit`` run, so an interrupted run resumes. Returns one row
    per round: the share of target images kept, their mean confidence, ``minutes`` (wall time
    since the call began, translations and labelling included; a round resumed from a finished
    checkpoint counts only its loading) and ``evaluate()``'s values. A round that keeps no image
    ends the rounds, with a message.
    """
    device, began = module_device(G), time.perf_counter()
    opt = torch.optim.Adam(T.parameters(), lr=lr, betas=(0.5, 0.999))
    labeller = T if teacher is None else teacher
    anchors = source if n_translations is None else translations(G, source, n_translations, latent_dim)
    average = None if teacher is None else WeightAverage(teacher, T)

    def step(batch: Any) -> dict[str, float]:
        (xs, ys), (xt, yt) = batch  # yt: the pseudo-labels
        if n_translations is None:
            with evaluating(G):
                xs = G(xs, sample_noise(len(xs), latent_dim, uniform=True, device=device))
        if max_shift:
            xs, xt = random_shift(xs, max_shift), random_shift(xt, max_shift)
        loss = F.cross_entropy(T(xs), ys) + F.cross_entropy(T(xt), yt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if average is not None:
            average.update(teacher_decay)
        return {"loss": loss.item()}

    state = {"T": T, "opt": opt, **({} if teacher is None else {"teacher": teacher})}
    rows = []
    for r in range(rounds):
        guess, confidence, keep = pseudo_labels(predict(labeller, target), threshold)
        scored = evaluated(torch.arange(len(target)))  # all of them, unless NBH_MAX_EVAL_ITEMS caps it
        stop = not keep.any()  # e.g. a barely trained T: nothing to learn from, so T stays as it is
        if stop:
            print(f"self-training round {r + 1}: no target image reaches confidence {threshold}; "
                  "stopping here. Fix: train PixelDA longer or lower the threshold.")
        else:
            pseudo = dataclasses.replace(target, images=target.images[scored[keep]], labels=guess[keep])
            fit(f"{name}_round{r + 1}", step, (anchors, pseudo), batch_size=batch_size,
                epochs=epochs_for(steps_per_round, len(anchors), batch_size), max_steps=steps_per_round,
                state=state,
                config={"round": r + 1, "threshold": threshold, "lr": lr, "kept": int(keep.sum()),
                        "teacher_decay": None if teacher is None else teacher_decay,
                        "max_shift": max_shift, "n_translations": n_translations})
        # confidence[keep].mean() of no image is nan: the row says so.
        rows.append({"round": r + 1, "kept": keep.float().mean().item(),
                     "confidence": confidence[keep].mean().item(),
                     "minutes": (time.perf_counter() - began) / 60, **(evaluate() if evaluate else {})})
        if stop:
            break
    return rows


def translations(G: nn.Module, source: TensorImageDataset, n: int, latent_dim: int = 10) -> TensorImageDataset:
    """``G``'s translations of ``n`` source images drawn at random, with their labels, stored as uint8.

    The images and their ``z`` come from a generator seeded with the run's seed, so a resumed run
    makes the same set. Stored as 8-bit colour like a real MNIST-M image (a rounding error of at
    most 1/255), read back in [-1, 1].
    """
    g = torch.Generator().manual_seed(settings.current().seed)
    idx = evaluated(torch.randperm(len(source), generator=g)[:n])
    images = torch.stack([source[int(i)][0] for i in idx])
    adapted = translate(G, images, sample_noise(len(idx), latent_dim, uniform=True, generator=g))
    pixels = ((adapted + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return dataclasses.replace(source, images=pixels, labels=source.labels[idx], transform=to_tanh_rgb,
                               extras={**source.extras, "translated_by": "G"})


def random_shift(x: Tensor, max_shift: int) -> Tensor:
    """Each image of ``x`` (N, C, H, W) moved by its own random offset in [-max_shift, max_shift]
    pixels along each axis, the border pixels repeated into the gap (torch's RNG, so a seeded run
    repeats)."""
    n, c, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, mode="replicate")
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, n, 1, 1, 1), device=x.device)
    rows = dy + torch.arange(h, device=x.device).view(1, 1, h, 1)
    cols = dx + torch.arange(w, device=x.device).view(1, 1, 1, w)
    return padded[torch.arange(n, device=x.device).view(n, 1, 1, 1),
                  torch.arange(c, device=x.device).view(1, c, 1, 1), rows, cols]


def epochs_for(steps: int, n: int, batch_size: int) -> int:
    """How many epochs of ``n`` examples hold ``steps`` batches (for ``fit``'s ``max_steps``)."""
    return math.ceil(steps / max(n // batch_size, 1))


def translate(G: nn.Module, source: Tensor, z: Tensor | None = None, batch_size: int = 512) -> Tensor:
    """G's translations of the evaluated ``source`` images (eval mode, no gradients); fresh z unless given."""
    device = module_device(G)
    z = sample_noise(len(source), G.latent_dim, uniform=True) if z is None else z
    with evaluating(G):
        return torch.cat([G(x.to(device), zz.to(device)).cpu() for x, zz in
                          zip(eval_batches(source, batch_size), eval_batches(z, batch_size), strict=True)])
