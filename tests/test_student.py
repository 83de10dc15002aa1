"""The student edition: solutions stubbed out, outputs cleared, and every check cell failing with its hint."""

import ast

import nbformat
import pytest

from genai_lib import runner
from genai_lib.student import stub_solution, student_notebook, write_student_edition

CHAPTERS = runner.list_chapters()


def test_stub_keeps_signature_docstring_and_imports_and_drops_the_body():
    source = '''import math

@staticmethod
def area(r,
         pi=math.pi):
    """Area of a circle of radius r."""
    squared = r * r
    return pi * squared

def one_liner(x): return x + 1
'''
    stub = stub_solution(source)
    tree = ast.parse(stub)
    assert "import math" in stub and "@staticmethod" in stub and "pi=math.pi):" in stub
    assert '"""Area of a circle of radius r."""' in stub
    assert "squared" not in stub and "x + 1" not in stub
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert [f.name for f in functions] == ["area", "one_liner"]
    for f in functions:
        assert isinstance(f.body[-1], ast.Raise) and "NotImplementedError" in ast.unparse(
            f.body[-1]
        )
    namespace = {}
    exec(stub, namespace)
    with pytest.raises(NotImplementedError, match="write one_liner"):
        namespace["one_liner"](1)


def test_stub_refuses_cells_that_are_not_function_definitions():
    with pytest.raises(ValueError, match="only define functions"):
        stub_solution("answer = 42\n")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_student_edition_holds_no_solution_code_and_no_outputs(path):
    teacher = nbformat.read(path, as_version=4)
    student = student_notebook(teacher)
    pairs = [
        (t, s)
        for t, s in zip(teacher.cells, student.cells)
        if "solution" in t.metadata.get("tags", [])
    ]
    assert len(pairs) >= 3, f"{path.name}: a chapter has at least three exercises"
    for t, s in pairs:
        for function in (n for n in ast.parse(t.source).body if isinstance(n, ast.FunctionDef)):
            body = function.body[1:] if ast.get_docstring(function) is not None else function.body
            for statement in body:
                assert ast.unparse(statement) not in ast.unparse(ast.parse(s.source)), (
                    f"{path.name}: solution code left in the student edition: {ast.unparse(statement)[:60]}"
                )
    assert all(
        not c.get("outputs") and c.get("execution_count") is None
        for c in student.cells
        if c.cell_type == "code"
    )
    # The teacher edition folds its answers away from a first read; the student sees the stub.
    for t, s in pairs:
        assert t.metadata.get("jupyter", {}).get("source_hidden") is True, (
            f"{path.name}: open answer"
        )
        assert not s.metadata.get("jupyter", {}).get("source_hidden"), f"{path.name}: hidden stub"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_student_edition_runs_and_every_check_cell_fails_with_its_hint(path, tmp_path):
    """Execute the student notebook (fast mode) past errors: the lesson runs; each check cell says 'not done'."""
    from nbclient import NotebookClient

    ((student_path, _),) = write_student_edition([path], tmp_path)
    nb = nbformat.read(student_path, as_version=4)
    NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    check_cells = [
        code[i + 1] for i, c in enumerate(code) if "solution" in c.metadata.get("tags", [])
    ]
    for cell in code:
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if cell in check_cells:
            assert len(errors) == 1, (
                f"{path.name}: a check cell should fail in the student edition:\n{cell.source}"
            )
            assert errors[0].ename in ("ExerciseError", "NotImplementedError")
            assert "Not done yet" in errors[0].evalue or "Exercise: write" in errors[0].evalue, (
                errors[0].evalue
            )
        else:
            assert not errors, (
                f"{path.name}: a lesson cell failed in the student edition: {errors[0].evalue}"
            )
