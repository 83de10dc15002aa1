"""Hygiene of the committed chapter notebooks (executing them is nbval's job)."""

import nbformat
import pytest

from genai_lib import runner

CHAPTERS = runner.list_chapters()


def test_there_are_chapters():
    assert CHAPTERS, "no chapter notebooks found"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_has_one_parameters_cell_before_any_other_code(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, (
        f"{path.name}: expected one cell tagged 'parameters', found {len(tagged)}"
    )
    # Only a setup cell (installing in Colab) may run before the parameters.
    assert tagged[0] <= 1, (
        f"{path.name}: the parameters cell should be the first or second code cell"
    )


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_committed_outputs_hold_no_errors(path):
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            assert out.output_type != "error", (
                f"{path.name} cell {i}: committed error output {out.get('ename')}"
            )
            text = out.get("text", "") if out.output_type == "stream" else ""
            assert "Traceback (most recent call last)" not in text, (
                f"{path.name} cell {i}: a traceback"
            )


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_committed_notebooks_are_executed_in_order_and_small(path):
    nb = nbformat.read(path, as_version=4)
    counts = [
        c.execution_count
        for c in nb.cells
        if c.cell_type == "code" and c.execution_count is not None
    ]
    assert counts == sorted(counts), f"{path.name}: cells were executed out of order"
    assert path.stat().st_size < 2 * 1024 * 1024, f"{path.name} is over 2 MB; shrink its figures"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_committed_check_cells_pass_with_the_solutions(path):
    """The teacher edition: the check cell after each solution printed its "Correct:" line."""
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    for i, cell in enumerate(code):
        if "solution" in cell.metadata.get("tags", []):
            check = code[i + 1]
            text = "".join(
                o.get("text", "") for o in check.get("outputs", []) if o.output_type == "stream"
            )
            assert "Correct:" in text, (
                f"{path.name}: the check after a solution did not pass:\n{check.source}"
            )
