"""The notebooks' exercises as code: find a notebook, run its exercise cells, use what it taught;
and the student edition made from the committed (solution) notebooks.

A lesson function is written once, in the notebook that teaches it (see ``exercises``). A later
notebook that needs it takes the student's own version with :func:`taught`, so there is never a
second copy in the package that a student could read instead of writing it.

The student edition (``python -m nbhelpers student OUT``) replaces each solution region by a
``todo`` stub and each model answer by nbgrader's "YOUR ANSWER HERE", clears the outputs, adds
what a student needs to run it, and checks that no solution line reached any of its files
(:func:`leaks`). :func:`fill_solutions` is the way back, exactly.
"""

from __future__ import annotations

import ast
import copy
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from nbhelpers import settings

SETUP_TAG = "exercise-setup"


def is_exercise(cell: nbformat.NotebookNode) -> bool:
    """A code cell the student writes (nbgrader solution cell)."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.cell_type == "code" and bool(meta.get("solution")) and not meta.get("grade")


def is_check(cell: nbformat.NotebookNode) -> bool:
    """A check cell (nbgrader autograder test cell)."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def is_setup(cell: nbformat.NotebookNode) -> bool:
    """A cell the exercise cells may rely on (imports only), tagged ``exercise-setup``."""
    return cell.cell_type == "code" and SETUP_TAG in cell.get("metadata", {}).get("tags", [])


def find_notebook(notebook: str | Path, near: str | Path | None = None) -> Path:
    """The notebook ``"05"`` (by its number) or a path; looked for beside ``near`` (default: the
    working directory, where Jupyter runs a notebook) and in its ``notebooks/`` folder."""
    path = Path(notebook)
    if path.suffix == ".ipynb":
        return path
    here = Path(near) if near is not None else Path.cwd()
    for folder in (here, here / "notebooks", here.parent / "notebooks"):
        found = sorted(folder.glob(f"{notebook}_*.ipynb"))
        if found:
            return found[0]
    raise FileNotFoundError(
        f"notebook {notebook} was not found in {here} or its notebooks/ folder: keep the course's "
        "notebooks together in one folder, as the student edition comes.")


_LOADED: dict[tuple[Path, float], dict[str, Any]] = {}


def load_exercises(notebook: str | Path, near: str | Path | None = None) -> dict[str, Any]:
    """The namespace left by running a notebook's setup and exercise cells, in order (no training,
    no data: those cells only define functions). Cached until the file changes."""
    path = find_notebook(notebook, near).resolve()
    key = (path, path.stat().st_mtime)
    if key not in _LOADED:
        nb = nbformat.read(path, as_version=4)
        namespace: dict[str, Any] = {"__name__": f"exercises_{path.stem}"}
        for cell in nb.cells:
            if is_setup(cell) or is_exercise(cell):
                exec(compile(cell.source, f"{path.name} (cell {cell.get('id', '?')})", "exec"), namespace)
        _LOADED[key] = namespace
    return _LOADED[key]


def taught(notebook: str, name: str, near: str | Path | None = None) -> Any:
    """The function ``name`` as written in notebook ``notebook``'s exercise cell (the student's own)."""
    namespace = load_exercises(notebook, near)
    if name not in namespace:
        raise KeyError(f"notebook {notebook} defines no exercise function `{name}`.")
    return namespace[name]


# --- the student edition ---------------------------------------------------------------------------

BEGIN, END = "BEGIN SOLUTION", "END SOLUTION"  # nbgrader's delimiters, matched inside a line as it does
ANSWER_STUB = "YOUR ANSWER HERE"  # nbgrader's text stub
TODO_IMPORT = "from nbhelpers.exercises import todo"
_HEADER = re.compile(r"#\s*Exercise\s+(\d+)\.(\d+)\b")
_GRADE_ID = re.compile(r"ex(\d+)_(\d+)$")
_STUB = re.compile(r'^(\s*)todo\("([\d.]+)", "([\w.]+)"\)\s*$')

# What the student needs beside the notebooks and the package (tests/, results/ and .ci/ stay out).
EDITION_FILES = ("requirements.txt", "pyproject.toml", "Makefile", "environment.yml", "data/README.md")


def is_answer(cell: nbformat.NotebookNode) -> bool:
    """A written answer (nbgrader manually graded Markdown cell) holding the model answer."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.cell_type == "markdown" and bool(meta.get("solution")) and bool(meta.get("grade"))


def exercise_id(cell: nbformat.NotebookNode) -> str:
    """``"5.1"``: from the cell's first line ``# Exercise 5.1: ...``, else its grade_id ``ex05_1``."""
    first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
    found = _HEADER.match(first) or _GRADE_ID.match(cell.metadata.get("nbgrader", {}).get("grade_id", ""))
    if not found:
        raise ValueError(f"exercise cell {cell.get('id', '?')} has neither a first line "
                         "'# Exercise N.M: <title>' nor a grade_id 'exNN_M'.")
    return f"{int(found.group(1))}.{int(found.group(2))}"


@dataclass(frozen=True)
class Region:
    """One solution region of a cell: marker lines ``begin`` and ``end`` (0-based, inclusive)."""

    begin: int
    end: int
    indent: str
    function: str


def _enclosing_functions(source: str, where: str) -> dict[int, str]:
    """For each line (1-based) inside a function body, the innermost function's dotted name."""
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        raise ValueError(f"{where} is not valid Python ({err.msg}, line {err.lineno}).") from err
    names: dict[int, str] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):  # the body: after the signature's last line
                    for line in range(child.body[0].lineno, child.end_lineno + 1):
                        names[line] = name
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return names


def solution_regions(source: str, where: str = "the cell") -> list[Region]:
    """The cell's solution regions, each inside a function body; a malformed one is an error."""
    lines = source.split("\n")
    regions, begin = [], None
    for i, line in enumerate(lines):
        if BEGIN in line:
            if begin is not None:
                raise ValueError(f"{where}: a second '### {BEGIN}' at line {i + 1} before its END.")
            begin = i
        elif END in line:
            if begin is None:
                raise ValueError(f"{where}: '### {END}' at line {i + 1} without a BEGIN above it.")
            regions.append((begin, i))
            begin = None
    if begin is not None:
        raise ValueError(f"{where}: '### {BEGIN}' at line {begin + 1} has no END.")
    if not regions:
        return []
    functions = _enclosing_functions(source, where)
    found = []
    for b, e in regions:
        # The first line of code in the region decides; a region of comments only takes the marker's.
        inside = [i + 1 for i in range(b + 1, e) if lines[i].strip() and not lines[i].strip().startswith("#")]
        name = functions.get(inside[0] if inside else b + 1)
        if name is None:
            raise ValueError(f"{where}: the solution region at line {b + 1} is not inside a function "
                             "body; only a function's body may be between the markers.")
        found.append(Region(b, e, re.match(r"\s*", lines[b]).group(0), name))
    return found


def _import_line(lines: list[str]) -> int:
    """Where the stub's import goes: after the cell's leading comments (its ``# Exercise`` title)."""
    at = 0
    while at < len(lines) and lines[at].lstrip().startswith("#") and BEGIN not in lines[at]:
        at += 1
    return at


def stub_source(source: str, exercise: str, where: str = "the cell") -> str:
    """An exercise cell's source with each solution region replaced by its ``todo`` stub."""
    lines = source.split("\n")
    out = lines[:]
    for region in reversed(solution_regions(source, where)):
        out[region.begin:region.end + 1] = [f'{region.indent}todo("{exercise}", "{region.function}")']
    at = _import_line(out)
    return "\n".join([*out[:at], TODO_IMPORT, *out[at:]])


def _where(path: str | Path | None, cell: nbformat.NotebookNode) -> str:
    return f"{Path(path).name if path else 'notebook'}, cell {cell.get('id', '?')}"


def student_notebook(nb: nbformat.NotebookNode, path: str | Path | None = None) -> nbformat.NotebookNode:
    """The student edition of one solution notebook: stubs, no model answers, no outputs."""
    out = copy.deepcopy(nb)
    out.metadata.pop("widgets", None)  # widget state belongs to the outputs
    for cell in out.cells:
        where = _where(path, cell)
        cell.metadata.pop("execution", None)  # run times, as outputs
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if is_exercise(cell):
            cell.source = stub_source(cell.source, exercise_id(cell), where)
        elif is_answer(cell):
            cell.source = ANSWER_STUB
        elif BEGIN in cell.source or END in cell.source:
            raise ValueError(f"{where}: solution markers in a cell without nbgrader solution "
                             "metadata; its solution would reach the student edition.")
    return out


def _fill_exercise(student: str, solution: str, where: str) -> str:
    """The student's exercise cell with each ``todo`` stub replaced by the solution's region."""
    lines = student.split("\n")
    if TODO_IMPORT in lines:
        lines.remove(TODO_IMPORT)
    solution_lines = solution.split("\n")
    regions = iter(solution_regions(solution, where))
    out = []
    for line in lines:
        if _STUB.match(line):
            region = next(regions, None)
            if region is None:
                raise ValueError(f"{where}: more todo stubs than solution regions.")
            out.extend(solution_lines[region.begin:region.end + 1])
        else:
            out.append(line)
    if next(regions, None) is not None:
        raise ValueError(f"{where}: fewer todo stubs than solution regions.")
    return "\n".join(out)


def fill_solutions(student_nb: nbformat.NotebookNode,
                   solution_nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student notebook with the solution regions and model answers put back (cells by id)."""
    out = copy.deepcopy(student_nb)
    solutions = {cell.get("id"): cell for cell in solution_nb.cells}
    for cell in out.cells:
        solution = solutions.get(cell.get("id"))
        if solution is None or not (is_exercise(solution) or is_answer(solution)):
            continue
        if is_answer(solution):
            cell.source = solution.source
        else:
            cell.source = _fill_exercise(cell.source, solution.source, _where(None, cell))
    return out


# --- the leak check ------------------------------------------------------------------------------

MIN_LEAK_CHARS = 12  # shorter lines (`return x`, `pass`, `x = x + 1`, brackets) say nothing of a solution
# The ritual of every training step (`loss.backward()`, `opt.step()`, `opt.zero_grad(set_to_none=True)`):
# a method called on a name with keyword arguments at most says nothing of a solution either.
_RITUAL = re.compile(r"[A-Za-z_][\w.]*\.\w+\((\w+=[\w.'\"]+(, )?)*\)")
_STATEMENT = re.compile(r"(return |[\w.]+(, [\w.]+)* = )(?P<expression>.+)")  # `return e`, `a, b = e`


def _normal(line: str) -> str:
    return " ".join(line.split())


def secret_lines(nb: nbformat.NotebookNode) -> dict[str, str]:
    """The solution notebook's lines that the student edition must not hold, with where each is from.

    Every line of a solution region or of a model answer, except a trivial one: fewer than
    ``MIN_LEAK_CHARS`` characters other than spaces, a bare method call (``_RITUAL``), or a line
    that the exercise cell gives the student anyway (its docstring quotes the line, or the
    expression it returns or assigns, as a hint).
    """
    found: dict[str, str] = {}
    for cell in nb.cells:
        given = ""
        if is_exercise(cell):
            lines = cell.source.split("\n")
            regions = solution_regions(cell.source)
            chosen = [line for r in regions for line in lines[r.begin + 1:r.end]]
            inside = {i for r in regions for i in range(r.begin, r.end + 1)}
            given = "\n".join(_normal(line) for i, line in enumerate(lines) if i not in inside)
            label = f"exercise {exercise_id(cell)}"
        elif is_answer(cell):
            chosen = cell.source.split("\n")
            label = f"answer {cell.metadata['nbgrader'].get('grade_id', '?')}"
        else:
            continue
        for line in map(_normal, chosen):
            statement = _STATEMENT.fullmatch(line)
            hinted = line in given or bool(statement and statement["expression"] in given)
            if len(line.replace(" ", "")) >= MIN_LEAK_CHARS and not _RITUAL.fullmatch(line) and not hinted:
                found.setdefault(line, label)
    return found


def _text_of(path: Path) -> str | None:
    """A file's text as the leak check reads it (a notebook: its cells' sources); None if binary."""
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None
    if path.suffix == ".ipynb":
        text = "\n".join(cell.source for cell in nbformat.reads(text, as_version=4).cells)
    return "\n".join(map(_normal, text.split("\n")))


def leaks(edition: str | Path, solution_notebooks: list[Path]) -> list[str]:
    """Every solution line (see :func:`secret_lines`) found in any file of the edition, as text."""
    secrets: dict[str, str] = {}
    for path in solution_notebooks:
        for line, label in secret_lines(nbformat.read(path, as_version=4)).items():
            secrets.setdefault(line, f"{path.stem[:2]} {label}")
    found = []
    for path in sorted(Path(edition).rglob("*")):
        text = _text_of(path) if path.is_file() else None
        if text:
            found += [f"{path.relative_to(edition)}: {line!r} (from {label})"
                      for line, label in secrets.items() if line in text]
    return found


# --- writing the edition ---------------------------------------------------------------------------

def student_readme(readme: str) -> str:
    """The edition's README: the course README's section "For students" (kept in one place)."""
    title = readme.split("\n", 1)[0].lstrip("# ")
    _, found, rest = readme.partition("\n## For students\n")
    if not found:
        raise ValueError("README.md has no section '## For students' to give the student edition.")
    section = rest.split("\n## ", 1)[0].strip()
    return (f"# {title}: student edition\n\nGenerated from the course's notebooks by "
            f"`python -m nbhelpers student`; never edit it by hand.\n\n{section}\n")


def write_edition(out: str | Path) -> list[str]:
    """Write the student edition of this repository to ``out``; return the leaks found in it
    (empty when no solution text reached it)."""
    course, out = settings.REPO_ROOT, Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty: give a new folder for the student edition "
                              "(it is generated, never edited, so delete an old one first).")
    notebooks = sorted((course / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    for path in notebooks:
        solution = nbformat.read(path, as_version=4)
        student = student_notebook(solution, path)
        filled = fill_solutions(student, solution)
        if [c.source for c in filled.cells] != [c.source for c in solution.cells]:
            raise AssertionError(f"{path.name}: the student edition does not fill back to the solution.")
        nbformat.write(student, out / "notebooks" / path.name)
    shutil.copytree(course / "nbhelpers", out / "nbhelpers",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    for name in EDITION_FILES:
        if (course / name).exists():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(course / name, out / name)
    (out / "README.md").write_text(student_readme((course / "README.md").read_text()))
    return leaks(out, notebooks)
