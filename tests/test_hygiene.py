"""What a committed chapter must look like to a reader on GitHub, in nbviewer or in Colab.

Every check is a function from a notebook (as JSON) to a list of problems; it is run on every
chapter, and on a small notebook that has the problem, so we see it catch one.
Also: the code is linted and formatted by ruff (its settings are in pyproject.toml).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
MAX_CODE_LINE = 100  # characters: a laptop screen with the notebook beside the file browser
MAX_NOTEBOOK_BYTES = 2_000_000

# A path of the machine that ran the notebook: a home folder, a temporary folder, this checkout.
MACHINE_PATH = re.compile(
    r"(/home/[^/\s\"']+|/Users/[^/\s\"']+|/root/|/tmp/|/private/var/|[A-Za-z]:\\\\Users\\\\|"
    + re.escape(str(Path.home()))
    + "/|"
    + re.escape(str(ROOT))
    + ")"
)
# tqdm's bar: "name:  45%|####5     | 45/100 [00:01<00:02, 30.1it/s]"
PROGRESS_FRAGMENT = re.compile(r"\d+%\|.*\|\s*\d+/\d+ \[|\d+(\.\d+)?(it|s)/s\]")


def read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def code_cells(nb: dict):
    return [(i, c) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]


def text_of(output: dict) -> str:
    if output.get("output_type") == "stream":
        return "".join(output.get("text", ""))
    data = output.get("data", {})
    return "".join(
        "".join(v) if isinstance(v, list) else str(v)
        for k, v in data.items()
        if k.startswith("text/")
    )


def long_code_lines(nb: dict) -> list[str]:
    return [
        f"cell {i}, line {j + 1}: {len(line)} characters"
        for i, cell in code_cells(nb)
        for j, line in enumerate("".join(cell["source"]).splitlines())
        if len(line) > MAX_CODE_LINE
    ]


def machine_paths(nb: dict) -> list[str]:
    found = [f"metadata: {m.group(0)}" for m in MACHINE_PATH.finditer(json.dumps(nb["metadata"]))]
    for i, cell in enumerate(nb["cells"]):
        found += [
            f"cell {i} metadata: {m.group(0)}"
            for m in MACHINE_PATH.finditer(json.dumps(cell["metadata"]))
        ]
        for output in cell.get("outputs", []):
            found += [
                f"cell {i} output: {m.group(0)}" for m in MACHINE_PATH.finditer(text_of(output))
            ]
    return found


def run_metadata(nb: dict) -> list[str]:
    """Traces of the run that produced the outputs: papermill's records, execution timestamps."""
    found = ["notebook metadata: papermill"] if "papermill" in nb["metadata"] else []
    for i, cell in enumerate(nb["cells"]):
        found += [
            f"cell {i} metadata: {key}"
            for key in ("papermill", "execution")
            if key in cell["metadata"]
        ]
    return found


def progress_fragments(nb: dict) -> list[str]:
    return [
        f"cell {i}: {text_of(o).strip()[:60]!r}"
        for i, cell in code_cells(nb)
        for o in cell.get("outputs", [])
        if PROGRESS_FRAGMENT.search(text_of(o))
    ]


def widgets_without_a_picture(nb: dict) -> list[str]:
    """A widget shows nothing in a static view (GitHub, nbviewer, print): what it shows must sit
    beside it, as a picture in the same cell or the next code cell, or (for a
    widget that writes text) as text printed by the same cell before the widget."""

    def kinds(cell: dict) -> set[str]:
        return {kind for o in cell.get("outputs", []) for kind in o.get("data", {})}

    cells = code_cells(nb)
    found = []
    for k, (i, cell) in enumerate(cells):
        if "application/vnd.jupyter.widget-view+json" not in kinds(cell):
            continue
        beside = [cell] + [cells[j][1] for j in (k + 1,) if j < len(cells)]
        outputs = cell["outputs"]
        first_widget = next(
            n
            for n, o in enumerate(outputs)
            if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
        )
        printed = "".join(
            text_of(o) for o in outputs[:first_widget] if o.get("output_type") == "stream"
        )
        if not any("image/png" in kinds(c) for c in beside) and not printed.strip():
            found.append(f"cell {i}: a widget with no static picture beside it")
    return found


def too_big(nb: dict, size: int) -> list[str]:
    return (
        [f"{size / 1e6:.1f} MB (limit {MAX_NOTEBOOK_BYTES / 1e6:.0f} MB)"]
        if size > MAX_NOTEBOOK_BYTES
        else []
    )


CHECKS = {
    "code lines within 100 characters": long_code_lines,
    "no paths of the machine that ran it": machine_paths,
    "no run metadata": run_metadata,
    "no progress-bar fragments in outputs": progress_fragments,
    "a static view beside every widget": widgets_without_a_picture,
}


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
@pytest.mark.parametrize("check", CHECKS, ids=lambda name: name.replace(" ", "_"))
def test_every_chapter(chapter, check):
    problems = CHECKS[check](read(chapter))
    assert not problems, f"{chapter.name}: {check}:\n" + "\n".join(problems[:20])


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_is_small_enough_to_open_anywhere(chapter):
    assert not too_big(read(chapter), chapter.stat().st_size), chapter.name


# ---------------------------------------------------------------- each check, seen to fail


def notebook(cells: list[dict], metadata: dict | None = None) -> dict:
    return {"cells": cells, "metadata": metadata or {}, "nbformat": 4, "nbformat_minor": 5}


def code(source: str, outputs: list[dict] | None = None, metadata: dict | None = None) -> dict:
    return {
        "cell_type": "code",
        "source": source,
        "outputs": outputs or [],
        "metadata": metadata or {},
    }


def stream(text: str, name: str = "stdout") -> dict:
    return {"output_type": "stream", "name": name, "text": text}


def test_each_check_catches_what_it_is_for():
    long_line = "x = " + "1 + " * 30 + "1"
    assert long_code_lines(notebook([code(long_line)])) and not long_code_lines(
        notebook([code("x = 1")])
    )

    home = str(Path.home())
    for leak in (
        stream(f"Saved to {home}/.cache/genai_lib/runs/x.pt\n"),
        stream("cache: /home/alice/.cache/genai_lib\n"),
        stream("wrote /tmp/tmpab12/model.pt\n"),
        {"output_type": "execute_result", "data": {"text/plain": f"PosixPath('{ROOT}/data')"}},
    ):
        assert machine_paths(notebook([code("print(path)", [leak])])), leak
    assert machine_paths(notebook([], {"papermill": {"input_path": "/home/alice/course/00.ipynb"}}))
    assert not machine_paths(notebook([code("", [stream("saved to runs/model.pt, data/mnist\n")])]))

    assert run_metadata(notebook([], {"papermill": {}}))
    assert run_metadata(notebook([code("", metadata={"execution": {"iopub.status.busy": "2026"}})]))

    bar = "\rdiscriminator:  54%|#####4    | 814/1500 [00:20<00:14, 46.78it/s, loss=0.7976]"
    assert progress_fragments(notebook([code("fit()", [stream(bar, "stderr")])]))
    summary = "discriminator: 1,500 steps in 26.3 s (57 steps/s); last loss 0.7987\n"
    assert not progress_fragments(notebook([code("fit()", [stream(summary)])]))

    widget = {
        "output_type": "display_data",
        "data": {"application/vnd.jupyter.widget-view+json": {}},
    }
    picture = {"output_type": "display_data", "data": {"image/png": "iVBOR..."}}
    assert widgets_without_a_picture(notebook([code("explorer()", [widget])]))
    assert widgets_without_a_picture(
        notebook([code("show()", [picture]), code("x"), code("e()", [widget])])
    )
    # a figure of something else just before it is no picture of the widget
    assert widgets_without_a_picture(notebook([code("show()", [picture]), code("e()", [widget])]))
    assert not widgets_without_a_picture(notebook([code("explorer()", [picture, widget])]))
    assert not widgets_without_a_picture(
        notebook([code("explorer()", [widget]), code("show()", [picture])])
    )
    sample = stream("--- temperature 0.5\nThe statement from exception.\n")
    assert not widgets_without_a_picture(notebook([code("writer()", [sample, widget])]))
    assert widgets_without_a_picture(notebook([code("writer()", [widget, sample])]))
    assert widgets_without_a_picture(notebook([code("writer()", [stream("\n"), widget])]))

    assert too_big(notebook([]), MAX_NOTEBOOK_BYTES + 1) and not too_big(notebook([]), 1000)


# ---------------------------------------------------------------- ruff


def ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, "genai_lib", "tests", "benchmarks", "chapters"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_the_code_passes_ruff_check():
    result = ruff("check", "--no-cache")
    assert result.returncode == 0, (
        result.stdout + result.stderr + "\nFix with: python -m ruff check --fix ."
    )


def test_the_code_is_formatted_by_ruff():
    result = ruff("format", "--check", "--no-cache")
    assert result.returncode == 0, (
        result.stdout + result.stderr + "\nFix with: python -m ruff format ."
    )
