"""Results records: what a notebook measured, on which data, profile and seed, beside the references.

Each notebook keeps one :class:`Record` and saves it to ``<results_dir>/<notebook stem>.json``::

    {"notebook": ..., "profile": ..., "seed": ..., "device": ..., "wall_time_s": ...,
     "data": {"MNIST": {"kind": "real", "location": ..., "note": ...}, ...},
     "metrics": {"name": number, ...},
     "references": [{"metric": ..., "value": ..., "source": ..., "note": ...}, ...],
     "versions": {"python": ..., "torch": ..., ...}}

The references are figures from papers and write-ups, kept apart from our metrics: they are
shown beside ours, each with its source and its note (what differs from our run), and never
stored or printed as our results.

In a notebook, :meth:`Record.save` also hands the record to Jupyter as an output of type
``RESULTS_MIME``, so that the executed notebook itself carries it (``python -m nbhelpers grade``
reads each student's results from there).
"""

from __future__ import annotations

import json
import math
import platform
import time
import warnings
from dataclasses import asdict
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from nbhelpers import settings
from nbhelpers.data.core import DataSource
from nbhelpers.fileio import atomic_path, write_error

RESULTS_MIME = "application/vnd.nbhelpers.results+json"
VERSIONED = ("torch", "torchvision", "numpy", "scikit-learn", "scikit-image", "medmnist", "nbhelpers")


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages that decide the numbers."""
    versions = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


class Record:
    """The measured results of one notebook run; start it in the notebook's first cells."""

    def __init__(self, notebook: str) -> None:
        s = settings.current()
        self.notebook = notebook
        self.profile, self.seed, self.device = s.profile, s.seed, str(s.device)
        self.path = s.results_dir / f"{notebook}.json"
        self.data: dict[str, dict[str, str]] = {}
        self.metrics: dict[str, float] = {}
        self.references: list[dict[str, Any]] = []
        self._start = time.monotonic()

    def add_data(self, *sources: DataSource) -> None:
        """Record which data each dataset came from (real files or a stand-in)."""
        for src in sources:
            self.data[src.dataset] = {k: str(v) for k, v in asdict(src).items() if k != "dataset"}

    def log(self, **values: float) -> None:
        """Record headline metrics under flat names that stay the same from run to run."""
        for key, value in values.items():
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"metric {key} is {value}; a result must be a finite number")
            self.metrics[key] = value

    def reference(self, metric: str, value: float, source: str, note: str = "") -> None:
        """A published figure to show beside ``metric``; never one of our results."""
        self.references.append({"metric": metric, "value": float(value), "source": source, "note": note})

    def data_label(self) -> str:
        """``MNIST: real, MNIST-M: standin`` for the table."""
        return ", ".join(f"{name}: {d['kind']}" for name, d in self.data.items()) or "none recorded"

    def table(self) -> pd.DataFrame:
        """Our metrics beside the reference figures, naming the data and profile behind ours."""
        rows = []
        for key, value in self.metrics.items():
            refs = [r for r in self.references if r["metric"] == key] or [None]
            for ref in refs:
                rows.append({
                    "metric": key,
                    "ours": round(value, 4),
                    "reference": ref["value"] if ref else None,
                    "reference source": ref["source"] if ref else "",
                    "note": ref["note"] if ref else "",
                })
        table = pd.DataFrame(rows, columns=["metric", "ours", "reference", "reference source", "note"])
        table.attrs["caption"] = (f"ours: profile={self.profile}, seed={self.seed}, device={self.device}, "
                                  f"data: {self.data_label()}")
        print(table.attrs["caption"])
        return table

    def to_dict(self) -> dict[str, Any]:
        return {
            "notebook": self.notebook, "profile": self.profile, "seed": self.seed, "device": self.device,
            "wall_time_s": round(time.monotonic() - self._start, 1),
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "data": self.data, "metrics": self.metrics, "references": self.references,
            "versions": package_versions(),
        }

    def save(self) -> Path:
        """Write the record atomically to ``<results_dir>/<notebook>.json`` and return the path.

        A full disk or a read-only folder raises a :class:`~nbhelpers.fileio.WriteError` that names
        the record's path (not the temporary file) and the fix.
        """
        record = self.to_dict()
        try:
            with atomic_path(self.path) as tmp:
                tmp.write_text(json.dumps(record, indent=2) + "\n")
        except OSError as err:
            raise write_error(self.path, err, (
                "Fix: free space there, or set NBH_RESULTS_DIR to a writable folder and run the "
                "notebook again (its checkpoints make that quick)."
            )) from err
        _show(f"results saved to {settings.display_path(self.path)} (wall time {record['wall_time_s']:.0f} s)",
              record)
        return self.path


def _show(line: str, record: dict[str, Any]) -> None:
    """Print ``line``; in a notebook, as one output that also carries ``record`` as data."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # IPython comes with Jupyter; without it there is no notebook to carry data
        get_ipython = None
    if get_ipython is None or get_ipython() is None:
        print(line)
        return
    # A front end shows the text/plain line; the record rides along as data it does not render.
    display({"text/plain": line, RESULTS_MIME: record}, raw=True)


def _cell(text: Any) -> str:
    """Text for one cell of a Markdown table (a ``|`` would end the cell)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _section(r: dict[str, Any]) -> list[str]:
    """One record's lines of the summary: one row per metric and reference, with its source and note."""
    data = ", ".join(f"{k}: {v['kind']}" for k, v in r["data"].items())
    lines = [
        f"## {r['notebook']}", "",
        f"profile **{r['profile']}**, seed {r['seed']}, device {r['device']}, "
        f"wall time {r['wall_time_s'] / 60:.1f} min, finished {r.get('finished_at', '?')}; data: {data}",
        "", "| metric | ours | reference | source | note |", "|---|---|---|---|---|",
    ]
    for key, value in r["metrics"].items():
        refs = [x for x in r["references"] if x["metric"] == key] or [None]
        for x in refs:
            ref = (f"{x['value']:g}", _cell(x["source"]), _cell(x.get("note", ""))) if x else ("", "", "")
            lines.append(f"| {_cell(key)} | {value:.4g} | " + " | ".join(ref) + " |")
    return [*lines, ""]


def summary(results_dir: str | Path | None = None) -> str:
    """Every notebook's record in one Markdown document, for instructors.

    A file that is not a results record (broken JSON, missing fields) is skipped with a warning
    that names it: it must not hide the other records, nor fail the run that wrote them.
    """
    results_dir = Path(results_dir) if results_dir is not None else settings.current().results_dir
    files = sorted(results_dir.glob("*.json"))
    if not files:
        return f"No results in {settings.display_path(results_dir)} yet: run the notebooks first (python -m nbhelpers run)."
    parts = ["# Results summary", "",
             "*ours* is this project's run, on the profile and data named above each table. A "
             "*reference* is a figure published by its *source*; its *note* says what differs from "
             "our run, so read it before comparing the two.", ""]
    for f in files:
        try:
            parts += _section(json.loads(f.read_text()))
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            warnings.warn(f"results summary: skipped {f}, which is not a results record "
                          f"({type(err).__name__}: {err}). Fix: delete it, or run its notebook again.",
                          stacklevel=2)
    return "\n".join(parts)
