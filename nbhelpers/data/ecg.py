"""ECG5000: heartbeats of 140 samples from the UCR archive or the TensorFlow tutorial's ``ecg.csv``.

Real sources under the data root, in order:

- ``ECG5000/ECG5000_{TRAIN,TEST}.{tsv,txt,arff}``: the UCR archive (500 + 4,500 beats). The
  class comes first in ``.txt``/``.tsv`` rows and last in ``.arff`` rows. Whichever splits exist
  are read and concatenated; each split is read from one format only.
- ``ECG5000/ecg.csv`` or ``ecg.csv``: the 4998 x 141 file of the TensorFlow autoencoder tutorial,
  140 samples then a label that is 1 for a normal beat and 0 for any abnormal one. The abnormal
  beats' UCR class is not in that file, so they get the label 0 here ("abnormal, class unknown").

UCR classes: 1 normal, 2 R-on-T premature ventricular contraction, 3 premature ventricular
contraction, 4 supraventricular premature or ectopic beat, 5 unclassified beat. Every beat is
z-normalised on its own (UCR's convention), and the stand-in follows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nbhelpers import settings
from nbhelpers.data.core import DataError, DatasetInfo, DataSource, download_file, register, resolve

LENGTH = 140
CLASS_NAMES = {
    0: "abnormal (class not given in ecg.csv)",
    1: "normal",
    2: "R-on-T premature ventricular contraction",
    3: "premature ventricular contraction",
    4: "supraventricular premature or ectopic beat",
    5: "unclassified beat",
}
UCR_FORMATS = (".tsv", ".txt", ".arff")  # the first found is read when a split comes in several
FOLDER = "ECG5000"
CSV_URL = "http://storage.googleapis.com/download.tensorflow.org/data/ecg.csv"
UCR_URL = "https://www.timeseriesclassification.com/description.php?Dataset=ECG5000"


@dataclass(frozen=True, eq=False)  # eq=False: tensors have no single truth value to compare by
class ECGSet:
    """ECG5000 beats: ``signals`` float32 ``(N, 140)``, ``labels`` int64 (UCR class 1..5, or 0)."""

    signals: torch.Tensor
    labels: torch.Tensor
    source: DataSource
    split_files: list[str]

    @property
    def normal(self) -> torch.Tensor:
        """A boolean mask of the normal beats (class 1)."""
        return self.labels == 1

    def __len__(self) -> int:
        return len(self.labels)


def ucr_files(folder: Path) -> list[Path]:
    """The UCR split files in ``folder``: one per split that exists, in the preferred format."""
    files = []
    for split in ("TRAIN", "TEST"):
        candidates = [folder / f"ECG5000_{split}{ext}" for ext in UCR_FORMATS]
        files += [p for p in candidates if p.is_file()][:1]
    return files


def _find(root: Path) -> Path | None:
    if ucr_files(root / FOLDER):
        return root / FOLDER
    return next((p for p in (root / FOLDER / "ecg.csv", root / "ecg.csv") if p.is_file()), None)


def _not_tf_csv(path: Path) -> str | None:
    """What keeps a downloaded file from being the tutorial's ecg.csv (rows of 141 numbers), or None."""
    try:
        columns = np.loadtxt(path, delimiter=",", ndmin=2).shape[1]
    except ValueError as err:  # an HTML page from a captive portal lands here
        return f"not rows of numbers: {err}"
    return None if columns == LENGTH + 1 else f"rows of {columns} numbers, not {LENGTH + 1}"


def _download(root: Path) -> Path:
    # Google publishes no checksum for ecg.csv, so its format is checked before it lands; read_tf_csv
    # checks the labels and values when the loader reads it.
    return download_file(CSV_URL, root / FOLDER / "ecg.csv", check=_not_tf_csv)


INFO = register(
    DatasetInfo(
        name="ECG5000",
        find=_find,
        instructions=(
            f"download ECG5000 from the UCR archive ({UCR_URL}) and put ECG5000_TRAIN.txt and "
            f"ECG5000_TEST.txt (or the .tsv or .arff files) in <data root>/{FOLDER}/, or download "
            f"{CSV_URL} to <data root>/{FOLDER}/ecg.csv"
        ),
        standin="procedural heartbeats: sums of Gaussian waves, 5 UCR classes in ECG5000's proportions",
        download=_download,
    )
)


# --- real readers -------------------------------------------------------------------------------


def _table(path: Path, lines: list[str] | None = None, delimiter: str | None = None) -> np.ndarray:
    try:
        return np.loadtxt(
            path if lines is None else lines, delimiter=delimiter, ndmin=2, dtype=np.float64
        )
    except ValueError as err:
        raise DataError(
            f"ECG5000: {path} is not a table of numbers ({err}).\nFix: {INFO.instructions}."
        ) from err


def _checked(
    path: Path, signals: np.ndarray, labels: np.ndarray, allowed: set[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    fix = f"Fix: replace {path} with the original file; {INFO.instructions}."
    if signals.shape[1] != LENGTH:
        raise DataError(
            f"ECG5000: {path} has {signals.shape[1]} samples per beat, not {LENGTH}.\n{fix}"
        )
    if not np.isfinite(signals).all():
        raise DataError(f"ECG5000: {path} holds missing or infinite values.\n{fix}")
    if bad := sorted(set(np.unique(labels).tolist()) - allowed):
        raise DataError(f"ECG5000: {path} has labels {bad}; expected {sorted(allowed)}.\n{fix}")
    return torch.from_numpy(signals.astype(np.float32)), torch.from_numpy(labels.astype(np.int64))


def read_ucr(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """A UCR ECG5000 file: ``.txt`` (whitespace) or ``.tsv`` with the class first, or ``.arff`` with it last."""
    if path.suffix == ".arff":
        lines = path.read_text().splitlines()
        start = next((i for i, line in enumerate(lines) if line.strip().lower() == "@data"), None)
        if start is None:
            raise DataError(
                f"ECG5000: {path} has no @data line, so it is not an ARFF file.\nFix: {INFO.instructions}."
            )
        table = _table(path, [line for line in lines[start + 1 :] if not line.startswith("%")], ",")
        signals, labels = table[:, :-1], table[:, -1]
    else:
        table = _table(path, delimiter="\t" if path.suffix == ".tsv" else None)
        signals, labels = table[:, 1:], table[:, 0]
    return _checked(path, signals, labels, allowed={1, 2, 3, 4, 5})


def read_tf_csv(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """The TensorFlow tutorial's ``ecg.csv``: 140 samples then 1 (normal) or 0 (abnormal) per row."""
    table = _table(path, delimiter=",")
    # 1 stays 1 (UCR's "normal"); 0 stays 0, which no UCR class uses: "abnormal, class unknown".
    return _checked(path, table[:, :-1], table[:, -1], allowed={0, 1})


# --- the public loader --------------------------------------------------------------------------


def ecg5000(
    *,
    policy: str | None = None,
    root: str | Path | None = None,
    download: bool = True,
    seed: int | None = None,
) -> ECGSet:
    """Every ECG5000 beat found (or the stand-in's 5,000), with its class; ``seed`` drives the stand-in."""
    seed = settings.current().seed if seed is None else seed
    kind, found = resolve(INFO, policy=policy, root=root, download=download)
    if kind == "standin":
        signals, labels = standin(seed=seed)
        return ECGSet(
            signals,
            labels,
            DataSource(INFO.name, "standin", "nbhelpers.data.ecg.standin", f"seed {seed}"),
            [],
        )
    files = [found] if found.suffix == ".csv" else ucr_files(found)
    parts = [read_tf_csv(f) if f.suffix == ".csv" else read_ucr(f) for f in files]
    signals, labels = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    note = f"{' + '.join(f.name for f in files)}: {len(labels)} beats, {int((labels == 1).sum())} normal"
    if found.suffix != ".csv" and len(files) == 1:
        note += f"; the {'TEST' if 'TRAIN' in files[0].name else 'TRAIN'} split is missing"
    location = settings.display_path(found.parent if found.suffix == ".csv" else found, root)
    return ECGSet(
        signals, labels, DataSource(INFO.name, "real", location, note), [f.name for f in files]
    )


# --- the stand-in -------------------------------------------------------------------------------

# The UCR window starts just after an R peak, so a beat reads: the S trough, the ST segment, the
# T wave, then the next beat's P wave, Q dip and R peak, cut off by its S trough at the end. Each
# class is a template of such Gaussian waves, as (centre sample, width, amplitude); "V" is the
# wide complex of a ventricular beat, absent (amplitude 0) in a normal one.
WAVES = ("S", "ST", "T", "P", "Q", "R", "S2", "V")
# fmt: off
TEMPLATES = {
    1: [(3.5, 2.2, -4.5), (38, 9, -0.55), (80, 20, 0.6), (104, 4.5, 1.4), (120, 4, -0.5), (133, 3.5, 1.0), (141, 2.5, -1.5), (128, 5, 0.0)],
    # R-on-T PVC: a premature wide, deep ventricular complex lands on the T wave; no P wave.
    2: [(4, 3, -2.8), (38, 9, 0.0), (75, 30, 0.7), (104, 4.5, 0.0), (120, 4, 0.0), (133, 3.5, 0.3), (141, 2.5, -0.5), (129, 5, -4.5)],
    # PVC: no P wave; the wide ventricular complex comes at the end of the window.
    3: [(4, 2.5, -2.0), (38, 9, 0.0), (80, 30, 0.6), (104, 4.5, 0.2), (120, 4, 0.0), (133, 3.5, 0.2), (140, 5, -4.0), (128, 5, 0.0)],
    # Supraventricular premature beat: a small early P, and an early but narrow QRS.
    4: [(4, 2.5, -3.0), (38, 9, -0.2), (75, 25, 0.7), (95, 4, 0.3), (115, 3, -0.3), (120, 3, 0.6), (141, 2.5, -0.8), (127, 3, -3.5)],
    # Unclassified: a peaked T wave, a shifted P and a wide dip, plus random extra waves below.
    5: [(4, 3, -3.5), (40, 9, -0.3), (85, 12, 1.5), (110, 4, 0.5), (120, 4, -1.0), (128, 3, 1.2), (140, 3, -2.0), (115, 8, -1.5)],
}
# fmt: on
SHARES = {1: 2919, 2: 1767, 3: 96, 4: 194, 5: 24}  # ECG5000's class counts among its 5,000 beats


def _gaussians(centre: torch.Tensor, width: torch.Tensor, amp: torch.Tensor) -> torch.Tensor:
    """Sum of Gaussian waves sampled at 0..139: ``(n, k)`` parameters give ``(n, 140)`` beats."""
    t = torch.arange(LENGTH, dtype=torch.float32).view(1, -1, 1)
    bumps = torch.exp(-0.5 * ((t - centre.unsqueeze(1)) / width.unsqueeze(1)) ** 2)
    return (amp.unsqueeze(1) * bumps).sum(-1)


def standin(n: int = 5000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` procedural beats ``(n, 140)``, z-normalised per beat, with UCR classes in ECG5000's shares."""
    g = torch.Generator().manual_seed(seed)
    counts = torch.tensor(list(SHARES.values()), dtype=torch.float64)
    labels = torch.multinomial(counts, n, replacement=True, generator=g) + 1
    normal = torch.tensor(TEMPLATES[1])
    waves = torch.tensor([TEMPLATES[c] for c in sorted(TEMPLATES)])[labels - 1]
    # An abnormal beat lies between the normal template and its class's, at a random severity,
    # so mild cases overlap with normal beats and an anomaly detector cannot be perfect.
    severity = torch.where(labels == 1, 0.0, 0.3 + 0.7 * torch.rand(n, generator=g)).view(-1, 1, 1)
    centre, width, amp = (normal + severity * (waves - normal)).unbind(-1)  # each (n, waves)
    k = len(WAVES)
    stretch = 1 + 0.03 * torch.randn(n, 1, generator=g)  # heart-rate changes move later waves more
    centre = centre * stretch + 1.5 * torch.randn(n, k, generator=g)
    width = width * (1 + 0.1 * torch.randn(n, k, generator=g)).clamp(min=0.5)
    amp = amp * (1 + 0.15 * torch.randn(n, k, generator=g))
    beats = _gaussians(centre, width, amp)
    # Class 5 ("unclassified") gets two extra waves anywhere in the beat.
    extra = _gaussians(
        LENGTH * torch.rand(n, 2, generator=g),
        torch.full((n, 2), 5.0),
        2 * torch.randn(n, 2, generator=g),
    )
    beats += (labels == 5).float().view(-1, 1) * extra
    phase = torch.arange(LENGTH) / LENGTH + torch.rand(n, 1, generator=g)
    beats += (
        0.15 * torch.rand(n, 1, generator=g) * torch.sin(2 * torch.pi * phase)
    )  # baseline wander
    beats += 0.06 * torch.randn(n, LENGTH, generator=g)
    return (beats - beats.mean(1, keepdim=True)) / beats.std(1, keepdim=True), labels
