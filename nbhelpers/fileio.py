"""Atomic file writes: a crash or Ctrl-C never leaves a half-written file that later passes as whole."""

from __future__ import annotations

import errno
import glob
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Errors that mean the disk (or the user's quota) is full, and torch's words for a short write.
NO_SPACE = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
SHORT_WRITE = ("unexpected pos", "file write failed")
READ_ONLY = (errno.EACCES, errno.EPERM, errno.EROFS)


class WriteError(OSError):
    """A file could not be written; the message names the file (not its temporary copy) and the fix."""


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


def remove_partial_files(path: str | Path) -> list[Path]:
    """Delete the temporary files that :func:`atomic_path` left beside ``path`` when a process was killed.

    A kill (not an exception) skips ``atomic_path``'s clean-up, and a large checkpoint's leftover can
    take as much room as the checkpoint itself. mkstemp's random part has 8 characters, which keeps
    the pattern off the temporary files of other names (``a.json.bak`` beside ``a.json``).
    """
    path = Path(path)
    stale = [Path(p) for p in glob.glob(str(path.parent / f".{glob.escape(path.name)}.{'?' * 8}.part"))]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def write_error(path: str | Path, err: BaseException, fix: str) -> WriteError:
    """A :class:`WriteError` for a failed write of ``path``: the file, the cause in words, and ``fix``.

    torch reports a full disk as ``RuntimeError: [enforce fail at inline_container.cc] unexpected
    pos ...``; the ``OSError`` behind it, when there is one, rides on ``__context__``.
    """
    cause: BaseException | None = err
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__cause__ or cause.__context__
    code = getattr(cause, "errno", None)
    if code in NO_SPACE or (code is None and any(words in str(err) for words in SHORT_WRITE)):
        why = "no space left on the device"
    elif code in READ_ONLY:
        why = "the folder is not writable"
    else:
        why = "the write failed"
    # strerror, not str(): the OSError's own text names the temporary file, not the one being written.
    detail = getattr(cause, "strerror", None) or f"{type(err).__name__}: {err}"
    return WriteError(f"cannot write {path}: {why} ({detail}). {fix}")
