"""Checkpoints: written atomically with a digest of their bytes, loaded with ``weights_only=True``,
tied to the run that wrote them.

A checkpoint file is one header line, ``nbhelpers checkpoint sha256:<64 hex digits>``, then the
bytes of ``torch.save``. The digest catches bytes damaged on the disk, which torch's reader loads
without a word; the run's description (seed, profile, data, knobs, ``config``) catches a run that
is not the one that wrote the file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import warnings
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from nbhelpers.fileio import atomic_path, write_error

HEADER = b"nbhelpers checkpoint sha256:"
HEADER_SIZE = len(HEADER) + 64 + 1  # the prefix, the hex digest, a newline
NOT_RECORDED = "(not recorded)"


class CheckpointMismatch(RuntimeError):
    """A checkpoint exists for this run name but cannot be resumed: another run, or an unreadable file."""


class CheckpointDamaged(CheckpointMismatch):
    """A checkpoint's bytes do not match the digest written with them."""


def config_fingerprint(config: dict[str, Any]) -> str:
    """A canonical text form of a configuration, so that two runs compare equal or not."""
    return json.dumps(config, sort_keys=True, default=str)


def _plain(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` as it reads back from a checkpoint (tuples become lists, devices strings)."""
    return json.loads(config_fingerprint(config))


def _afresh(path: Path) -> str:
    return f"To train afresh: python -m nbhelpers run --fresh, or delete {path}."


class _HashingWriter:
    """Hands torch.save's bytes on to a file and hashes them on the way, so no second read is needed."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f, self.sha = f, hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` and its digest through a temporary file, so a crash never leaves half a file.

    A failed write (a full disk, a read-only folder) removes the temporary file and raises a
    :class:`~nbhelpers.fileio.WriteError` that names ``path``; the previous checkpoint stays as it was.
    """
    path = Path(path)
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            f.write(bytes(HEADER_SIZE))  # a placeholder: the digest is known once the payload is out
            writer = _HashingWriter(f)
            torch.save(payload, writer)
            f.seek(0)
            f.write(HEADER + writer.sha.hexdigest().encode() + b"\n")
    except (OSError, RuntimeError) as err:
        previous = (f"The previous checkpoint {path} is intact" if path.exists()
                    else "No earlier checkpoint of this run exists")
        raise write_error(path, err, (
            f"{previous}, and the partial file was removed. Fix: free space on that disk, or set "
            "NBH_CHECKPOINT_DIR to a writable folder with room, then run again: training resumes "
            "from the last checkpoint."
        )) from err


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Check the digest, then load with ``weights_only=True``: tensors and plain containers, never code.

    Raises :class:`CheckpointDamaged` when the bytes do not match their digest, and
    :class:`CheckpointMismatch` for a file without one (an older nbhelpers wrote it, or it is no
    checkpoint) or one that torch cannot read.
    """
    path = Path(path)
    with open(path, "rb") as f:
        header, body = f.read(HEADER_SIZE), f.read()  # body stays one bytes object: BytesIO shares it
    if not header.startswith(HEADER) and not HEADER.startswith(header):  # a short file is damaged
        raise CheckpointMismatch(
            f"{path} has no digest header: an older nbhelpers wrote it (before checkpoints recorded "
            f"their seed, profile, data and a digest of their bytes) or it is not a checkpoint, so it "
            f"cannot be checked and is not resumed. {_afresh(path)}"
        )
    if header[len(HEADER):-1] != hashlib.sha256(body).hexdigest().encode():
        raise CheckpointDamaged(f"{path} is damaged: its bytes do not match the digest written with them.")
    try:
        return torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)
    except Exception as err:  # whole bytes that torch cannot read (another torch version?): say which
        raise CheckpointMismatch(f"cannot read checkpoint {path} ({err}). {_afresh(path)}") from err


def load_or_set_aside(path: Path) -> dict[str, Any] | None:
    """The checkpoint at ``path``; a damaged one is moved aside (never deleted) and None returned.

    Damaged weights would train on into NaNs or, worse, into plausible numbers; starting afresh
    is the only honest way on, and the moved file stays for whoever wants to look at it.
    """
    try:
        return load_checkpoint(path)
    except CheckpointDamaged as err:
        aside = path.with_name(f"{path.name}.damaged-{datetime.now():%Y%m%d-%H%M%S}")
        os.replace(path, aside)
        warnings.warn(f"{err} It was moved to {aside}; this run trains afresh.", stacklevel=3)
        return None


def check_run(path: Path, ckpt: dict[str, Any], run: dict[str, Any], knobs: dict[str, Any]) -> None:
    """Refuse to resume a checkpoint that another run wrote, naming each difference and the fix.

    ``run`` must match on every key: a key the checkpoint lacks counts as changed, so an older
    checkpoint is refused, not guessed at. ``knobs`` (the notebook's knobs read before ``fit``)
    match on the keys both runs read: re-running one cell after later cells read more knobs
    still resumes, and a plotting knob read only after training never forces a retrain.
    """
    old_run, new_run = json.loads(ckpt["config"]), _plain(run)
    old_knobs, new_knobs = json.loads(ckpt.get("knobs", "{}")), _plain(knobs)
    changes = [f"{k}: {old_run.get(k, NOT_RECORDED)!r} -> {new_run.get(k, NOT_RECORDED)!r}"
               for k in sorted(old_run.keys() | new_run.keys())
               if old_run.get(k, NOT_RECORDED) != new_run.get(k, NOT_RECORDED)]
    changes += [f"P.{k}: {old_knobs[k]!r} -> {new_knobs[k]!r}"
                for k in sorted(old_knobs.keys() & new_knobs.keys()) if old_knobs[k] != new_knobs[k]]
    if changes:
        raise CheckpointMismatch(
            f"{path} was written by another run ({'; '.join(changes)}). Restore those values to "
            f"resume it. {_afresh(path)}"
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
