"""The grader on a small fake class, built here from the solution and student editions.

One notebook only (``--notebooks``), the one whose exercises and checks run fastest, so that
the five students take seconds each.
"""

import copy
import csv

import nbformat
import pytest

from nbhelpers import settings
from nbhelpers.__main__ import main
from nbhelpers.editions import (
    fill_solutions,
    is_answer,
    is_exercise,
    solution_regions,
    student_notebook,
)
from nbhelpers.results import RESULTS_MIME

GRADED = "05"
PATH = next((settings.REPO_ROOT / "notebooks").glob(f"{GRADED}_*.ipynb"))
RECORD = {"notebook": PATH.stem, "profile": "smoke", "seed": 3, "data": {"MNIST": {"kind": "standin"}},
          "metrics": {"vae_test_neg_elbo_nats": 123.5}}


def executed(nb, record=None):
    """``nb`` as if run: execution counts, and the results output a run leaves."""
    nb = copy.deepcopy(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    for i, cell in enumerate(code, 1):
        cell.execution_count = i
    if record:
        code[-1].outputs = [nbformat.v4.new_output("display_data", data={"text/plain": "results saved",
                                                                          RESULTS_MIME: record})]
    return nb


def forgets_to_return(nb):
    """The first exercise whose solution ends in ``return ...``, computing its result but returning
    None: a plausible slip. Returns the exercise's grade_id."""
    for cell in filter(is_exercise, nb.cells):
        lines = cell.source.split("\n")
        for region in solution_regions(cell.source):
            last = region.end - 1
            if lines[last].strip().startswith("return "):
                lines[last] = lines[last].replace("return ", "", 1)
                cell.source = "\n".join(lines)
                return cell.metadata.nbgrader["grade_id"]
    raise AssertionError(f"no exercise of {PATH.name} ends its solution with a return")


def breaks_syntax(nb):
    """A syntax error in the last exercise cell; returns its grade_id."""
    cell = [c for c in nb.cells if is_exercise(c)][-1]
    cell.source += "\n\ndef unfinished(:\n"
    return cell.metadata.nbgrader["grade_id"]


def exercise_of(grade_id):
    number, sub = grade_id.removeprefix("ex").split("_")
    return f"{int(number)}.{sub}"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The fake class, graded through the command line; (rows by student, the report folder, what broke)."""
    root = tmp_path_factory.mktemp("class")
    solution = nbformat.read(PATH, as_version=4)
    student = student_notebook(solution, PATH)
    filled = fill_solutions(student, solution)
    wrong, crashing = copy.deepcopy(filled), copy.deepcopy(filled)
    slip = forgets_to_return(wrong)
    wrong.cells[[i for i, c in enumerate(wrong.cells) if is_answer(c)][0]].source = "<script>alert(1)</script>"
    broken = breaks_syntax(crashing)
    folders = {"ada": executed(filled, RECORD), "bob": executed(student), "cyd": executed(wrong),
               "dee": executed(crashing), "eve": None, "fay": "{not json", "gus": student}
    for name, nb in folders.items():
        (root / "in" / name).mkdir(parents=True)
        if isinstance(nb, str):
            (root / "in" / name / PATH.name).write_text(nb)
        elif nb is not None:
            nbformat.write(nb, root / "in" / name / PATH.name)
    assert main(["grade", str(root / "in"), "--out", str(root / "report"), "--notebooks", GRADED,
                 "--timeout", "300"]) == 0
    with open(root / "report" / "report.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    by_student = {name: [r for r in rows if r["student"] == name] for name in folders}
    return by_student, root / "report", {"slip": exercise_of(slip), "broken": exercise_of(broken)}


def statuses(rows, kind):
    return {r["item"]: r["status"] for r in rows if r["kind"] == kind}


def test_the_report_exists_with_one_row_per_student_and_item(graded):
    by_student, report, _ = graded
    assert (report / "report.html").stat().st_size > 0 and (report / "report.csv").stat().st_size > 0
    checks = {name: sorted(statuses(rows, "check")) for name, rows in by_student.items()}
    assert checks["ada"] and all(items == checks["ada"] for items in checks.values())


def test_a_complete_submission_passes_every_check_and_shows_its_results(graded):
    rows = graded[0]["ada"]
    assert set(statuses(rows, "check").values()) == {"passed"}
    assert set(statuses(rows, "answer").values()) == {"answered"}
    [metric] = [r for r in rows if r["kind"] == "metric"]
    assert (metric["item"], float(metric["value"]), metric["profile"], metric["seed"], metric["data"]) == (
        "vae_test_neg_elbo_nats", 123.5, "smoke", "3", "MNIST: standin")


def test_an_untouched_student_edition_is_not_done(graded):
    rows = graded[0]["bob"]
    assert set(statuses(rows, "check").values()) == {"not done"}
    assert set(statuses(rows, "answer").values()) == {"not answered"}
    for r in rows:
        if r["kind"] == "check":
            assert r["message"].startswith(f"Exercise {r['item']} is not done yet")


def test_a_wrong_answer_fails_its_check_only(graded):
    rows, slip = graded[0]["cyd"], graded[2]["slip"]
    checks = statuses(rows, "check")
    assert checks.pop(slip) == "failed" and set(checks.values()) == {"passed"}
    [message] = [r["message"] for r in rows if r["kind"] == "check" and r["item"] == slip]
    assert message.startswith(f"Exercise {slip} (") and "FAIL" in message


def test_a_crashing_cell_is_a_row_not_a_crash(graded):
    rows, broken = graded[0]["dee"], graded[2]["broken"]
    checks = statuses(rows, "check")
    assert checks.pop(broken) == "crashed" and set(checks.values()) == {"passed"}
    [message] = [r["message"] for r in rows if r["kind"] == "check" and r["item"] == broken]
    assert "SyntaxError" in message


@pytest.mark.parametrize("student,status", [("eve", "missing"), ("fay", "unreadable"), ("gus", "not executed")])
def test_a_notebook_that_cannot_be_graded_says_why(graded, student, status):
    rows = graded[0][student]
    assert statuses(rows, "notebook") == {PATH.stem: status}
    assert set(statuses(rows, "check").values()) == set(statuses(rows, "answer").values()) == {status}


def test_the_html_report_escapes_what_students_wrote(graded):
    text = (graded[1] / "report.html").read_text()
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "ada" in text and "vae_test_neg_elbo_nats" in text
