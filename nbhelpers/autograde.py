"""The grader's worker: run one notebook's setup, exercise and check cells here, one outcome per check.

``nbhelpers.grading`` starts one fresh process per student notebook with the cells to run (a JSON
list of steps, built from the course's and the student's notebook); this module runs them in
order and writes each check's outcome as a JSON line the moment it is known, so that what a
killed process finished still counts. It imports nothing heavy (no pandas, no nbformat), because
every student notebook pays for its start.
"""

from __future__ import annotations

import contextlib
import io
import json
import signal
import sys
from collections.abc import Callable
from typing import Any

from nbhelpers.exercises import CheckFailed, ExerciseNotDone

MAX_MESSAGE = 4000  # characters kept of a check's output or a student's error


class CellTimeout(BaseException):
    """A cell ran past its time (a BaseException, so a student's ``except Exception`` cannot hide it)."""


def _alarm(signum: int, frame: Any) -> None:
    raise CellTimeout


def describe(err: BaseException) -> str:
    """An exception in one line of words (a SyntaxError with its line)."""
    if isinstance(err, SyntaxError):
        return f"SyntaxError: {err.msg} (line {err.lineno}: {(err.text or '').strip()})"
    return f"{type(err).__name__}: {err}"[:MAX_MESSAGE]


def _execute(source: str, name: str, namespace: dict[str, Any],
             seconds: float) -> tuple[BaseException | None, str]:
    """Run one cell's code in ``namespace`` within ``seconds``; return (its error or None, its output)."""
    out = io.StringIO()
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            exec(compile(source, name, "exec"), namespace)
        error = None
    except CellTimeout:
        error = TimeoutError(f"the cell ran past {seconds:.0f} s")
    except (Exception, SystemExit) as err:  # the student's code: any error is a finding
        error = err
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return error, out.getvalue()[-MAX_MESSAGE:]


def run_steps(steps: list[dict[str, str]], *, seconds: float,
              emit: Callable[[dict[str, str]], Any]) -> None:
    """Run the steps in order in one namespace; ``emit`` a row (item, status, message) per check.

    A step is ``{"kind": "setup" | "exercise" | "check", "item": "5.1", "source": ...}``; an
    exercise step with ``"missing"`` instead of a source says why the student's cell is absent.
    """
    signal.signal(signal.SIGALRM, _alarm)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    setup: str | None = None  # why no check can run (a setup cell failed)
    written: str | None = None  # why the current exercise's check cannot run
    for step in steps:
        kind, item = step["kind"], step["item"]
        if kind == "exercise" and "missing" in step:
            written = step["missing"]
            continue
        if kind == "check" and (setup or written):
            emit({"item": item, "status": "crashed", "message": setup or written})
            continue
        error, output = _execute(step["source"], f"{kind} {item}", namespace, seconds)
        if kind == "setup":
            if error is not None and setup is None:
                setup = f"the notebook's setup cell raised {describe(error)}"
        elif kind == "exercise":
            written = None if error is None else f"the exercise cell raised {describe(error)}"
        elif error is None:
            emit({"item": item, "status": "passed", "message": output.strip()})
        elif isinstance(error, ExerciseNotDone):
            emit({"item": item, "status": "not done", "message": str(error)})
        elif isinstance(error, CheckFailed):
            emit({"item": item, "status": "failed", "message": str(error)})
        else:
            emit({"item": item, "status": "crashed", "message": describe(error)})


def main(steps_path: str, rows_path: str, seconds: str) -> None:
    """The worker process: the steps from ``steps_path``, one JSON line per check to ``rows_path``."""
    with open(steps_path, encoding="utf-8") as f:
        steps = json.load(f)
    with open(rows_path, "a", encoding="utf-8") as rows:
        def emit(row: dict[str, str]) -> None:
            rows.write(json.dumps(row) + "\n")
            rows.flush()  # what a killed process wrote stays

        run_steps(steps, seconds=float(seconds), emit=emit)


if __name__ == "__main__":
    main(*sys.argv[1:])
