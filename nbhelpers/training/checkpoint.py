"""Checkpoints: written atomically, loaded with ``weights_only=True``, tied to the run's configuration."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nbhelpers.fileio import atomic_path


class CheckpointMismatch(RuntimeError):
    """A checkpoint exists for this run name but was written with another configuration."""


def config_fingerprint(config: dict[str, Any]) -> str:
    """A canonical text form of a configuration, so that two runs compare equal or not."""
    return json.dumps(config, sort_keys=True, default=str)


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` through a temporary file, so a crash never leaves half a file."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``: tensors and plain containers, never code."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: say which and what to do
        raise CheckpointMismatch(
            f"cannot read checkpoint {path} ({err}). Delete it to start the run afresh."
        ) from err


def check_config(path: Path, saved: str, config: dict[str, Any]) -> None:
    """Refuse to resume a run whose configuration differs from the one that wrote the checkpoint."""
    if saved == config_fingerprint(config):
        return
    old, new = json.loads(saved), json.loads(config_fingerprint(config))
    diff = {k: (old.get(k), new.get(k)) for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)}
    changes = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
    raise CheckpointMismatch(
        f"{path} was written by a run with another configuration ({changes}). "
        "Restore that configuration to resume it, or delete the file to start afresh."
    )


def rng_state() -> dict[str, Any]:
    """Every random state a CPU or CUDA run draws from, in a form ``weights_only`` can load."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
