"""Command line: ``python -m nbhelpers run | summary | data``."""

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
    from nbhelpers.data import status

    print(settings.current().describe())
    print(status().to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
