"""Atomic file writes: a crash or Ctrl-C never leaves a half-written file that later passes as whole."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it into place with ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; results and caches are for everyone
    try:
        yield Path(tmp)
        os.replace(tmp, path)  # atomic on POSIX and Windows when both sit on one filesystem
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
