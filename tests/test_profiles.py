"""A profile's cost must not depend on how much data is present.

``None`` means "all of it": with more data than the copy a profile was timed on, its epochs grow
with the data (notebook 05's "about 17 minutes" took 40 on the full CIFAR-10). So only the full
profile, made for a GPU, may take all; the cpu and smoke profiles name their sizes, and the cpu
profile states its budget in minutes in the parameters cell.
"""

import ast
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
LESSONS = [nb for nb in NOTEBOOKS if "PROFILES = " in nb.read_text(encoding="utf-8")]


def parameters_cell(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return next("".join(c["source"]) for c in cells if c["cell_type"] == "code" and "PROFILES = " in "".join(c["source"]))


def profiles(path: Path) -> dict[str, dict]:
    """The notebook's PROFILES dict, evaluated without running the notebook."""
    tree = ast.parse(parameters_cell(path))
    node = next(n.value for n in tree.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "PROFILES")
    return eval(compile(ast.Expression(node), str(path), "eval"), {"dict": dict})


def test_the_notebooks_are_found():
    assert len(LESSONS) >= 5 and all(set(profiles(nb)) == {"smoke", "cpu", "full"} for nb in LESSONS)


@pytest.mark.parametrize("notebook", LESSONS, ids=lambda nb: nb.stem[:2])
def test_cpu_and_smoke_profiles_never_take_all_the_data(notebook):
    unbounded = [f"{name}.{knob}" for name, knobs in profiles(notebook).items() if name != "full"
                 for knob, value in knobs.items() if value is None]
    assert unbounded == [], f"{notebook.name}: sizes that grow with the data found: {unbounded}"


@pytest.mark.parametrize("notebook", LESSONS, ids=lambda nb: nb.stem[:2])
def test_the_cpu_profile_states_its_budget_in_minutes(notebook):
    lines = parameters_cell(notebook).splitlines()
    cpu = next(i for i, line in enumerate(lines) if '"cpu": dict(' in line)
    budget = " ".join(lines[max(0, cpu - 3):cpu + 1])  # the comment above the cpu entry, or beside it
    assert re.search(r"about \d+ min(utes)? on 2 CPU cores", budget), f"{notebook.name}: no cpu budget in minutes"


def test_notebook_04_bounds_the_ecg_beats():
    """ECG5000's loader has no ``n``: the notebook takes the first ``ecg_n`` beats itself."""
    nb04 = next(nb for nb in LESSONS if nb.stem.startswith("04"))
    knobs = profiles(nb04)
    assert (knobs["smoke"]["ecg_n"], knobs["cpu"]["ecg_n"], knobs["full"]["ecg_n"]) == (500, 500, None)
    code = "".join("".join(c["source"]) for c in json.loads(nb04.read_text(encoding="utf-8"))["cells"])
    assert "signals[:P.ecg_n], labels[:P.ecg_n]" in code
