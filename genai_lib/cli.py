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

    pretrain = commands.add_parser("pretrain", help="train the base GPT that chapter 04 fine-tunes",
                                   description="Train the course's base character GPT on the bundled pydoc "
                                               "text and write it (safetensors + JSON with its SHA-256) to --out.")
    pretrain.add_argument("--steps", type=int, default=1200, help="training steps (default: %(default)s)")
    pretrain.add_argument("--seed", type=int, default=0)
    pretrain.add_argument("--out", type=Path, default=None,
                          help="folder for the files (default: the repository's data/pretrained)")

    badges = commands.add_parser("badges", help="rewrite every chapter's Colab badge and setup cell",
                                 description="Write the 'Open in Colab' badge and the setup cell of every chapter "
                                             "from the repository address in genai_lib/colab.py. With --repo "
                                             "or --ref, first change that address (for a fork or a tag).")
    badges.add_argument("--repo", help="the GitHub repository, OWNER/NAME")
    badges.add_argument("--ref", help="the branch or tag the badges point at (default: the current one)")

    args = parser.parse_args(argv)
    if args.command == "badges":
        return _badges(parser, args)
    if args.command == "run":
        return _run(parser, args)
    if args.command == "pretrain":
        return _pretrain(args, argv)
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


def _badges(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from genai_lib import colab, runner

    repo, ref = args.repo or colab.REPOSITORY, args.ref or colab.REF
    try:
        colab.check_repository(repo, ref)
    except ValueError as err:
        parser.error(f"badges: {err}")
    if (repo, ref) != (colab.REPOSITORY, colab.REF):
        colab.set_repository(repo, ref)
        print(f"genai_lib/colab.py now points at {repo} @ {ref}")
    for nb in runner.list_chapters():
        changed = colab.apply_to_notebook(nb, repo, ref)
        print(f"{'updated ' if changed else 'unchanged'} {nb.name}")
    return 0


def _pretrain(args: argparse.Namespace, argv: list[str] | None) -> int:
    import json

    from genai_lib.pretrained import pretrain_base

    command = "python -m genai_lib " + " ".join(sys.argv[1:] if argv is None else argv)
    meta_path = pretrain_base(args.out, steps=args.steps, seed=args.seed, command=command)
    meta = json.loads(meta_path.read_text())
    print(f"Saved {meta_path} and {meta['weights_file']}: validation {meta['val_bits_per_char']} bits per "
          f"character after {meta['steps']} steps ({meta['train_seconds']} s); SHA-256 {meta['sha256']}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
