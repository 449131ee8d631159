"""The main job: notebooks executed headless, exported to HTML, failures named by notebook and cell."""

import base64
import io

import matplotlib
import nbformat
import numpy as np
import pytest
from matplotlib.figure import Figure
from nbformat.v4 import new_code_cell, new_notebook, new_output
from PIL import Image

from nbhelpers import runner


def write(path, *sources):
    """A notebook of code cells; a source starting with "# raises" is tagged to raise on purpose."""
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    for cell in nb.cells:
        if cell.source.startswith("# raises"):
            cell.metadata["tags"] = ["raises-exception"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def notebooks(tmp_path, monkeypatch):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    monkeypatch.setattr(runner, "NOTEBOOK_DIR", folder)
    write(folder / "01_ok.ipynb", "import os\nprint(os.environ['NBH_PROFILE'])")
    write(folder / "02_broken.ipynb", "x = 1", "# raises on purpose\n1 / 0",
          "raise RuntimeError('Kvasir: no images under <data root>.\\nFix: put them in data/kvasir.')")
    return folder


def test_runs_exports_and_names_the_failing_cell(notebooks, tmp_path, capsys):
    out = tmp_path / "build"
    code = runner.run(profile="smoke", out_dir=out)
    text = capsys.readouterr().out
    assert code == 1
    assert "01_ok.ipynb: ok" in text
    # The failing cell (not the earlier one that raised on purpose), and the exception's whole
    # message as plain text: a DataError's fix comes on its last lines, the kernel colours the name.
    assert "02_broken.ipynb: FAILED at cell 2 (`raise RuntimeError('Kvasir: no images under <data root" in text
    assert "RuntimeError: Kvasir: no images under <data root>.\n    Fix: put them in data/kvasir." in text
    assert "\x1b[" not in text
    executed = nbformat.read(out / "01_ok.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"].strip() == "smoke"
    assert (out / "01_ok.html").stat().st_size > 1000
    # The committed notebooks stay untouched unless --inplace is given.
    assert not nbformat.read(notebooks / "01_ok.ipynb", as_version=4).cells[0].outputs


def test_slow_cells_get_a_progress_line(tmp_path, capsys):
    path = tmp_path / "03_slow.ipynb"
    write(path, "x = 1", "import time\ntime.sleep(0.5)")
    ok, _, _ = runner.execute(path, tmp_path / "build", inplace=False, timeout=60, slow_cell_s=0.4)
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    assert ok and len(lines) == 1 and lines[0].startswith("cell 1 (`import time`) took 0.0 min")


def test_selection_by_prefix_and_unknown_names(notebooks):
    assert [p.name for p in runner.find_notebooks(["02"])] == ["02_broken.ipynb"]
    with pytest.raises(SystemExit, match="01_ok"):
        runner.find_notebooks(["09"])


def test_a_cell_past_the_timeout_is_named_without_a_traceback(tmp_path):
    path = tmp_path / "04_hangs.ipynb"
    write(path, "x = 1", "import time\ntime.sleep(30)")
    ok, _, message = runner.execute(path, tmp_path / "build", inplace=False, timeout=1)
    assert not ok and message.startswith("FAILED at cell 1 (`import time`): A cell timed out")


# --- compact notebooks --------------------------------------------------------------------------


def photo_png() -> bytes:
    """A photograph's kind of PNG: smooth colour fields with sensor noise, which PNG compresses badly."""
    rng = np.random.default_rng(0)
    coarse = Image.fromarray(rng.uniform(0, 255, (12, 12, 3)).astype(np.uint8))
    pixels = np.asarray(coarse.resize((240, 240), Image.BILINEAR)) + rng.normal(0, 4, (240, 240, 3))
    out = io.BytesIO()
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(out, "PNG")
    return out.getvalue()


def line_plot_png() -> bytes:
    fig = Figure(figsize=(6, 3.4), dpi=matplotlib.rcParams["figure.dpi"])
    ax = fig.subplots()
    ax.plot(np.sin(np.linspace(0, 20, 500)), label="loss")
    ax.set(xlabel="step", ylabel="loss", title="a line plot")
    ax.legend()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def image_output(png: bytes):
    return new_output("display_data", data={"image/png": base64.b64encode(png).decode(), "text/plain": "<Figure>"},
                      metadata={"image/png": {"width": 240}})


def test_photographic_figures_become_smaller_jpegs_line_plots_stay_png_and_timings_go():
    photo, plot = photo_png(), line_plot_png()
    cell = new_code_cell("show()", outputs=[image_output(photo), image_output(plot)])
    cell.metadata["execution"] = {"iopub.execute_input": "2026-12-03T06:36:00.000000Z"}
    nb = new_notebook(cells=[cell])
    runner.compact(nb)
    jpeg_out, png_out = nb.cells[0].outputs
    assert set(jpeg_out.data) == {"image/jpeg", "text/plain"} and jpeg_out.metadata == {"image/jpeg": {"width": 240}}
    jpeg = base64.b64decode(jpeg_out.data["image/jpeg"])
    assert len(jpeg) < runner.JPEG_SHARE * len(photo) and Image.open(io.BytesIO(jpeg)).format == "JPEG"
    assert base64.b64decode(png_out.data["image/png"]) == plot and "image/jpeg" not in png_out.data
    assert "execution" not in nb.cells[0].metadata
    nbformat.validate(nb)


def test_grey_figures_become_lossless_greyscale_pngs_and_coloured_ones_stay():
    rng = np.random.default_rng(1)
    strokes = np.kron(rng.random((8, 8)) < 0.15, np.ones((12, 12), bool))  # a black background, as MNIST's
    digits = np.where(strokes, rng.integers(120, 256, strokes.shape), 0).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(digits).convert("RGBA").save(out, "PNG")
    grey_rgba, plot = out.getvalue(), line_plot_png()
    nb = new_notebook(cells=[new_code_cell("show()", outputs=[image_output(grey_rgba), image_output(plot)])])
    runner.compact(nb)
    grey_out, plot_out = nb.cells[0].outputs
    grey = base64.b64decode(grey_out.data["image/png"])
    assert len(grey) < len(grey_rgba) and Image.open(io.BytesIO(grey)).mode == "L"
    assert (np.asarray(Image.open(io.BytesIO(grey))) == digits).all()  # lossless
    assert base64.b64decode(plot_out.data["image/png"]) == plot  # the blue line keeps its colour


def test_a_run_writes_compact_notebooks_and_names_one_over_the_budget(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    (tmp_path / "photo.png").write_bytes(photo_png())
    write(folder / "05_figure.ipynb", "from IPython.display import Image, display\n"
                                      f"display(Image(filename={str(tmp_path / 'photo.png')!r}))")
    monkeypatch.setattr(runner, "NOTEBOOK_DIR", folder)
    monkeypatch.setattr(runner, "BUDGET_MB", 0.001)
    # What run() sets for its kernels, set here so that the test's end restores the environment.
    monkeypatch.setenv("NBH_PROFILE", "smoke")
    monkeypatch.setenv("NBH_PROGRESS", "text")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    code = runner.run(profile="smoke", out_dir=tmp_path / "build")
    text = capsys.readouterr().out
    executed = nbformat.read(tmp_path / "build" / "05_figure.ipynb", as_version=4)
    size_mb = (tmp_path / "build" / "05_figure.ipynb").stat().st_size / 1e6
    assert code == 0  # over the budget is reported, not a failure
    assert f"05_figure.ipynb is {size_mb:.2f} MB, over the 0.001 MB budget" in text
    assert "image/jpeg" in executed.cells[0].outputs[0].data
    assert not any("execution" in cell.metadata for cell in executed.cells)
