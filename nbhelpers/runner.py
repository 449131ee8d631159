"""Execute the notebooks headless at a chosen profile and export them to HTML: the project's main job."""

from __future__ import annotations

import base64
import io
import os
import re
import tempfile
import time
from pathlib import Path

import nbformat
import numpy as np
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbconvert import HTMLExporter
from PIL import Image

from nbhelpers import results, settings

NOTEBOOK_DIR = settings.REPO_ROOT / "notebooks"
SLOW_CELL_S = 30.0  # cells that take longer get a progress line, so a long run shows where it is
BUDGET_MB = 1.5  # a committed notebook's size (10^6 bytes), checked after each run (CONTRIBUTING.md)
JPEG_QUALITY = 85
JPEG_SHARE = 0.7  # a figure becomes JPEG only when that takes under this share of its PNG bytes
CHART_BACKGROUND = 0.75  # ...and when no colour covers this share of it: a chart is mostly background


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


_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")  # the kernel colours tracebacks for terminals


def _plain(text: str) -> str:
    """``text`` without ANSI colour codes, continuation lines indented under the notebook's line."""
    return _ANSI.sub("", text).strip().replace("\n", "\n    ")


class _CellClock:
    """nbclient hooks that know the cell being run and print a line for each slow one."""

    def __init__(self, start: float, slow_cell_s: float) -> None:
        self.start, self.slow_cell_s = start, slow_cell_s
        self.began = 0.0
        self.current = "no cell"  # the last cell started: the one that failed when a run stops

    def on_start(self, cell: nbformat.NotebookNode, cell_index: int) -> None:
        self.began = time.monotonic()
        self.current = f"cell {cell_index} (`{_first_line(cell)}`)"

    def on_done(self, cell: nbformat.NotebookNode, cell_index: int, execute_reply: dict) -> None:
        now = time.monotonic()
        took = now - self.began  # nbclient calls on_cell_start first, for every cell
        if took >= self.slow_cell_s:
            print(f"      {self.current} took {took / 60:.1f} min; "
                  f"{(now - self.start) / 60:.1f} min so far", flush=True)


def _smaller_image(png: bytes) -> tuple[str, bytes] | None:
    """A smaller encoding of a PNG figure as ``(mime type, bytes)``, or None to keep the PNG.

    A photograph (no colour covers ``CHART_BACKGROUND`` of it) becomes JPEG when that takes under
    ``JPEG_SHARE`` of the bytes: JPEG blurs the sharp edges of lines and text but stores
    photographs, samples and noise in a fraction of PNG's bytes. A figure without colour (MNIST
    samples) becomes an 8-bit greyscale PNG, the same pixels in about a third of RGBA's bytes.
    Transparent figures stay as they are: neither encoding keeps the alpha channel.
    """
    with Image.open(io.BytesIO(png)) as img:
        rgba = img.convert("RGBA")
    if rgba.getchannel("A").getextrema()[0] < 255:
        return None
    rgb = rgba.convert("RGB")
    pixels = rgb.width * rgb.height
    out = io.BytesIO()
    if max(rgb.getcolors(maxcolors=pixels))[0] < CHART_BACKGROUND * pixels:
        rgb.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
        if out.tell() < JPEG_SHARE * len(png):
            return "image/jpeg", out.getvalue()
        out = io.BytesIO()
    channels = np.asarray(rgb)
    if (channels[..., :1] != channels[..., 1:]).any():
        return None
    Image.fromarray(channels[..., 0]).save(out, "PNG", optimize=True)
    return ("image/png", out.getvalue()) if out.tell() < len(png) else None


def compact(nb: nbformat.NotebookNode) -> None:
    """Figures in their smallest faithful encoding (:func:`_smaller_image`), and no per-cell
    timestamps: a re-run differs in content only."""
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" not in data or (smaller := _smaller_image(base64.b64decode(data["image/png"]))) is None:
                continue
            mime, encoded = smaller
            del data["image/png"]
            data[mime] = base64.b64encode(encoded).decode("ascii")
            if mime != "image/png" and "image/png" in output.get("metadata", {}):  # e.g. the width to show it at
                output.metadata[mime] = output.metadata.pop("image/png")


def over_budget(path: Path, budget_mb: float | None = None) -> str | None:
    """A line naming the notebook, its size and the budget (``BUDGET_MB``) when it is larger; else None."""
    budget_mb = BUDGET_MB if budget_mb is None else budget_mb
    size_mb = path.stat().st_size / 1e6
    if size_mb <= budget_mb:
        return None
    return (f"{path.name} is {size_mb:.2f} MB, over the {budget_mb} MB budget for a committed notebook: "
            "show fewer or smaller images before committing it (CONTRIBUTING.md)")


def execute(path: Path, out_dir: Path, *, inplace: bool, timeout: int,
            slow_cell_s: float = SLOW_CELL_S) -> tuple[bool, float, str]:
    """Run one notebook; write the executed copy and HTML to ``out_dir``; return (ok, seconds, message).

    A failure's message is the failing cell and the exception's whole text (a ``DataError`` names
    the dataset, the file and the fix over several lines), not only its last line. The outputs are
    stored compactly (:func:`compact`), without execution timestamps.
    """
    nb = nbformat.read(path, as_version=4)
    start = time.monotonic()
    clock = _CellClock(start, slow_cell_s)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}, record_timing=False,
                            on_cell_start=clock.on_start, on_cell_executed=clock.on_done)
    ok, message = True, "ok"
    try:
        client.execute()
    except CellExecutionError as err:  # the cell raised: its own exception, without the traceback
        ok, message = False, f"FAILED at {clock.current}: {_plain(f'{err.ename}: {err.evalue}')}"
    except (CellTimeoutError, DeadKernelError) as err:  # the cell ran past --timeout, or the kernel died
        ok, message = False, f"FAILED at {clock.current}: {_plain(str(err))}"
    seconds = time.monotonic() - start
    compact(nb)
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
    print(f"running {len(notebooks)} notebook(s): {s.describe()}; outputs in {settings.display_path(out_dir)}")
    failures, oversized = [], []
    for i, path in enumerate(notebooks, 1):
        print(f"[{i}/{len(notebooks)}] {path.name} ...", flush=True)
        ok, seconds, message = execute(path, out_dir, inplace=inplace, timeout=timeout)
        headline, _, details = message.partition("\n")  # the time goes after the headline
        print(f"[{i}/{len(notebooks)}] {path.name}: {headline} in {seconds / 60:.1f} min"
              + (f"\n{details}" if details else ""), flush=True)
        if not ok:
            failures.append(f"{path.name}: {message}")
        if warning := over_budget(out_dir / path.name):  # reported, never a failure
            print(f"[{i}/{len(notebooks)}] {warning}", flush=True)
            oversized.append(warning)
    print()
    print(results.summary(s.results_dir))
    if oversized:
        print("\nOVER THE SIZE BUDGET:\n  " + "\n  ".join(oversized))
    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures))
        return 1
    return 0
