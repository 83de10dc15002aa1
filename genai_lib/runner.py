"""Execute chapter notebooks headless, with papermill, and time them."""

from __future__ import annotations

import ast
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genai_lib.config import REPO_DATA_DIR

CHAPTERS_DIR = REPO_DATA_DIR.parent / "chapters"


@dataclass
class RunResult:
    chapter: str
    seconds: float
    ok: bool
    output: Path
    error: str = ""


def list_chapters(folder: Path = CHAPTERS_DIR) -> list[Path]:
    """The chapter notebooks, in course order."""
    return sorted(p for p in folder.glob("[0-9]*.ipynb"))


def find_chapters(name: str, folder: Path = CHAPTERS_DIR) -> list[Path]:
    """Resolve ``"00"``, ``"01a"``, ``"01a_vae_math"`` or a path to chapter notebooks.

    A bare number names every part of a chapter: ``"01"`` gives 01a and 01b.
    """
    path = Path(name)
    if path.suffix == ".ipynb" and path.is_file():
        return [path]
    chapters = list_chapters(folder)
    for matches in (
        [p for p in chapters if p.stem == name],
        [p for p in chapters if p.stem.split("_")[0] == name],
        [p for p in chapters if p.stem.split("_")[0].rstrip("abcdefgh") == name],
    ):
        if matches:
            return matches
    known = ", ".join(p.stem for p in chapters) or f"none found in {folder}"
    raise ValueError(f"No chapter matches {name!r}. Chapters: {known}.")


_UNKNOWN = object()  # a parameter whose default is not a plain literal


def chapter_parameters(notebook: Path) -> dict[str, Any]:
    """The names a chapter's ``parameters`` cell assigns, each with its default (the full-mode one of a ``pick``).

    A default that is not a plain literal is given as ``None`` to callers who
    only need the names; :func:`check_parameters` then accepts any value for it.
    """
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    cells = [
        c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])
    ]
    found: dict[str, Any] = {}
    for cell in cells:
        for node in ast.parse(cell.source).body:
            if not isinstance(node, ast.Assign):
                continue
            names = [
                t
                for target in node.targets
                for t in (target.elts if isinstance(target, ast.Tuple) else [target])
            ]
            values = (
                node.value.elts
                if isinstance(node.value, ast.Tuple) and len(names) > 1
                else [node.value]
            )
            if isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "pick":
                full = next((k.value for k in node.value.keywords if k.arg == "full"), None)
                values = full.elts if isinstance(full, ast.Tuple) and len(names) > 1 else [full]
            for i, name in enumerate(names):
                if isinstance(name, ast.Name):
                    try:
                        found[name.id] = (
                            ast.literal_eval(values[i]) if i < len(values) else _UNKNOWN
                        )
                    except (ValueError, TypeError, SyntaxError):
                        found[name.id] = _UNKNOWN
    return found


def check_parameters(notebook: Path, parameters: dict[str, Any]) -> None:
    """Raise :class:`ValueError` for a parameter the chapter does not have, or a value of the wrong kind.

    The message lists the chapter's parameters with their defaults. A value
    may replace a default of the same type (an int for a float is fine), and
    anything may replace ``None`` or a default that is not a plain literal.
    """
    known = chapter_parameters(notebook)
    listing = ", ".join(f"{k}={'...' if v is _UNKNOWN else repr(v)}" for k, v in known.items())
    for name, value in parameters.items():
        if name not in known:
            raise ValueError(
                f"{notebook.stem} has no parameter {name!r}. Its parameters: {listing}."
            )
        default = known[name]
        if default is _UNKNOWN or default is None:
            continue
        ok = (
            isinstance(value, type(default))
            or (isinstance(default, float) and isinstance(value, int))
            or (isinstance(default, (list, tuple)) and isinstance(value, (list, tuple)))
        )
        # True is an int to Python, not here
        if isinstance(value, bool) and not isinstance(default, bool):
            ok = False
        if not ok:
            raise ValueError(
                f"{notebook.stem}: {name} should be a {type(default).__name__} like its default "
                f"{default!r}; got {value!r} ({type(value).__name__}). Its parameters: {listing}."
            )


def parse_value(text: str) -> Any:
    """A parameter value from the command line: a Python literal if it is one, else a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def refuse_to_overwrite(
    targets: list[Path], sources: list[Path], flag: str = "--overwrite"
) -> None:
    """Raise :class:`FileExistsError` if writing ``targets`` would replace a file that exists.

    The message names the files, says which of them are the course's own
    ``sources`` (written over, their solutions and outputs would be lost), and
    names the ``flag`` that allows it.
    """
    existing = [t for t in targets if t.exists()]
    if not existing:
        return
    source_set = {s.resolve() for s in sources}
    own = [t for t in existing if t.resolve() in source_set]
    names = "\n".join(
        f"  {t}" + ("   (a chapter of the course itself)" if t in own else "") for t in existing
    )
    why = (
        "Writing there would replace the course's own chapters. Choose another folder with --out. "
        if own
        else "They may hold your own work. Choose another folder with --out, "
    )
    raise FileExistsError(
        f"Not writing: {len(existing)} file(s) already exist:\n{names}\n{why}"
        f"or pass {flag} if you really mean to replace them."
    )


def run_chapter(
    notebook: Path,
    out_dir: Path,
    parameters: dict[str, Any] | None = None,
    fast: bool | None = None,
) -> RunResult:
    """Execute ``notebook`` top to bottom into ``out_dir`` and time it.

    ``fast=True``/``False`` sets ``GENAI_FAST`` for the kernel; ``None`` keeps
    this process's setting. Figures are kept: ``MPLBACKEND`` is removed from
    the kernel's environment, since a non-inline backend makes them vanish.
    Training runs print one summary line each instead of a progress bar, so the
    saved notebook records each run in a line, not in bar fragments.
    """
    import papermill  # imported here: it is slow to import and only this needs it

    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / notebook.name
    saved_env = dict(os.environ)
    os.environ.pop("MPLBACKEND", None)
    # one line per training run in the saved notebook, no bar fragments
    os.environ["GENAI_PROGRESS"] = "summary"
    if fast is not None:
        os.environ["GENAI_FAST"] = "1" if fast else "0"
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=parameters or {},
            cwd=str(notebook.parent),
            progress_bar=True,
        )
        return RunResult(notebook.stem, time.perf_counter() - start, True, output)
    except Exception as err:  # papermill raises PapermillExecutionError with the cell's traceback
        first_line = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        return RunResult(notebook.stem, time.perf_counter() - start, False, output, first_line)
    finally:
        os.environ.clear()
        os.environ.update(saved_env)


def format_table(results: list[RunResult]) -> str:
    """A plain-text table of wall times and statuses."""
    width = max([len(r.chapter) for r in results] + [7])
    lines = [f"{'chapter':<{width}}  {'status':<6}  {'seconds':>8}", "-" * (width + 18)]
    for r in results:
        lines.append(f"{r.chapter:<{width}}  {'ok' if r.ok else 'FAILED':<6}  {r.seconds:>8.1f}")
    lines.append(f"{'total':<{width}}  {'':<6}  {sum(r.seconds for r in results):>8.1f}")
    for r in results:
        if not r.ok:
            lines.append(f"{r.chapter}: {r.error}  (see {r.output})")
    return "\n".join(lines)
