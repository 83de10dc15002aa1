"""The command line: ``python -m genai_lib COMMAND`` (or ``genai COMMAND``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genai_lib.config import user_cache_dir

FETCHABLE = ("mnist", "fashion", "tinyshakespeare", "gpt2")  # `python -m genai_lib data fetch NAME`


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m genai_lib",
        description="Tools for the course 'Generative AI, from theory to practice'.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="execute chapters headless and time them",
        description="Execute chapter notebooks top to bottom with papermill, "
        "write the executed copies to --out, and print a timing table.",
    )
    run.add_argument(
        "chapters",
        nargs="*",
        metavar="CHAPTER",
        help="a number (00, or 01 for all its parts), a part (01a), a name or a path",
    )
    run.add_argument("--all", action="store_true", help="run every chapter, in order")
    mode = run.add_mutually_exclusive_group()
    mode.add_argument(
        "--fast", action="store_true", help="fast mode: tiny data, few steps (GENAI_FAST=1)"
    )
    mode.add_argument(
        "--full", action="store_true", help="the full lesson even if GENAI_FAST is set"
    )
    run.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="override a parameters-cell value, e.g. -p seed 3 (repeatable)",
    )
    run.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"folder for the executed notebooks (default: {user_cache_dir() / 'runs'}, "
        "where each run replaces the last)",
    )
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="replace notebooks that already exist in an --out folder you chose",
    )

    pretrain = commands.add_parser(
        "pretrain",
        help="train the models that ship in data/ (chapter 04's base GPT)",
        description="Train the course's base character GPT on the bundled pydoc "
        "text and write it (safetensors + JSON with its SHA-256) to --out. "
        "With --classifier, train the pinned digit classifier that "
        "scores generated digits (FD-digits) instead.",
    )
    pretrain.add_argument(
        "--classifier",
        action="store_true",
        help="make the pinned 8x8-digit classifier (data/classifiers/digits.*) instead",
    )
    pretrain.add_argument(
        "--steps",
        type=int,
        default=None,
        help="training steps (default: 1200 for the GPT, 1000 for the classifier)",
    )
    pretrain.add_argument("--seed", type=int, default=0)
    pretrain.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for the files (default: the repository's data/pretrained, "
        "or data/classifiers with --classifier)",
    )

    badges = commands.add_parser(
        "badges",
        help="rewrite every chapter's Colab badge and setup cell",
        description="Write the 'Open in Colab' badge and the setup cell of every chapter "
        "from the repository address in genai_lib/colab.py. With --repo "
        "or --ref, first change that address (for a fork or a tag).",
    )
    badges.add_argument("--repo", help="the GitHub repository, OWNER/NAME")
    badges.add_argument(
        "--ref", help="the branch or tag the badges point at (default: the current one)"
    )

    pack = commands.add_parser(
        "pack",
        help="one zip file of the course, to install in Colab without a repository",
        description="Write the course (genai_lib, its shipped data, the chapters) into one "
        "zip file. In Colab, upload it into the Files pane (or Google Drive, "
        "MyDrive/) and run a chapter's setup cell: it installs the course "
        "from the file. Anywhere: pip install FILE.",
    )
    pack.add_argument(
        "--out",
        type=Path,
        default=Path("genai-course.zip"),
        help="the zip file (default: %(default)s)",
    )
    pack.add_argument("--overwrite", action="store_true", help="replace --out if it exists")

    student = commands.add_parser(
        "student",
        help="write the student edition (exercise solutions taken out)",
        description="Copy every chapter with each cell tagged 'solution' replaced by "
        "a stub that raises NotImplementedError with a hint, and all "
        "outputs cleared. The check cells then say 'Not done yet'.",
    )
    student.add_argument(
        "--out",
        type=Path,
        default=Path("student_edition"),
        help="folder for the student notebooks (default: %(default)s)",
    )
    student.add_argument(
        "--overwrite",
        action="store_true",
        help="replace student notebooks that already exist there (your edits in them are lost)",
    )

    doctor = commands.add_parser(
        "doctor",
        help="check this machine: versions, device, data, run-time estimates",
        description="Check Python, the packages, the device, the data and the cache, "
        "and estimate each chapter's run time here from a short "
        "micro-benchmark. Exits with 1 if something a chapter needs is "
        "missing. Please include its output in a bug report.",
    )
    doctor.add_argument(
        "--no-benchmark", action="store_true", help="skip the micro-benchmark and the estimates"
    )

    data = commands.add_parser(
        "data",
        help="download optional datasets and models (the offline workshop kit)",
        description="Download the optional datasets (checked against their SHA-256) and "
        "models into the cache, once, on a good connection. Copy the cache "
        "folder to other machines to run the course offline there.",
    )
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    fetch = data_commands.add_parser("fetch", help="download NAME..., or --all")
    fetch.add_argument("names", nargs="*", metavar="NAME", help=f"one of: {', '.join(FETCHABLE)}")
    fetch.add_argument(
        "--all", action="store_true", help="everything optional (GPT-2 is about 550 MB)"
    )

    args = parser.parse_args(argv)
    if args.command == "data":
        return _data_fetch(parser, args)
    if args.command == "doctor":
        return _doctor(args)
    if args.command == "student":
        return _student(args)
    if args.command == "badges":
        return _badges(parser, args)
    if args.command == "pack":
        return _pack(args)
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
        notebooks = (
            runner.list_chapters()
            if args.all
            else [nb for c in args.chapters for nb in runner.find_chapters(c)]
        )
    except ValueError as err:
        parser.error(f"run: {err}")
    if not notebooks:
        parser.error(f"run: no chapters found in {runner.CHAPTERS_DIR}")
    chosen_out = args.out is not None
    args.out = args.out if chosen_out else user_cache_dir() / "runs"
    # the default folder is the runner's own: each run replaces the last
    if chosen_out and not args.overwrite:
        try:
            runner.refuse_to_overwrite(
                [args.out / nb.name for nb in notebooks], runner.list_chapters()
            )
        except FileExistsError as err:
            parser.error(f"run: {err}")
    parameters = {name: runner.parse_value(value) for name, value in args.parameter}
    for nb in notebooks:
        try:
            runner.check_parameters(nb, parameters)
        except ValueError as err:
            parser.error(f"run: {err}")
    fast = True if args.fast else (False if args.full else None)
    results = []
    for nb in notebooks:
        print(f"== {nb.stem}", flush=True)
        results.append(runner.run_chapter(nb, args.out, parameters, fast))
    print()
    print(runner.format_table(results))
    print(f"\nExecuted notebooks are in {args.out}")
    return 0 if all(r.ok for r in results) else 1


def _data_fetch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.all == bool(args.names):
        parser.error("data fetch: name one or more datasets, or pass --all (not both)")
    unknown = [n for n in args.names if n not in FETCHABLE]
    if unknown:
        parser.error(
            f"data fetch: unknown name(s) {', '.join(unknown)}; choose from {', '.join(FETCHABLE)}"
        )
    failed = []
    for name in FETCHABLE if args.all else args.names:
        try:
            print(f"{name}: {_fetch(name)}", flush=True)
        except Exception as err:  # report every failure, then exit non-zero
            failed.append(name)
            print(f"{name}: FAILED: {err}", file=sys.stderr)
    if failed:
        print(
            f"Could not fetch {', '.join(failed)}; the messages above say why and what to do.",
            file=sys.stderr,
        )
    return 1 if failed else 0


def _fetch(name: str) -> str:
    from genai_lib.config import download_dir

    if name in ("mnist", "fashion"):
        from genai_lib.data import load_mnist

        data = load_mnist(name, download=True)
        return f"{len(data.train_images):,} + {len(data.val_images):,} images, verified, in {download_dir()}"
    if name == "tinyshakespeare":
        from genai_lib.data import load_text

        return f"{len(load_text(name, download=True)):,} characters, verified, in {download_dir()}"
    from genai_lib.hub import load_gpt2

    _, _, info = load_gpt2(name)
    return f"{info['parameters']:,} parameters, in the Hugging Face cache (~/.cache/huggingface)"


def _doctor(args: argparse.Namespace) -> int:
    from genai_lib import doctor

    checks, lines = doctor.run(benchmark=not args.no_benchmark)
    print(doctor.report(checks, lines))
    return 1 if doctor.failures(checks) else 0


def _student(args: argparse.Namespace) -> int:
    from genai_lib import runner
    from genai_lib.student import write_student_edition

    try:
        written = write_student_edition(runner.list_chapters(), args.out, overwrite=args.overwrite)
    except FileExistsError as err:
        print(f"student: {err}", file=sys.stderr)
        return 1
    for path, n in written:
        print(f"{path}: {n} exercise{'s' if n != 1 else ''} without solutions")
    return 0


def _pack(args: argparse.Namespace) -> int:
    from genai_lib.pack import files_to_pack, pack

    try:
        out = pack(args.out, overwrite=args.overwrite)
    except (FileExistsError, FileNotFoundError, IsADirectoryError) as err:
        print(f"pack: {err}", file=sys.stderr)
        return 1
    size = out.stat().st_size / 1e6
    print(
        f"Wrote {out} ({len(files_to_pack())} files, {size:.1f} MB). In Colab: upload it into the Files pane "
        f"(or to Google Drive, MyDrive/{out.name}), then run a chapter's first cell. Anywhere: pip install {out}"
    )
    if not (out.name.startswith("genai-course") and out.suffix == ".zip"):
        print(
            f"Note: the setup cell looks for genai-course*.zip; rename {out.name} before uploading it."
        )
    return 0


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
    if args.classifier:
        from genai_lib.classifiers import pin_classifier
        from genai_lib.data import load_digits

        meta_path = pin_classifier(
            load_digits(), args.out, steps=args.steps, seed=args.seed, command=command
        )
        meta = json.loads(meta_path.read_text())
        print(
            f"Saved {meta_path} and {meta['weights_file']}: held-out accuracy "
            f"{100 * meta['held_out_accuracy']:.1f}% ({meta['train_seconds']} s); SHA-256 {meta['sha256']}"
        )
        return 0
    meta_path = pretrain_base(args.out, steps=args.steps or 1200, seed=args.seed, command=command)
    meta = json.loads(meta_path.read_text())
    print(
        f"Saved {meta_path} and {meta['weights_file']}: validation {meta['val_bits_per_char']} bits per "
        f"character after {meta['steps']} steps ({meta['train_seconds']} s); SHA-256 {meta['sha256']}"
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
