"""The student edition: every chapter with the answers to its exercises taken out.

An exercise is a prompt, a code cell tagged ``solution`` that defines the
answer as one or more functions, and a check cell that calls a checker in
:mod:`genai_lib.exercises`. In the student edition each solution function
keeps its signature and docstring, and its body becomes a ``raise
NotImplementedError`` with a hint; the checkers turn that into a friendly "Not
done yet" message. All outputs are cleared, so no answer survives in them
either. ``python -m genai_lib student --out DIR`` writes it.
"""

from __future__ import annotations

import ast
from pathlib import Path

SOLUTION_TAG = "solution"


def stub_solution(source: str) -> str:
    """The student version of a solution cell: each function's signature and docstring, then a ``raise``.

    Raises ``ValueError`` if the cell holds anything but function definitions
    (imports and comments aside), since other code could not be stubbed safely.
    """
    tree = ast.parse(source)
    lines = source.splitlines()
    out: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.extend(lines[node.lineno - 1 : node.end_lineno])
            continue
        if not isinstance(node, ast.FunctionDef):
            raise ValueError(
                f"A solution cell may only define functions; line {node.lineno} is a "
                f"{type(node).__name__}:\n{source}"
            )
        first = node.body[0]
        start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
        if first.lineno == node.lineno:  # `def f(x): return x` on one line
            out.extend(lines[start - 1 : node.lineno - 1])
            out.append(lines[node.lineno - 1][: first.col_offset].rstrip())
            indent = " " * (node.col_offset + 4)
        else:
            out.extend(lines[start - 1 : first.lineno - 1])
            indent = " " * first.col_offset
        if ast.get_docstring(node) is not None:
            out.extend(lines[first.lineno - 1 : first.end_lineno])
        out.append(
            f'{indent}raise NotImplementedError("Exercise: write {node.name} as the exercise above asks, '
            f'then run the check cell below.")'
        )
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def student_notebook(nb):
    """A copy of an ``nbformat`` notebook with every solution stubbed and every output cleared."""
    import copy

    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if SOLUTION_TAG in cell.metadata.get("tags", []):
            cell.source = stub_solution(cell.source)
            # the teacher edition folds its answers away; the learner's stub is there to be seen
            cell.metadata.get("jupyter", {}).pop("source_hidden", None)
            if not cell.metadata.get("jupyter", True):
                del cell.metadata["jupyter"]
        cell.outputs = []
        cell.execution_count = None
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nb.metadata.pop("papermill", None)
    return nb


def write_student_edition(
    chapters: list[Path], out_dir: Path, overwrite: bool = False
) -> list[tuple[Path, int]]:
    """Write the student version of each chapter into ``out_dir``; return ``(path, exercises stubbed)`` pairs.

    Refuses (:class:`FileExistsError`, naming the files) to replace a notebook
    that already exists there, which may be a learner's edited copy or the
    course's own chapter, unless ``overwrite=True``.
    """
    import nbformat

    from genai_lib.runner import refuse_to_overwrite

    if not overwrite:
        refuse_to_overwrite([out_dir / p.name for p in chapters], chapters)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in chapters:
        nb = nbformat.read(path, as_version=4)
        n = sum(SOLUTION_TAG in c.metadata.get("tags", []) for c in nb.cells)
        target = out_dir / path.name
        nbformat.write(student_notebook(nb), target)
        written.append((target, n))
    return written
