"""The GPU default path, run on the CPU: every notebook at the full profile's shapes.

A CUDA or MPS user gets the ``full`` profile by default. Here every notebook runs headless at
that profile's architectures, image sizes and batch sizes, on the offline stand-ins, with every
training capped at one step (``NBH_MAX_STEPS``) and every evaluation at a few items
(``NBH_MAX_EVAL_ITEMS``): the mechanism that ``fit`` and the inference helpers obey, not
per-notebook edits. It proves that each cell runs with those shapes; its numbers mean nothing.

These runs take minutes on 2 CPU cores; ``pytest -m "not fullshape"`` leaves them out.
"""

import nbformat
import pytest

from nbhelpers import runner

FULL_SHAPES = {
    "NBH_PROFILE": "full",
    "NBH_DEVICE": "cpu",
    "NBH_DATA_POLICY": "standin",
    "NBH_MAX_STEPS": "1",
    "NBH_MAX_EVAL_ITEMS": "16",
    "NBH_PROGRESS": "off",
}


@pytest.mark.fullshape
@pytest.mark.parametrize("notebook", runner.find_notebooks(), ids=lambda nb: nb.stem[:2])
def test_notebook_runs_at_the_full_profile_shapes(notebook, tmp_path, monkeypatch):
    # Folders of its own: a smoke run's checkpoint of the same name must not be resumed here.
    folders = {f"NBH_{kind.upper()}_DIR": str(tmp_path / kind) for kind in ("checkpoint", "results", "cache", "runs")}
    for name, value in {**FULL_SHAPES, **folders}.items():
        monkeypatch.setenv(name, value)
    ok, _, message = runner.execute(notebook, tmp_path / "build", inplace=False, timeout=1200)
    assert ok, f"{notebook.name} at the full profile's shapes: {message}"
    first = nbformat.read(tmp_path / "build" / notebook.name, as_version=4).cells
    printed = "".join(o.get("text", "") for c in first if c.cell_type == "code" for o in c.outputs)
    if "settings.setup(" in "".join(c.source for c in first):
        assert "profile=full" in printed and "CAPPED RUN" in printed
