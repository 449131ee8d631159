"""What every dataset loader shares: where data came from, the real-or-stand-in decision, downloads.

A loader asks :func:`resolve` which source to use. ``resolve`` looks for the real files under the
data root (in the layout of the official download, also when a user put them there by hand),
downloads them when allowed and possible, and otherwise either raises with instructions
(policy ``real``) or falls back to the offline stand-in and says so loudly (policy ``auto``).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import socket
import sys
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from nbhelpers import settings
from nbhelpers.fileio import atomic_path

SourceKind = Literal["real", "standin"]


class DataError(RuntimeError):
    """Data is missing, corrupt or in the wrong layout. The message names the file and the fix."""


@dataclass(frozen=True)
class DataSource:
    """Where a dataset came from: shown by every notebook and stored in its results record."""

    dataset: str
    kind: SourceKind
    location: str  # the real files' folder, or how the stand-in was generated
    note: str = ""

    def __str__(self) -> str:
        label = "REAL" if self.kind == "real" else "STAND-IN (synthetic, offline)"
        note = f" ({self.note})" if self.note else ""
        return f"{self.dataset}: {label} from {self.location}{note}"


@dataclass(frozen=True)
class DatasetInfo:
    """Everything ``resolve`` and the data status table need to know about one dataset."""

    name: str
    find: Callable[[Path], Path | None]  # the real files' folder under the root, or None
    instructions: str  # what to download and where to put it, for a person
    standin: str  # one line on what the stand-in is
    download: Callable[[Path], Path] | None = None  # fetch the official files into the root


REGISTRY: dict[str, DatasetInfo] = {}


def register(info: DatasetInfo) -> DatasetInfo:
    """Add a dataset to the registry that ``status`` and the start-here notebook read."""
    REGISTRY[info.name] = info
    return info


def resolve(
    info: DatasetInfo,
    *,
    policy: str | None = None,
    root: str | Path | None = None,
    download: bool = True,
) -> tuple[SourceKind, Path | None]:
    """Decide between the real files and the stand-in; return the kind and the real folder."""
    s = settings.current()
    policy = policy or s.data_policy
    root = Path(root) if root is not None else s.data_root
    if policy == "standin":
        announce_standin(info, "the data policy is 'standin'")
        return "standin", None
    found = info.find(root)
    if found is not None:
        return "real", found
    reason = f"no real files found under {settings.display_path(root, root)}"
    if download and info.download is not None:
        try:
            return "real", info.download(root)
        except (OSError, DataError) as err:  # offline, refused, or a checksum mismatch
            reason += f"; download failed ({err})"
    if policy == "real":
        raise DataError(
            f"{info.name}: {reason}.\nFix: {info.instructions}\n"
            "Or set NBH_DATA_POLICY=auto to fall back to the offline stand-in."
        )
    announce_standin(info, reason)
    return "standin", None


_announced: set[str] = set()


def announce_standin(info: DatasetInfo, reason: str) -> None:
    """Print a banner that nobody can mistake for a real-data run (a one-line reminder after the first)."""
    if info.name in _announced:
        print(f"(stand-in data for {info.name}: {reason})")
        return
    _announced.add(info.name)
    bar = "!" * 78
    print(
        f"{bar}\n! STAND-IN DATA for {info.name}: {reason}.\n! Using {info.standin}\n"
        f"! Numbers computed on it are NOT results on {info.name}.\n"
        f"! To use the real data: {info.instructions}\n{bar}",
        file=sys.stdout,
    )


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    """The MD5 of a file, for checking downloads against their published sums."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# Why this process counts as offline, once a download found no network: every later download is
# skipped at once instead of waiting out its own timeout (a hanging network cost 15 s per URL).
_offline: str | None = None


def _network_is_down(err: OSError) -> bool:
    """A timeout, or a host that cannot be resolved or routed to: the network failed, not one server."""
    if isinstance(err, urllib.error.HTTPError):  # a server answered, so the network works
        return False
    reason = err.reason if isinstance(err, urllib.error.URLError) else err
    return isinstance(reason, (TimeoutError, socket.gaierror)) or getattr(reason, "errno", None) in (
        errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN)


def _unreachable(url: str, err: OSError) -> DataError:
    """The error for a failed connection; the first one that shows a dead network marks the process offline."""
    global _offline
    if _offline is None and _network_is_down(err):
        _offline = f"no network: {url} failed ({err})"
        print(f"{_offline}; skipping every download for the rest of this process "
              "(restart it, or the notebook's kernel, to try again).")
    return DataError(f"could not reach {url}: {err}")


def _fetch(url: str, tmp: Path, name: str, timeout: float) -> None:
    """Stream ``url`` into the file ``tmp`` with a progress bar named ``name``."""
    request = urllib.request.Request(url, headers={"User-Agent": "nbhelpers"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except OSError as err:  # includes timeouts and refused or unresolvable hosts
        raise _unreachable(url, err) from err
    total = int(response.headers.get("Content-Length") or 0) or None
    with response, open(tmp, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, desc=name) as bar:
        while True:
            try:
                block = response.read(1 << 16)
            except OSError as err:  # the connection stalled or dropped mid-file
                raise _unreachable(url, err) from err
            if not block:
                break
            out.write(block)
            bar.update(len(block))


def download_file(url: str, dest: Path, md5: str | None = None,
                  check: Callable[[Path], str | None] | None = None, timeout: float = 15.0) -> Path:
    """Download ``url`` to ``dest`` with a progress bar, validate it, and only then move it into place.

    Validation is the published MD5 where one exists, and ``check(path)`` where given, which
    returns what is wrong with the file's format (None when nothing is): a captive portal answers
    any URL with an HTML page and HTTP 200. The bytes go to a temporary file first, so a failed
    or interrupted download never leaves a partial file at ``dest``, and the folders it created
    are removed. Offline, the connection fails within ``timeout`` seconds, and from then on every
    download of the process fails at once.
    """
    if dest.exists() and (md5 is None or md5sum(dest) == md5):
        return dest
    if _offline is not None:
        raise DataError(f"skipped {url}: {_offline}, found earlier in this process")
    created = [folder for folder in (dest.parent, *dest.parent.parents) if not folder.exists()]
    try:
        with atomic_path(dest) as tmp:
            _fetch(url, tmp, dest.name, timeout)
            if md5 is not None and (got := md5sum(tmp)) != md5:
                raise DataError(f"{url}: checksum {got} does not match the published {md5}, so "
                                "nothing was replaced. Fix: try again (on another network if it repeats).")
            if check is not None and (problem := check(tmp)):
                raise DataError(f"{url} sent something other than {dest.name} ({problem}), so nothing "
                                "was replaced; a captive portal or proxy page does this. Fix: try "
                                "again on an open network, or download the file by hand.")
    finally:
        if not dest.exists():  # failed or interrupted: remove the folders made for it (deepest first)
            for folder in created:
                with contextlib.suppress(OSError):
                    folder.rmdir()
    return dest


@dataclass
class TensorImageDataset(Dataset):
    """Images held in memory as a tensor, with labels and optional masks.

    ``images`` is ``(N, C, H, W)``, either uint8 (converted to float in [0, 1] per item, to keep
    memory small) or float in [0, 1]. ``transform`` runs on the float image tensor, so random
    augmentations draw from torch's RNG and a seeded run repeats exactly.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    source: DataSource
    masks: torch.Tensor | None = None
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None
    extras: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.images)

    def image(self, i: int) -> torch.Tensor:
        """Image ``i`` as float in [0, 1], before any transform."""
        x = self.images[i]
        return x.float().div_(255) if x.dtype == torch.uint8 else x

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.image(i)
        if self.transform is not None:
            x = self.transform(x)
        return x, self.labels[i]

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All images as one float tensor in [0, 1] (no transform) and the labels."""
        x = self.images.float().div_(255) if self.images.dtype == torch.uint8 else self.images
        return x, self.labels


def status(root: str | Path | None = None) -> pd.DataFrame:
    """One row per registered dataset: are the real files there, and what would a loader use now?"""
    s = settings.current()
    root = Path(root) if root is not None else s.data_root
    rows = []
    for info in REGISTRY.values():
        found = info.find(root)
        if s.data_policy == "standin":
            use = "stand-in (policy 'standin')"
        elif found is not None:
            use = "real"
        else:
            fallback = "error" if s.data_policy == "real" else "stand-in"
            use = f"download, else {fallback}" if info.download else fallback
        rows.append({
            "dataset": info.name,
            "real files": settings.display_path(found, root) if found is not None else "not found",
            "download": "official URL" if info.download else "manual",
            "a loader would use": use,
            "stand-in": info.standin,
            "how to get the real data": info.instructions,
        })
    return pd.DataFrame(rows)


# What numpy raises on a truncated or damaged .npz, a missing key, or a refused pickle.
NPZ_ERRORS = (OSError, ValueError, KeyError, EOFError, RuntimeError, zipfile.BadZipFile, zlib.error)


def cached_arrays(path: Path, build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays of the ``.npz`` cache at ``path``, or ``build()``'s, then saved there atomically.

    Name the file after everything that built it, so that changed inputs miss the cache. An
    unreadable cache file is rebuilt over; a cache folder that cannot be written only costs speed.
    """
    try:
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    except NPZ_ERRORS:
        pass
    arrays = build()
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:  # np.savez(path) would append .npz
            np.savez(f, **arrays)
    except OSError as err:
        print(f"could not write the cache {settings.display_path(path)} ({err}); building again "
              "next time. Fix: point NBH_CACHE_DIR at a writable folder.")
    return arrays


SPLIT_STREAM = {"train": 0, "val": 1, "test": 2}  # keeps a seed's splits apart from each other


def split_seed(seed: int, split: str) -> int:
    """The stand-in's seed for ``split``: one random stream per split, so no two splits share images."""
    return seed * len(SPLIT_STREAM) + SPLIT_STREAM[split]


def subset(count: int, n: int | None, seed: int) -> torch.Tensor | None:
    """Indices of a seeded random subset of ``n`` out of ``count`` items (None: keep all)."""
    if n is None or n >= count:
        return None
    return torch.randperm(count, generator=torch.Generator().manual_seed(seed))[:n]


def holdout(ds: TensorImageDataset, n: int, seed: int) -> tuple[TensorImageDataset, TensorImageDataset]:
    """Split ``ds`` into (the rest, ``n`` items drawn at random with ``seed``), e.g. a validation set."""
    if not 0 < n < len(ds):
        raise ValueError(f"cannot hold out {n} of {len(ds)} items.")
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))
    rest, held = order[n:].sort().values, order[:n].sort().values

    def take(idx: torch.Tensor, split: str) -> TensorImageDataset:
        return replace(ds, images=ds.images[idx], labels=ds.labels[idx],
                       masks=None if ds.masks is None else ds.masks[idx],
                       extras={**ds.extras, "split": split})

    return take(rest, ds.extras.get("split", "train")), take(held, "val")
