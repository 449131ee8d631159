"""What a device gets: where a model's tensors live, data-loader workers and pinned memory, autocast.

Decided here, by small functions that look only at the device, so that the GPU path can be
unit-tested on a machine without one.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from typing import Any

import torch
from torch import nn

LOADER_WORKERS = 4  # enough to keep a GPU fed from in-memory datasets with light transforms


def module_device(module: nn.Module) -> torch.device:
    """The device of ``module``'s first parameter (or buffer); the CPU for a module without either.

    Inference helpers put their inputs here, so that they work wherever the caller put the model.
    """
    tensor = next(module.parameters(), None)
    if tensor is None:
        tensor = next(module.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def loader_options(device: torch.device) -> dict[str, Any]:
    """``DataLoader`` arguments for batches bound for ``device``.

    On CUDA, worker processes prepare the next batches while the GPU computes, and pinned
    (page-locked) host memory makes the copy to the GPU asynchronous. Workers only where they are
    forked: a spawned worker must unpickle the dataset, and a transform defined in a notebook
    cannot be (Windows and macOS spawn). Elsewhere batches are made in the main process: on the
    CPU, workers would compete with the training for the same cores.
    """
    if device.type != "cuda":
        return {"num_workers": 0, "pin_memory": False}
    forked = multiprocessing.get_context().get_start_method() == "fork"
    return {"num_workers": min(LOADER_WORKERS, os.cpu_count() or 1) if forked else 0, "pin_memory": True}


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bfloat16 on a CUDA GPU that supports it, else None: train in full precision.

    bf16 keeps float32's exponent range, so unlike float16 it needs no loss scaling. Never on
    the CPU: there it gains little on most processors, and it would change the numbers of the
    committed runs. Losses that need float32 say so themselves (``training.vae``).
    """
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to :func:`autocast_dtype` on ``device``, or a context that changes nothing."""
    dtype = autocast_dtype(device)
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
