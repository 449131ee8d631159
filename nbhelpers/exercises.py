"""Exercises: the stub an unfinished exercise raises, and the check cells' report.

A notebook's exercise is a function the student writes between nbgrader's solution markers; the
student edition (``python -m nbhelpers student``) replaces that region with ``todo(...)``. The
check cell after it calls one function of ``nbhelpers.checks``, which probes the student's function
on hand-computed cases and properties and prints one line per finding.

Both errors below render in Jupyter as their message alone (IPython's ``_render_traceback_``),
so a student sees "Exercise 5.1 is not done yet: ..." rather than a traceback, while nbgrader's
autograder and ``nbhelpers grade`` still see a failing cell.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, TypeVar


class _MessageOnly(Exception):
    """An error that IPython shows as its message, without a traceback."""

    def _render_traceback_(self) -> list[str]:
        return str(self).splitlines()


class ExerciseNotDone(_MessageOnly, NotImplementedError):
    """Raised by the stub of an exercise the student has not written yet."""

    def __init__(self, exercise: str, name: str) -> None:
        self.exercise, self.name = exercise, name
        notebook = exercise.split(".")[0].zfill(2)
        super().__init__(f"Exercise {exercise} is not done yet: write `{name}` in the cell headed "
                         f"'# Exercise {exercise}' (notebook {notebook}), run that cell, then run this "
                         "one again.")


class CheckFailed(_MessageOnly, AssertionError):
    """Raised by a check cell when any finding failed; its message lists every finding."""


def todo(exercise: str, name: str) -> NoReturn:
    """The body of an unfinished exercise: raise the message that names it."""
    raise ExerciseNotDone(exercise, name)


class Report:
    """The findings of one check: ``ok`` for each property tested, then ``finish``."""

    def __init__(self, exercise: str, title: str) -> None:
        self.exercise, self.title = exercise, title
        self.lines: list[str] = []
        self.failed = 0

    def ok(self, passed: bool, what: str, detail: str = "") -> bool:
        """Record one finding: ``what`` was tested; ``detail`` says what was expected and found."""
        self.failed += not passed
        mark = "PASS" if passed else "FAIL"
        self.lines.append(f"  {mark}  {what}" + ("" if passed or not detail else f"\n        {detail}"))
        return passed

    def close(self, value: Any, expected: Any, what: str, *, atol: float = 1e-5) -> bool:
        """A finding that a number (or tensor) equals a hand-computed value within ``atol``."""
        import torch

        got = torch.as_tensor(value, dtype=torch.float64)
        want = torch.as_tensor(expected, dtype=torch.float64)
        passed = got.shape == want.shape and bool(torch.allclose(got, want, atol=atol, rtol=0))
        shown = got.tolist() if got.numel() <= 8 else f"a tensor of shape {tuple(got.shape)}"
        return self.ok(passed, what, f"expected {want.tolist() if want.numel() <= 8 else tuple(want.shape)}, "
                                     f"got {shown}")

    def hint(self, passed: bool, hint: str) -> None:
        """Add a hint under the last finding when it failed."""
        if not passed:
            self.lines[-1] += f"\n        hint: {hint}"

    def text(self) -> str:
        head = f"Exercise {self.exercise} ({self.title}): "
        head += "all checks passed." if not self.failed else f"{self.failed} of {len(self.lines)} checks failed."
        return "\n".join([head, *self.lines])

    def finish(self) -> None:
        """Print the findings; raise :class:`CheckFailed` with them if any failed."""
        if self.failed:
            raise CheckFailed(self.text())
        print(self.text())


def is_scalar(value: object) -> bool:
    """A 0-dimensional tensor: what a loss must be to be minimised."""
    import torch

    return isinstance(value, torch.Tensor) and value.dim() == 0


@contextlib.contextmanager
def seeded(seed: int = 0) -> Iterator[None]:
    """Seed torch's CPU generator inside the block and restore the caller's state after it, so a
    check never moves the notebook's random stream."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


F = TypeVar("F", bound=Callable[..., None])


def check(exercise: str, title: str) -> Callable[[F], F]:
    """Make ``fn(report, *student_functions)`` a check: it gets a fresh :class:`Report`.

    A student function that raises is a failed finding with the error named (never a traceback);
    an unfinished one re-raises its own "not done yet" message.
    """

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> None:
            report = Report(exercise, title)
            try:
                fn(report, *args, **kwargs)
            except (ExerciseNotDone, CheckFailed):
                raise
            except Exception as e:  # the student's code raised: say which error, as a finding
                report.ok(False, "your function runs on the check's inputs",
                          f"it raised {type(e).__name__}: {e}")
            report.finish()

        run.exercise = exercise  # type: ignore[attr-defined]
        return run  # type: ignore[return-value]

    return wrap
