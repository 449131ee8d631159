"""Execute the notebooks headless at a chosen profile and export them to HTML: the project's main job."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter

from nbhelpers import results, settings

NOTEBOOK_DIR = settings.REPO_ROOT / "notebooks"
SLOW_CELL_S = 30.0  # cells that take longer get a progress line, so a long run shows where it is


def find_notebooks(selection: list[str] | None = None) -> list[Path]:
    """The notebooks to run: all of them, or those whose file name starts with a selected prefix."""
    notebooks = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if not selection:
        return notebooks
    chosen = [nb for nb in notebooks if any(nb.stem.startswith(s) or nb.stem == s for s in selection)]
    unknown = [s for s in selection if not any(nb.stem.startswith(s) for nb in notebooks)]
    if unknown:
        names = ", ".join(nb.stem for nb in notebooks)
        raise SystemExit(f"no notebook matches {unknown}; the notebooks are: {names}")
    return chosen


def _first_line(cell: nbformat.NotebookNode) -> str:
    return cell.source.strip().splitlines()[0][:60] if cell.source.strip() else ""


def _failed_cell(nb: nbformat.NotebookNode) -> str:
    """'cell 12 (`rec.save()`...)': the first cell whose output holds an error."""
    for i, cell in enumerate(nb.cells):
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return f"cell {i} (`{_first_line(cell)}`)"
    return "an unknown cell"


def _slow_cell_printer(start: float, slow_cell_s: float):
    """Hooks for nbclient that print a line for every cell that ran at least ``slow_cell_s`` seconds."""
    began: dict[int, float] = {}

    def on_start(cell: nbformat.NotebookNode, cell_index: int) -> None:
        began[cell_index] = time.monotonic()

    def on_done(cell: nbformat.NotebookNode, cell_index: int, execute_reply: dict) -> None:
        now = time.monotonic()
        took = now - began.pop(cell_index)  # nbclient calls on_cell_start first, for every cell
        if took >= slow_cell_s:
            print(f"      cell {cell_index} (`{_first_line(cell)}`) took {took / 60:.1f} min; "
                  f"{(now - start) / 60:.1f} min so far", flush=True)

    return on_start, on_done


def execute(path: Path, out_dir: Path, *, inplace: bool, timeout: int,
            slow_cell_s: float = SLOW_CELL_S) -> tuple[bool, float, str]:
    """Run one notebook; write the executed copy and HTML to ``out_dir``; return (ok, seconds, message)."""
    nb = nbformat.read(path, as_version=4)
    start = time.monotonic()
    on_start, on_done = _slow_cell_printer(start, slow_cell_s)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}},
                            on_cell_start=on_start, on_cell_executed=on_done)
    ok, message = True, "ok"
    try:
        client.execute()
    except CellExecutionError as err:
        ok = False
        message = f"FAILED at {_failed_cell(nb)}: {str(err).strip().splitlines()[-1][:300]}"
    seconds = time.monotonic() - start
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out_dir / path.name)
    body, _ = HTMLExporter().from_notebook_node(nb)
    (out_dir / f"{path.stem}.html").write_text(body, encoding="utf-8")
    if inplace and ok:
        nbformat.write(nb, path)
    return ok, seconds, message


def run(selection: list[str] | None = None, *, profile: str | None = None, out_dir: Path | None = None,
        inplace: bool = False, fresh: bool = False, timeout: int = 3600) -> int:
    """Execute the selected notebooks in order; print a line each and the results summary; 0 if all ran."""
    if profile:
        os.environ["NBH_PROFILE"] = profile
    os.environ.setdefault("NBH_PROGRESS", "text")  # epoch lines, not progress bars, in saved outputs
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    if fresh:  # ignore checkpoints of earlier runs, so that every number comes from this run
        os.environ["NBH_CHECKPOINT_DIR"] = tempfile.mkdtemp(prefix="nbh-checkpoints-")
    s = settings.current()
    out_dir = out_dir or settings.REPO_ROOT / "build" / s.profile
    notebooks = find_notebooks(selection)
    print(f"running {len(notebooks)} notebook(s): {s.describe()}; outputs in {out_dir}")
    failures = []
    for i, path in enumerate(notebooks, 1):
        print(f"[{i}/{len(notebooks)}] {path.name} ...", flush=True)
        ok, seconds, message = execute(path, out_dir, inplace=inplace, timeout=timeout)
        print(f"[{i}/{len(notebooks)}] {path.name}: {message} in {seconds / 60:.1f} min", flush=True)
        if not ok:
            failures.append(f"{path.name}: {message}")
    print()
    print(results.summary(s.results_dir))
    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures))
        return 1
    return 0
