"""The main job: notebooks executed headless, exported to HTML, failures named by notebook and cell."""

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

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
