"""Grading a class: re-run each student's exercises and checks, collect results and answers.

``python -m nbhelpers grade SUBMISSIONS --out REPORT``: ``SUBMISSIONS`` holds one folder per
student with that student's executed notebooks, named as the course's. For every student and
notebook, in a fresh Python process (a crash or an endless loop costs one row, never the run),
with the student's folder as working directory (so ``taught("05", ...)`` finds their own 05) at
the smoke profile on the stand-ins, it runs the course's ``exercise-setup`` cells, then the
student's exercise cells and the course's check cells in the course's order, as nbgrader's
autograder does: a student cannot change a check. It also reads the results record each notebook
saved in its outputs (``results.RESULTS_MIME``) and the written answers.

It writes ``REPORT/report.html`` (checks per student and exercise, metrics, answers side by side
with the model answer) and ``REPORT/report.csv`` (one row per student and item).
"""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd

from nbhelpers import settings
from nbhelpers.autograde import describe
from nbhelpers.editions import ANSWER_STUB, exercise_id, is_answer, is_check, is_exercise, is_setup
from nbhelpers.results import RESULTS_MIME

GRADED = ("01", "02", "03", "04", "05")
COLUMNS = ["student", "notebook", "kind", "item", "status", "message", "value", "profile", "seed", "data"]
ENV = {"NBH_PROFILE": "smoke", "NBH_DATA_POLICY": "standin", "NBH_PROGRESS": "off", "MPLBACKEND": "Agg"}


def steps(course: nbformat.NotebookNode, student: nbformat.NotebookNode) -> list[dict[str, str]]:
    """What the worker runs (see ``autograde.run_steps``): the course's setup and check cells, and
    the student's exercise cells (matched by grade_id), in the course's order."""
    theirs = {c.metadata["nbgrader"].get("grade_id"): c for c in student.cells if is_exercise(c)}
    found, exercise = [], "?"
    for cell in course.cells:
        if is_setup(cell):
            found.append({"kind": "setup", "item": "setup", "source": cell.source})
        elif is_exercise(cell):
            exercise, grade_id = exercise_id(cell), cell.metadata["nbgrader"]["grade_id"]
            mine = theirs.get(grade_id)
            found.append({"kind": "exercise", "item": exercise, "source": mine.source} if mine else
                         {"kind": "exercise", "item": exercise,
                          "missing": f"the exercise cell {grade_id} is missing from the notebook"})
        elif is_check(cell):
            found.append({"kind": "check", "item": exercise, "source": cell.source})
    return found


def _find(folder: Path, name: str) -> Path | None:
    """The student's notebook ``name``: in their folder, or its notebooks/ sub-folder."""
    for path in (folder / name, folder / "notebooks" / name):
        if path.is_file():
            return path
    return None


def question_id(cell: nbformat.NotebookNode) -> str:
    """``"5.1"`` from an answer cell's grade_id ``q05_1`` (the grade_id itself otherwise)."""
    grade_id = cell.metadata["nbgrader"].get("grade_id", "?")
    number, _, sub = grade_id.removeprefix("q").partition("_")
    return f"{int(number)}.{sub}" if number.isdigit() and sub else grade_id


def _run_checks(plan: list[dict[str, str]], student_path: Path, timeout: float,
                cell_timeout: float) -> list[dict[str, Any]]:
    """The check rows of one notebook, from a fresh process; what it could not finish, as crashes."""
    checks = [s["item"] for s in plan if s["kind"] == "check"]
    with tempfile.TemporaryDirectory(prefix="nbh-grade-") as scratch:
        steps_path, rows_path = Path(scratch) / "steps.json", Path(scratch) / "rows.jsonl"
        steps_path.write_text(json.dumps(plan), encoding="utf-8")
        env = {**os.environ, **ENV, **{f"NBH_{k}_DIR": str(Path(scratch) / k.lower())
                                       for k in ("CHECKPOINT", "RESULTS", "RUNS", "CACHE")}}
        # The student's folder is the working directory but must not shadow the package (a copy
        # of nbhelpers/ there would replace the checks), so the current folder leaves sys.path.
        code = ("import sys; sys.path[:] = [p for p in sys.path if p not in ('', '.')]; "
                "from nbhelpers.autograde import main; main(*sys.argv[1:])")
        command = [sys.executable, "-c", code, str(steps_path), str(rows_path), str(cell_timeout)]
        why = None
        try:
            done = subprocess.run(command, cwd=student_path.parent, env=env, capture_output=True,
                                  text=True, timeout=timeout, check=False)
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["no error output"])[-1]
                why = f"the grading process stopped (exit code {done.returncode}): {last}"
        except subprocess.TimeoutExpired:
            why = f"timed out: the notebook's exercise and check cells ran past {timeout:.0f} s"
        rows = [json.loads(line) for line in rows_path.read_text().splitlines()] if rows_path.exists() else []
    rows += [{"item": item, "status": "crashed", "message": why or "no outcome"} for item in checks[len(rows):]]
    return [{"kind": "check", **r} for r in rows]


def _metrics(nb: nbformat.NotebookNode) -> dict[str, Any] | None:
    """The last results record the notebook's outputs carry, if any."""
    found = None
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if RESULTS_MIME in output.get("data", {}):
                found = output["data"][RESULTS_MIME]
    return found


def grade_notebook(course_path: Path, folder: Path, *, timeout: float,
                   cell_timeout: float) -> list[dict[str, Any]]:
    """Every row of one student's notebook: its state, checks, answers and metrics."""
    course = nbformat.read(course_path, as_version=4)
    checks = [step["item"] for step in steps(course, course) if step["kind"] == "check"]
    answers = [c for c in course.cells if is_answer(c)]

    def every(status: str, message: str) -> list[dict[str, Any]]:
        return ([{"kind": "check", "item": ex, "status": status, "message": message} for ex in checks]
                + [{"kind": "answer", "item": question_id(c), "status": status, "message": message}
                   for c in answers])

    path = _find(folder, course_path.name)
    if path is None:
        why = f"{course_path.name} is not in {folder.name}/"
        return [{"kind": "notebook", "item": course_path.stem, "status": "missing", "message": why},
                *every("missing", why)]
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:  # not JSON, not a notebook: the file's fault, named in the report
        why = f"cannot read {path.name}: {describe(err)}"
        return [{"kind": "notebook", "item": course_path.stem, "status": "unreadable", "message": why},
                *every("unreadable", why)]
    if not any(c.cell_type == "code" and c.get("execution_count") for c in nb.cells):
        why = f"{path.name} was saved without running it (no code cell has an execution count)"
        return [{"kind": "notebook", "item": course_path.stem, "status": "not executed", "message": why},
                *every("not executed", why)]
    record = _metrics(nb)
    rows = [{"kind": "notebook", "item": course_path.stem, "status": "graded",
             "message": "" if record else "its outputs hold no results record (did the last cell run?)"}]
    rows += _run_checks(steps(course, nb), path, timeout, cell_timeout) if checks else []
    theirs = {c.metadata["nbgrader"].get("grade_id"): c.source for c in nb.cells if is_answer(c)}
    for cell in answers:
        text = theirs.get(cell.metadata["nbgrader"]["grade_id"])
        status = ("missing" if text is None else
                  "not answered" if text.strip() in ("", ANSWER_STUB) else "answered")
        rows.append({"kind": "answer", "item": question_id(cell), "status": status, "message": text or ""})
    if record:
        data = ", ".join(f"{k}: {v.get('kind')}" for k, v in record.get("data", {}).items())
        rows += [{"kind": "metric", "item": key, "status": "measured", "value": float(value),
                  "profile": record.get("profile"), "seed": record.get("seed"), "data": data}
                 for key, value in record.get("metrics", {}).items()]
    return rows


def grade(submissions: str | Path, out: str | Path, *, notebooks: list[str] | None = None,
          timeout: float = 600.0, cell_timeout: float = 120.0) -> pd.DataFrame:
    """Grade every student folder in ``submissions``; write the report to ``out``; return its rows.

    ``notebooks`` picks a few of 01-05 (by number); the course's copy of each is this repository's.
    ``timeout`` bounds one notebook's grading process and ``cell_timeout`` each of its cells (s).
    """
    submissions, out = Path(submissions), Path(out)
    course_dir = settings.REPO_ROOT / "notebooks"
    chosen = notebooks or list(GRADED)
    course_paths = [p for n in chosen for p in sorted(course_dir.glob(f"{n}_*.ipynb"))[:1]]
    if len(course_paths) != len(chosen):
        raise FileNotFoundError(f"not every notebook of {chosen} is in {course_dir}.")
    students = sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if submissions.is_dir() else []
    if not students:
        raise FileNotFoundError(f"{submissions} holds no student folders (one folder per student).")
    rows = []
    for student in students:
        start = time.monotonic()
        for path in course_paths:
            rows += [{"student": student.name, "notebook": path.stem[:2], **r}
                     for r in grade_notebook(path, student, timeout=timeout, cell_timeout=cell_timeout)]
        print(f"graded {student.name} in {time.monotonic() - start:.0f} s", flush=True)
    table = pd.DataFrame(rows, columns=COLUMNS).astype({"seed": "Int64"})
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "report.csv", index=False)
    (out / "report.html").write_text(report_html(table, course_paths), encoding="utf-8")
    return table


# --- the report ------------------------------------------------------------------------------------

STYLE = """
body { font-family: sans-serif; margin: 2em; } table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; text-align: left; }
.passed { background: #d9f2d9; } .failed, .crashed { background: #f8d7d7; }
.not-done, .missing, .unreadable, .not-executed, .not-answered { background: #eee; }
pre, .text { white-space: pre-wrap; font-size: 0.9em; max-width: 60em; margin: 0; }
"""


def _status_cell(status: str, message: str) -> str:
    """A table cell: the status, coloured, with its message folded under it."""
    css = status.replace(" ", "-")
    body = html.escape(status)
    if message:
        body = f"<details><summary>{body}</summary><pre>{html.escape(message)}</pre></details>"
    return f'<td class="{css}">{body}</td>'


def _grid(rows: pd.DataFrame, counted: str) -> str:
    """Students down, items across (in numeric order), each cell a status and its message; the
    second column counts each student's items with status ``counted``."""
    items = sorted(rows["item"].unique(), key=lambda s: [int(x) if x.isdigit() else x for x in s.split(".")])
    head = "".join(f"<th>{html.escape(i)}</th>" for i in items)
    lines = [f"<table><tr><th>student</th><th>{counted}</th>{head}</tr>"]
    for student, mine in rows.groupby("student", sort=True):
        by_item = {r.item: r for r in mine.itertuples()}
        cells = "".join(_status_cell(by_item[i].status, by_item[i].message or "") if i in by_item
                        else "<td></td>" for i in items)
        count = int((mine.status == counted).sum())
        lines.append(f"<tr><th>{html.escape(student)}</th><td>{count} / {len(mine)}</td>{cells}</tr>")
    return "\n".join([*lines, "</table>"])


def _metrics_tables(metrics: pd.DataFrame) -> str:
    """Per notebook: students down, the run's profile, seed and data, then its metrics."""
    parts = []
    metrics = metrics.assign(value=metrics["value"].astype(float),
                             **{k: metrics[k].fillna("?").astype(str) for k in ("profile", "seed", "data")})
    for notebook, part in metrics.groupby("notebook", sort=True):
        wide = part.pivot_table(index=["student", "profile", "seed", "data"], columns="item",
                                values="value", aggfunc="last", sort=False)
        parts.append(f"<h3>notebook {html.escape(notebook)}</h3>"
                     + wide.reset_index().to_html(index=False, escape=True, float_format="{:.4g}".format))
    return "\n".join(parts) or "<p>No notebook carried a results record.</p>"


def _answers(table: pd.DataFrame, course_paths: list[Path]) -> str:
    """Per question: the question, the model answer, then every student's answer."""
    parts = []
    answers = table[table.kind == "answer"]
    for path in course_paths:
        cells = nbformat.read(path, as_version=4).cells
        for i, cell in enumerate(cells):
            if not is_answer(cell):
                continue
            qid = question_id(cell)
            question = cells[i - 1].source if i > 0 else ""
            rows = [f"<tr><th>model answer</th><td><div class='text'>{html.escape(cell.source)}</div></td></tr>"]
            for r in answers[answers.item == qid].itertuples():
                text = r.message if r.status == "answered" else f"({r.status})"
                rows.append(f"<tr><th>{html.escape(r.student)}</th>"
                            f"<td class='{r.status.replace(' ', '-')}'><div class='text'>{html.escape(text)}</div></td></tr>")
            parts.append(f"<h3>Question {html.escape(qid)}</h3><div class='text'>{html.escape(question)}</div>"
                         f"<table>{''.join(rows)}</table>")
    return "\n".join(parts) or "<p>The graded notebooks hold no written questions.</p>"


def report_html(table: pd.DataFrame, course_paths: list[Path]) -> str:
    """The whole report as one HTML page (every text from a submission escaped)."""
    return "\n".join([
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Grading report</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Grading report</h1>",
        f"<p>Exercises and checks re-run at the smoke profile on the stand-in data "
        f"({html.escape(', '.join(p.stem for p in course_paths))}); metrics are those of each "
        "student's own run, as saved in their notebook.</p>",
        "<h2>Notebooks</h2>", _grid(table[table.kind == "notebook"], "graded"),
        "<h2>Checks</h2>", _grid(table[table.kind == "check"], "passed"),
        "<h2>Metrics</h2>", _metrics_tables(table[table.kind == "metric"]),
        "<h2>Written answers</h2>", _answers(table, course_paths),
        "</body></html>",
    ])

