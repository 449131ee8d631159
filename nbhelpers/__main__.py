"""Command line: ``python -m nbhelpers run | summary | data | student | grade``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nbhelpers import settings


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command."""
    parser = argparse.ArgumentParser(prog="python -m nbhelpers", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute notebooks headless and export HTML (the main job)")
    run.add_argument("notebooks", nargs="*", help="name prefixes, e.g. 01 03 (default: all)")
    run.add_argument("--profile", choices=settings.PROFILES, help="overrides NBH_PROFILE")
    run.add_argument("--out", type=Path, help="folder for executed copies and HTML (default build/<profile>)")
    run.add_argument("--inplace", action="store_true", help="also overwrite the notebooks with their outputs")
    run.add_argument("--fresh", action="store_true", help="ignore existing checkpoints: train from scratch")
    run.add_argument("--timeout", type=int, default=3600, help="seconds allowed per cell")
    summary = sub.add_parser("summary", help="every notebook's results as one Markdown table")
    summary.add_argument("--write", type=Path, help="also write the summary to this file")
    sub.add_parser("data", help="which datasets are present, downloadable, or would use a stand-in")
    student = sub.add_parser("student", help="write the student edition (stubs, no answers, no outputs)")
    student.add_argument("out", type=Path, help="a new (or empty) folder for it")
    grade = sub.add_parser("grade", help="re-run every student's exercises and checks; write a report")
    grade.add_argument("submissions", type=Path, help="one folder per student, holding their notebooks")
    grade.add_argument("--out", type=Path, required=True, help="folder for report.html and report.csv")
    grade.add_argument("--notebooks", nargs="+", metavar="NN", help="grade only these, e.g. 03 05 (default: 01-05)")
    grade.add_argument("--timeout", type=float, default=600.0, help="seconds allowed per student notebook")
    grade.add_argument("--cell-timeout", type=float, default=120.0, help="seconds allowed per cell")
    args = parser.parse_args(argv)
    try:
        return _command(args)
    except settings.SettingsError as err:  # a bad NBH_* variable: the message names it and the fix
        print(f"python -m nbhelpers: {err}", file=sys.stderr)
        return 2


def _command(args: argparse.Namespace) -> int:
    """Run the parsed command; return the exit status."""
    if args.command == "run":
        from nbhelpers.runner import run as run_notebooks

        return run_notebooks(args.notebooks, profile=args.profile, out_dir=args.out,
                             inplace=args.inplace, fresh=args.fresh, timeout=args.timeout)
    if args.command == "summary":
        from nbhelpers.results import summary as results_summary

        text = results_summary()
        print(text)
        if args.write:
            args.write.write_text(text + "\n")
        return 0
    if args.command in ("student", "grade"):
        try:
            return _student(args.out) if args.command == "student" else _grade(args)
        except (FileNotFoundError, FileExistsError) as err:  # a wrong folder: the message says which
            print(f"python -m nbhelpers {args.command}: {err}", file=sys.stderr)
            return 2
    from nbhelpers.data import status

    print(settings.current().describe())
    print(status().to_string(index=False))
    return 0


def _grade(args: argparse.Namespace) -> int:
    """Grade the class; print each student's count of check outcomes and where the report is."""
    from nbhelpers.grading import grade

    table = grade(args.submissions, args.out, notebooks=args.notebooks, timeout=args.timeout,
                  cell_timeout=args.cell_timeout)
    checks = table[table.kind == "check"]
    print(checks.groupby("student").status.value_counts().unstack(fill_value=0).to_string())
    print(f"report: {args.out / 'report.html'} and {args.out / 'report.csv'}")
    return 0


def _student(out: Path) -> int:
    """Write the student edition; fail, naming every line, if solution text reached it."""
    from nbhelpers.editions import MIN_LEAK_CHARS, write_edition

    found = write_edition(out)
    if found:
        print(f"solution text reached the student edition in {out} (lines of {MIN_LEAK_CHARS}+ "
              "characters); do not hand it out:\n  " + "\n  ".join(found), file=sys.stderr)
        return 1
    print(f"student edition written to {out}: notebooks/, the nbhelpers package, README.md; "
          "no solution line found in it.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
