"""``fit``: the loop around a training step: epochs, progress, history, evaluation and checkpoints.

The *step* (one GAN update, one VAE update, ...) is the lesson and lives in the family modules
(``training/gan.py``, ``training/vae.py``, ...). ``fit`` does the bookkeeping around it so that
every notebook trains the same way and an interrupted run resumes exactly where it stopped:
the shuffling order, model, optimiser, scheduler and RNG states all come back.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau
from torch.utils.data import DataLoader, Dataset, Subset, default_collate
from tqdm import tqdm as text_tqdm
from tqdm.auto import tqdm as auto_tqdm

from nbhelpers import settings
from nbhelpers.fileio import remove_partial_files
from nbhelpers.training.checkpoint import (
    check_run,
    config_fingerprint,
    load_or_set_aside,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from nbhelpers.training.device import autocast, loader_options


class History:
    """Losses per step and evaluation metrics per epoch (or per ``eval_every`` steps)."""

    def __init__(self) -> None:
        self.step_rows: list[dict[str, float]] = []
        self.epoch_rows: list[dict[str, float]] = []

    @property
    def steps(self) -> pd.DataFrame:
        """One row per training step."""
        return pd.DataFrame(self.step_rows)

    @property
    def epochs(self) -> pd.DataFrame:
        """One row per evaluation."""
        return pd.DataFrame(self.epoch_rows)

    def state_dict(self) -> dict[str, Any]:
        return {"step_rows": self.step_rows, "epoch_rows": self.epoch_rows}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_rows, self.epoch_rows = list(state["step_rows"]), list(state["epoch_rows"])


class Snapshots:
    """Images saved during training (e.g. from a fixed noise batch); checkpointed with the run."""

    def __init__(self) -> None:
        self.items: list[tuple[int, torch.Tensor]] = []

    def add(self, step: int, images: torch.Tensor) -> None:
        self.items.append((step, images.detach().float().cpu().clone()))  # never alias live weights

    def state_dict(self) -> dict[str, Any]:
        return {"steps": [s for s, _ in self.items], "images": [x for _, x in self.items]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.items = list(zip(state["steps"], state["images"], strict=True))


class EarlyStopping:
    """Stop when ``metric`` has not improved for ``patience`` evaluations; keep the best weights."""

    def __init__(self, metric: str, patience: int, mode: str = "min", min_delta: float = 0.0,
                 restore_best: bool = True) -> None:
        self.metric, self.patience, self.mode, self.min_delta = metric, patience, mode, min_delta
        self.restore_best = restore_best
        self.best: float | None = None
        self.bad_evals = 0
        self.best_weights: dict[str, dict[str, torch.Tensor]] = {}

    def update(self, value: float, modules: dict[str, nn.Module]) -> bool:
        """Record one evaluation; return True when training should stop."""
        better = self.best is None or (
            value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta
        )
        if better:
            self.best, self.bad_evals = value, 0
            self.best_weights = {k: copy.deepcopy(m.state_dict()) for k, m in modules.items()}
        else:
            self.bad_evals += 1
        return self.bad_evals >= self.patience

    def restore(self, modules: dict[str, nn.Module]) -> None:
        """Load the best weights seen back into the modules."""
        if self.restore_best and self.best_weights:
            for k, m in modules.items():
                m.load_state_dict(self.best_weights[k])

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad_evals": self.bad_evals, "best_weights": self.best_weights}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.bad_evals = state["best"], state["bad_evals"]
        self.best_weights = state["best_weights"]


def progress_bar(total: int, desc: str, initial: int = 0):
    """A tqdm bar: widgets in Jupyter, none in headless runs (``NBH_PROGRESS=text`` or ``off``).

    Headless runs print one summary line per epoch instead, which keeps committed outputs small.
    """
    mode = settings.current().progress
    if mode == "auto":
        return auto_tqdm(total=total, initial=initial, desc=desc, leave=False)
    return text_tqdm(total=total, initial=initial, desc=desc, disable=True)


def _epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffling order of one epoch, a pure function of (seed, epoch), so a resume can replay it."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


def _batch_indices(datasets: tuple[Dataset, ...], order: torch.Tensor, start: int, batch_size: int,
                   extra_rng: torch.Generator) -> Iterator[tuple[list[int], ...]]:
    """Item indices of each batch from batch ``start``: the first dataset's in ``order``, the others drawn."""
    for b in range(start, len(order) // batch_size):
        first = order[b * batch_size:(b + 1) * batch_size].tolist()
        yield (first, *[torch.randint(len(ds), (batch_size,), generator=extra_rng).tolist() for ds in datasets[1:]])


class _Collated(Dataset):
    """Maps a key of :func:`_batch_indices` to its batch: one collated batch per dataset."""

    def __init__(self, datasets: tuple[Dataset, ...]) -> None:
        self.datasets = datasets

    def __getitem__(self, key: tuple[list[int], ...]) -> Any:
        parts = tuple(default_collate([ds[i] for i in idx]) for ds, idx in zip(self.datasets, key, strict=True))
        return parts[0] if len(parts) == 1 else parts


def _batches(datasets: tuple[Dataset, ...], order: torch.Tensor, start: int, batch_size: int,
             extra_rng: torch.Generator, device: torch.device) -> Iterable[Any]:
    """Batches of the first dataset in ``order`` from batch ``start``; the others drawn at random.

    Where :func:`loader_options` asks for workers (CUDA), a ``DataLoader`` collates the batches in
    worker processes into pinned memory; the indices are still drawn here. It draws a few batches
    ahead, so a checkpoint taken mid-epoch there holds a slightly later ``extra_rng`` state.
    """
    keys = _batch_indices(datasets, order, start, batch_size, extra_rng)
    collated, options = _Collated(datasets), loader_options(device)
    if not options["num_workers"]:
        return (collated[key] for key in keys)
    return DataLoader(collated, batch_size=None, sampler=keys, **options)


def _describe_data(ds: Dataset) -> dict[str, Any]:
    """Which data ``ds`` holds, for the run's fingerprint: its source (also under a ``Subset``) and size."""
    inner = ds
    while isinstance(inner, Subset) and not hasattr(inner, "source"):
        inner = inner.dataset
    src = getattr(inner, "source", None)
    where = {"dataset": src.dataset, "kind": src.kind, "location": src.location} if src else {}
    return {**where, "n": len(ds)}


def to_device(batch: Any, device: torch.device) -> Any:
    """Move a batch (tensors in nested tuples/lists/dicts) to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def fit(
    name: str,
    step: Callable[[Any], dict[str, float]],
    data: Dataset | tuple[Dataset, ...],
    *,
    batch_size: int,
    epochs: int,
    state: dict[str, Any],
    config: dict[str, Any],
    evaluate: Callable[[], dict[str, float]] | None = None,
    on_epoch_end: Callable[[int], None] | None = None,
    eval_every: int | None = None,
    early_stopping: EarlyStopping | None = None,
    plateau_metric: str | None = None,
    max_steps: int | None = None,
    checkpoint_seconds: float = 120.0,
    resume: bool = True,
) -> History:
    """Train with ``step`` over ``data`` and return the history; see CONTRIBUTING.md for the contract.

    ``state`` holds everything with a ``state_dict`` (modules, optimisers, schedulers, snapshots,
    warm-up counters); it is saved to ``<checkpoint_dir>/<name>.pt`` at every epoch end, every
    ``checkpoint_seconds`` and at the end. With ``resume`` a saved run continues from there; a
    finished one returns at once. A checkpoint is refused when the seed, profile, data
    (source and size), batch size, epochs, ``max_steps``, ``config`` or a notebook knob read
    so far (see ``settings.Knobs``) differ; a damaged one is moved aside and the run trains afresh.

    ``NBH_MAX_STEPS`` stops every run after that many steps (a shape check). On CUDA, batches
    are collated in pinned worker processes and each step runs under bf16 autocast
    (``training.device``); on the CPU neither.
    """
    s = settings.current()
    datasets = data if isinstance(data, tuple) else (data,)
    steps_per_epoch = len(datasets[0]) // batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"{name}: {len(datasets[0])} examples are fewer than one batch of {batch_size}.")
    total = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    if s.max_steps is not None:  # NBH_MAX_STEPS: a shape check, not a lesson
        total = min(total, s.max_steps)
    modules = {k: v for k, v in state.items() if isinstance(v, nn.Module)}
    stateful = {k: v for k, v in state.items() if hasattr(v, "state_dict")}
    if early_stopping is not None:
        stateful["_early_stopping"] = early_stopping
    history = History()
    extra_rng = torch.Generator().manual_seed(s.seed + 1)
    path = s.checkpoint_dir / f"{name}.pt"
    # Everything that decides the result is part of the run by construction, not left to each
    # notebook's config: the seed, the profile, the data (a stand-in checkpoint must never resume
    # on real data) and the notebook's knobs read so far. fit's keys come last: config cannot mask them.
    run_config = {**config, "batch_size": batch_size, "epochs": epochs, "max_steps": max_steps,
                  "seed": s.seed, "profile": s.profile, "data_sources": [_describe_data(ds) for ds in datasets]}
    knobs = settings.knobs_read()
    if s.max_steps is not None:  # a capped run's checkpoint must never pass for a whole one
        run_config["step_cap"] = s.max_steps
    fingerprint = config_fingerprint(run_config)
    global_step, stopped = 0, False

    def save() -> None:
        save_checkpoint(path, {
            "config": fingerprint, "knobs": config_fingerprint(knobs),
            "step": global_step, "finished": global_step >= total or stopped,
            "state": {k: v.state_dict() for k, v in stateful.items()},
            "history": history.state_dict(), "rng": rng_state(),
            "extra_rng": extra_rng.get_state(),
        })

    remove_partial_files(path)  # what a save killed midway left: it can be as large as the checkpoint
    ckpt = load_or_set_aside(path) if resume and path.exists() else None
    if ckpt is not None:
        check_run(path, ckpt, run_config, knobs)
        for k, v in stateful.items():
            v.load_state_dict(ckpt["state"][k])
        history.load_state_dict(ckpt["history"])
        set_rng_state(ckpt["rng"])
        extra_rng.set_state(ckpt["extra_rng"])
        global_step, stopped = ckpt["step"], ckpt["finished"]
        print(f"{name}: resumed from {path} at step {global_step}/{total}"
              + (" (finished: nothing left to train)" if stopped else ""))

    def run_evaluation(epoch: int) -> dict[str, float]:
        last = history.epoch_rows[-1] if history.epoch_rows else {}
        if last.get("step") == global_step:  # already evaluated at this step (an eval_every point)
            return last
        metrics = evaluate() if evaluate is not None else {}
        lrs = {f"lr_{k}": v.param_groups[0]["lr"] for k, v in state.items()
               if isinstance(v, torch.optim.Optimizer)}
        history.epoch_rows.append({"step": global_step, "epoch": epoch + 1, **metrics, **lrs})
        return metrics

    last_save = time.monotonic()
    while global_step < total and not stopped:
        epoch, start = divmod(global_step, steps_per_epoch)
        for m in modules.values():
            m.train()
        order = _epoch_order(len(datasets[0]), s.seed, epoch)
        n_this_epoch = min(steps_per_epoch, total - epoch * steps_per_epoch)
        bar = progress_bar(n_this_epoch, f"{name} {epoch + 1}/{epochs}", initial=start)
        first_row = len(history.step_rows)
        for batch in _batches(datasets, order[: n_this_epoch * batch_size], start, batch_size, extra_rng,
                              s.device):
            with autocast(s.device):
                logs = step(to_device(batch, s.device))
            global_step += 1
            history.step_rows.append({"step": global_step, "epoch": epoch + 1, **logs})
            bar.update()
            if global_step % 20 == 0:
                bar.set_postfix({k: f"{v:.3g}" for k, v in logs.items()}, refresh=False)
            if eval_every and global_step % eval_every == 0 and global_step % steps_per_epoch:
                run_evaluation(epoch)
                for m in modules.values():
                    m.train()
            if time.monotonic() - last_save > checkpoint_seconds:
                save()
                last_save = time.monotonic()
        bar.close()
        epoch_done = global_step % steps_per_epoch == 0 or global_step >= total
        if epoch_done:
            metrics = run_evaluation(epoch)
            for v in state.values():
                if isinstance(v, ReduceLROnPlateau):
                    v.step(metrics[plateau_metric])
                elif isinstance(v, torch.optim.lr_scheduler.LRScheduler):
                    v.step()
            if early_stopping is not None and early_stopping.update(metrics[early_stopping.metric], modules):
                stopped = True
                print(f"{name}: early stop after epoch {epoch + 1}: {early_stopping.metric} has not "
                      f"improved for {early_stopping.patience} evaluations (best {early_stopping.best:.4g}).")
            if on_epoch_end is not None:
                on_epoch_end(epoch)
            print(_epoch_line(name, epoch, epochs, global_step, history, first_row))
        save()
        last_save = time.monotonic()
    if early_stopping is not None:
        early_stopping.restore(modules)
    return history


def _epoch_line(name: str, epoch: int, epochs: int, step: int, history: History, first_row: int) -> str:
    """``name epoch 3/10 (step 1200): loss_d 0.61, loss_g 1.2 | val_loss 0.03``."""
    rows = history.step_rows[first_row:]
    keys = [k for k in (rows[0] if rows else {}) if k not in ("step", "epoch")]
    train = ", ".join(f"{k} {sum(r[k] for r in rows) / len(rows):.4g}" for k in keys)
    last = history.epoch_rows[-1] if history.epoch_rows else {}
    val = ", ".join(f"{k} {v:.4g}" for k, v in last.items()
                    if k not in ("step", "epoch") and not k.startswith("lr_") and isinstance(v, float)
                    and math.isfinite(v))
    return f"{name} epoch {epoch + 1}/{epochs} (step {step}): {train}" + (f" | {val}" if val else "")
