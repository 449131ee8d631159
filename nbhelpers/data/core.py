"""What every dataset loader shares: where data came from, the real-or-stand-in decision, downloads.

A loader asks :func:`resolve` which source to use. ``resolve`` looks for the real files under the
data root (in the layout of the official download, also when a user put them there by hand),
downloads them when allowed and possible, and otherwise either raises with instructions
(policy ``real``) or falls back to the offline stand-in and says so loudly (policy ``auto``).
"""

from __future__ import annotations

import hashlib
import sys
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
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
    reason = f"no real files found under {root}"
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


def download_file(url: str, dest: Path, md5: str | None = None, timeout: float = 15.0) -> Path:
    """Download ``url`` to ``dest`` with a progress bar, check its MD5, and move it into place.

    The bytes go to a temporary file first, so an interrupted download never leaves a partial
    file at ``dest``. Offline, the connection fails within ``timeout`` seconds.
    """
    if dest.exists() and (md5 is None or md5sum(dest) == md5):
        return dest
    with atomic_path(dest) as tmp:
        request = urllib.request.Request(url, headers={"User-Agent": "nbhelpers"})
        try:
            response = urllib.request.urlopen(request, timeout=timeout)
        except OSError as err:  # includes timeouts and refused or unresolvable hosts
            raise DataError(f"could not reach {url}: {err}") from err
        total = int(response.headers.get("Content-Length") or 0) or None
        with response, open(tmp, "wb") as out, tqdm(
            total=total, unit="B", unit_scale=True, desc=dest.name
        ) as bar:
            while block := response.read(1 << 16):
                out.write(block)
                bar.update(len(block))
        if md5 is not None and (got := md5sum(tmp)) != md5:
            raise DataError(f"{url}: checksum {got} does not match the published {md5}; try again.")
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
            "real files": str(found) if found is not None else "not found",
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
        print(f"could not write the cache {path} ({err}); building again next time. "
              "Fix: point NBH_CACHE_DIR at a writable folder.")
    return arrays
