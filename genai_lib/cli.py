"""The command line: ``python -m genai_lib COMMAND`` (or ``genai COMMAND``)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genai_lib.config import user_cache_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genai_lib",
                                     description="Tools for the course 'Generative AI, from theory to practice'.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="execute chapters headless and time them",
                              description="Execute chapter notebooks top to bottom with papermill, "
                                          "write the executed copies to --out, and print a timing table.")
    run.add_argument("chapters", nargs="*", metavar="CHAPTER", help="a number (00, or 01 for all its parts), a part (01a), a name or a path")
    run.add_argument("--all", action="store_true", help="run every chapter, in order")
    mode = run.add_mutually_exclusive_group()
    mode.add_argument("--fast", action="store_true", help="fast mode: tiny data, few steps (GENAI_FAST=1)")
    mode.add_argument("--full", action="store_true", help="the full lesson even if GENAI_FAST is set")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="override a parameters-cell value, e.g. -p seed 3 (repeatable)")
    run.add_argument("--out", type=Path, default=user_cache_dir() / "runs",
                     help="folder for the executed notebooks (default: %(default)s)")

    args = parser.parse_args(argv)
    if args.command == "run":
        return _run(parser, args)
    return 2  # pragma: no cover - argparse enforces a command


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from genai_lib import runner

    if args.all == bool(args.chapters):
        parser.error("run: name one or more chapters, or pass --all (not both)")
    try:
        notebooks = runner.list_chapters() if args.all else [nb for c in args.chapters for nb in runner.find_chapters(c)]
    except ValueError as err:
        parser.error(f"run: {err}")
    if not notebooks:
        parser.error(f"run: no chapters found in {runner.CHAPTERS_DIR}")
    parameters = {name: runner.parse_value(value) for name, value in args.parameter}
    fast = True if args.fast else (False if args.full else None)
    results = []
    for nb in notebooks:
        print(f"== {nb.stem}", flush=True)
        results.append(runner.run_chapter(nb, args.out, parameters, fast))
    print()
    print(runner.format_table(results))
    print(f"\nExecuted notebooks are in {args.out}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
