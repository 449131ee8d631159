"""The student edition: stubs for every exercise, no solution text anywhere, and the way back.

Generic over whatever exercises the notebooks hold: each test walks the committed (solution)
notebooks and the edition generated from them.
"""

import asyncio
import copy
import inspect
import os
import re
import types

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from nbgrader.nbgraderformat import MetadataValidator
from nbgrader.preprocessors import CheckCellMetadata, ClearOutput, ClearSolutions

from nbhelpers import editions, grading, settings
from nbhelpers.autograde import run_steps
from nbhelpers.editions import (
    ANSWER_STUB,
    TODO_IMPORT,
    exercise_id,
    fill_solutions,
    is_answer,
    is_check,
    is_exercise,
    student_notebook,
    write_edition,
)
from nbhelpers.exercises import ExerciseNotDone

NOTEBOOKS = sorted((settings.REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
STUB = re.compile(r'^\s*todo\("([\d.]+)", "([\w.]+)"\)\s*$', re.M)
# The notebook the end-to-end test executes twice: the fastest at the smoke profile (measured with
# nbclient, one after another on the shared 2-core machine: 05 25 s, 03 33, 02 45, 01 51, 04 63).
CHEAPEST = "05"


def meta(**nbgrader):
    return {"nbgrader": {"locked": False, "schema_version": 3, "task": False, **nbgrader}}


def solution_cells():
    """A small exercise notebook: a function, a method, a check and a written answer."""
    exercise = new_code_cell(
        '# Exercise 9.1: doubling\nimport torch\n\n\ndef double(x):\n    """2x."""\n'
        "    ### BEGIN SOLUTION\n    twice = torch.as_tensor(x) * 2\n    return twice\n    ### END SOLUTION\n\n\n"
        "class Net:\n    def forward(self, x):\n        ### BEGIN SOLUTION\n"
        "        return self.scale * torch.as_tensor(x)\n        ### END SOLUTION",
        metadata=meta(grade=False, grade_id="ex09_1", solution=True))
    check = new_code_cell("assert double(2) == 4", metadata=meta(grade=True, grade_id="check09_1", points=1,
                                                                 solution=False, locked=True))
    answer = new_markdown_cell("Doubling is linear, so the gradient is 2 everywhere.",
                               metadata=meta(grade=True, grade_id="q09_1", points=2, solution=True))
    return new_notebook(cells=[exercise, check, answer])


def test_regions_become_todo_stubs_and_fill_back():
    solution = solution_cells()
    student = student_notebook(solution)
    lines = student.cells[0].source.split("\n")
    assert lines[:2] == ["# Exercise 9.1: doubling", TODO_IMPORT]
    assert STUB.findall(student.cells[0].source) == [("9.1", "double"), ("9.1", "Net.forward")]
    assert '    todo("9.1", "double")' in lines and '        todo("9.1", "Net.forward")' in lines
    assert "twice" not in student.cells[0].source and student.cells[2].source == ANSWER_STUB
    assert student.cells[1].source == solution.cells[1].source
    assert [c.source for c in fill_solutions(student, solution).cells] == [c.source for c in solution.cells]
    assert editions.secret_lines(solution) == {
        "twice = torch.as_tensor(x) * 2": "exercise 9.1",
        "return self.scale * torch.as_tensor(x)": "exercise 9.1",
        "Doubling is linear, so the gradient is 2 everywhere.": "answer q09_1",
    }


@pytest.mark.parametrize("source,error", [
    ("def f():\n    pass\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION", "not inside a function body"),
    ("def f():\n    ### BEGIN SOLUTION\n    return 1", "has no END"),
    ("def f():\n    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n    ### END SOLUTION", "a second"),
], ids=["outside-a-function", "no-end", "nested"])
def test_malformed_regions_are_refused(source, error):
    nb = solution_cells()
    nb.cells[0].source = "# Exercise 9.1: x\n" + source
    with pytest.raises(ValueError, match=error):
        student_notebook(nb)


def test_markers_outside_a_solution_cell_are_refused():
    nb = solution_cells()
    nb.cells.append(new_markdown_cell("Write it between `### BEGIN SOLUTION` and `### END SOLUTION`."))
    with pytest.raises(ValueError, match="without nbgrader solution metadata"):
        student_notebook(nb)


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    """The student edition of this repository, written once for the module: (folder, leaks)."""
    out = tmp_path_factory.mktemp("student")
    return out, write_edition(out)


def students(folder):
    return {path.name: nbformat.read(folder / "notebooks" / path.name, as_version=4) for path in NOTEBOOKS}


def test_the_edition_holds_what_a_student_needs_and_nothing_else(edition):
    out, _ = edition
    for name in ("README.md", "requirements.txt", "pyproject.toml", "Makefile", "data/README.md",
                 "nbhelpers/exercises.py", "nbhelpers/checks/__init__.py"):
        assert (out / name).is_file(), name
    assert sorted(p.name for p in (out / "notebooks").iterdir()) == [p.name for p in NOTEBOOKS]
    for name in ("tests", "results", ".ci", "conftest.py", "CONTRIBUTING.md", "checkpoints"):
        assert not (out / name).exists(), name
    assert not list(out.rglob("__pycache__"))
    readme = (out / "README.md").read_text()
    assert readme.startswith("# ") and "student edition" in readme and "## " not in readme


def test_no_solution_text_reaches_the_edition(edition):
    _, leaks = edition
    assert leaks == [], "solution lines found in the student edition:\n" + "\n".join(leaks)


def test_outputs_are_cleared_and_model_answers_replaced(edition):
    out, _ = edition
    for name, nb in students(out).items():
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert (cell.outputs, cell.execution_count) == ([], None), f"{name} {cell.id}"
            if is_answer(cell):
                assert cell.source == ANSWER_STUB, f"{name} {cell.id}"
            if is_exercise(cell):
                assert STUB.search(cell.source) and TODO_IMPORT in cell.source, f"{name} {cell.id}"
                assert "BEGIN SOLUTION" not in cell.source and "END SOLUTION" not in cell.source


def test_filling_the_student_edition_gives_back_the_solution_sources(edition):
    out, _ = edition
    for path, (name, student) in zip(NOTEBOOKS, students(out).items()):
        solution = nbformat.read(path, as_version=4)
        filled = fill_solutions(student, solution)
        assert [c.source for c in filled.cells] == [c.source for c in solution.cells], name
        assert [c.get("id") for c in filled.cells] == [c.get("id") for c in solution.cells], name


def _stubbed_function(namespace, dotted):
    """The function ``a.b.c`` of a cell: a class's method, or a function nested in another (built
    from its code object, its free variables set to None, since the stub raises before reading them)."""
    parts = dotted.split(".")
    obj = namespace[parts[0]]
    for part in parts[1:]:
        if isinstance(obj, type):
            obj = obj.__dict__[part]
        else:
            code = next(c for c in obj.__code__.co_consts if isinstance(c, types.CodeType) and c.co_name == part)
            obj = types.FunctionType(code, namespace, part, None,
                                     tuple(types.CellType(None) for _ in code.co_freevars))
    return obj


def _dummy_call(fn):
    """Call ``fn`` with None for every argument it requires."""
    params = inspect.signature(fn).parameters.values()
    args = [None for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    kwargs = {p.name: None for p in params if p.default is p.empty and p.kind == p.KEYWORD_ONLY}
    return fn(*args, **kwargs)


def test_every_stub_raises_its_exercise_not_done_message(edition, monkeypatch):
    out, _ = edition
    monkeypatch.chdir(out / "notebooks")  # where taught() finds the student's notebooks
    for name, nb in students(out).items():
        for cell in filter(is_exercise, nb.cells):
            namespace = {"__name__": "stub_test"}
            exec(compile(cell.source, f"{name} {cell.id}", "exec"), namespace)
            for exercise, function in STUB.findall(cell.source):
                assert exercise == exercise_id(cell), f"{name}: the stub names {exercise}"
                with pytest.raises(ExerciseNotDone) as err:
                    _dummy_call(_stubbed_function(namespace, function))
                assert str(err.value) == str(ExerciseNotDone(exercise, function)), f"{name} {function}"


def test_check_cells_say_not_done_on_the_student_edition_and_pass_on_the_solution(edition, monkeypatch):
    out, _ = edition
    for path, student in zip(NOTEBOOKS, students(out).values()):
        solution = nbformat.read(path, as_version=4)
        for folder, nb, expected in ((out / "notebooks", student, "not done"), (path.parent, solution, "passed")):
            monkeypatch.chdir(folder)
            rows = []
            run_steps(grading.steps(nb, nb), seconds=120, emit=rows.append)
            assert len(rows) == sum(map(is_check, nb.cells))
            for row in rows:
                assert row["status"] == expected, f"{path.name} {row['item']} ({folder}): {row['message']}"
                if expected == "not done":
                    assert row["message"].startswith(f"Exercise {row['item']} is not done yet")


def test_the_course_has_its_exercises_questions_and_checks():
    exercises = answers = 0
    for path in NOTEBOOKS[1:]:
        cells = nbformat.read(path, as_version=4).cells
        answers += sum(map(is_answer, cells))
        for i, cell in enumerate(cells):
            if is_exercise(cell):
                exercises += 1
                number, sub = exercise_id(cell).split(".")
                assert cell.metadata.nbgrader["grade_id"] == f"ex{int(number):02d}_{sub}", path.name
                after = cells[i + 1] if i + 1 < len(cells) else None
                assert after is not None and is_check(after), f"{path.name}: no check cell after {cell.id}"
                assert after.metadata.nbgrader["grade_id"] == f"check{int(number):02d}_{sub}", path.name
    assert exercises >= 18, f"{exercises} exercises in notebooks 01-05 (at least 18 wanted)"
    assert answers >= 10, f"{answers} written questions in notebooks 01-05 (at least 10 wanted)"


def test_the_filled_student_edition_runs_to_the_solutions_results(edition, tmp_path):
    """Both editions of the cheapest notebook at the smoke profile, side by side, each training
    afresh. Capped to one step and 16 evaluation items: the same computation, not a long one."""
    out, _ = edition
    filled_dir = tmp_path / "filled"  # every notebook filled, so taught() finds filled ones too
    filled_dir.mkdir()
    for path in NOTEBOOKS:
        solution = nbformat.read(path, as_version=4)
        filled = fill_solutions(nbformat.read(out / "notebooks" / path.name, as_version=4), solution)
        nbformat.write(filled, filled_dir / path.name)
    path = next(p for p in NOTEBOOKS if p.name.startswith(CHEAPEST))
    solution, filled = (nbformat.read(folder / path.name, as_version=4) for folder in (path.parent, filled_dir))

    async def run(nb, folder, label):
        env = {**os.environ, "NBH_PROFILE": "smoke", "NBH_DATA_POLICY": "standin", "NBH_MAX_STEPS": "1",
               "NBH_MAX_EVAL_ITEMS": "16", **{f"NBH_{v}_DIR": str(tmp_path / label / v.lower())
                                               for v in ("CHECKPOINT", "RESULTS", "RUNS")}}
        client = NotebookClient(nb, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": str(folder)}})
        await client.async_execute(env=env)  # its own folders: no checkpoint of one serves the other
        return grading._metrics(nb)["metrics"]

    async def both():
        return await asyncio.gather(run(solution, path.parent, "solution"), run(filled, filled_dir, "filled"))

    ours, theirs = asyncio.run(both())
    assert ours and ours == theirs


def _as_nbgrader_stubs(source):
    """Our exercise cell as nbgrader's ClearSolutions writes it: its stub for each ``todo`` line."""
    stub = ClearSolutions().code_stub["python"].split("\n")
    lines = []
    for line in source.split("\n"):
        if line == TODO_IMPORT:
            continue
        indent = re.match(r"\s*", line).group(0)
        lines += [indent + s for s in stub] if STUB.match(line) else [line]
    return "\n".join(lines)


def test_nbgrader_accepts_the_metadata_and_removes_the_same_regions(edition):
    """nbgrader's own preprocessors on the solution notebooks agree with our student edition."""
    out, _ = edition
    for path, student in zip(NOTEBOOKS, students(out).values()):
        solution = nbformat.read(path, as_version=4)
        MetadataValidator().validate_nb(solution)
        MetadataValidator().validate_nb(student)
        theirs, resources = copy.deepcopy(solution), {}
        for step in (CheckCellMetadata(), ClearSolutions(), ClearOutput(), CheckCellMetadata()):
            theirs, resources = step.preprocess(theirs, resources)
        assert len(theirs.cells) == len(student.cells)
        for cell, ours in zip(theirs.cells, student.cells):
            expected = _as_nbgrader_stubs(ours.source) if is_exercise(ours) else ours.source
            assert cell.source == expected, f"{path.name} cell {ours.id}"
            if cell.cell_type == "code":
                assert (cell.outputs, cell.execution_count) == (ours.outputs, ours.execution_count) == ([], None)
