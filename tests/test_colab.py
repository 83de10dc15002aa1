"""The Colab badge and setup cell: what the setup cell would run in Colab, that it runs nothing elsewhere,
and that every chapter carries both, in step with the one repository constant."""
import shutil
import subprocess
import sys
import types

import nbformat
import pytest

from genai_lib import colab, runner
from genai_lib.cli import main as cli_main

CHAPTERS = runner.list_chapters()


def run_setup_cell(monkeypatch, source, in_colab):
    """Execute a setup cell's source with subprocess.run recorded instead of run; return (commands, widgets on)."""
    commands, widgets = [], []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: commands.append(list(cmd)))
    if in_colab:
        output = types.SimpleNamespace(enable_custom_widget_manager=lambda: widgets.append(True))
        fake = types.ModuleType("google.colab")
        fake.output = output
        monkeypatch.setitem(sys.modules, "google.colab", fake)
        monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
        sys.modules["google"].colab = fake
    monkeypatch.setattr(sys, "path", list(sys.path))  # the cell prepends the clone; undo that afterwards
    exec(compile(source, "setup cell", "exec"), {})
    return commands, widgets


def test_in_colab_the_setup_cell_clones_the_ref_and_installs_without_touching_torch(monkeypatch, capsys):
    commands, widgets = run_setup_cell(monkeypatch, colab.setup_cell_source("someone/genai-course", "v1.2"), True)
    assert commands[0] == ["git", "clone", "--quiet", "--depth", "1", "--branch", "v1.2",
                           "https://github.com/someone/genai-course", "/content/genai-course"]
    pip = commands[1]
    assert pip[:4] == [sys.executable, "-m", "pip", "install"] and pip[-1] == "/content/genai-course"
    assert "-e" not in pip and "--editable" not in pip  # an editable install is not importable until a restart
    assert not any("torch" in part for part in pip)     # Colab's torch stays
    assert len(commands) == 2 and widgets == [True]
    assert sys.path[0] == "/content/genai-course"
    assert "GPU" in capsys.readouterr().out             # says what it found, or how to get one


def test_outside_colab_the_setup_cell_does_nothing(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    commands, widgets = run_setup_cell(monkeypatch, colab.setup_cell_source(), False)
    assert commands == [] and widgets == []


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_has_its_badge_and_the_current_setup_cell(path):
    nb = nbformat.read(path, as_version=4)
    assert colab.badge_markdown(path.name) in nb.cells[0].source
    setup = [c for c in nb.cells if "setup" in c.metadata.get("tags", [])]
    assert len(setup) == 1 and setup[0].source == colab.setup_cell_source(), \
        f"{path.name}: run `python -m genai_lib badges` to rewrite the setup cell"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0] is setup[0] and "parameters" in code[1].metadata.get("tags", [])


def test_apply_rewrites_badge_and_setup_cell_and_is_idempotent(tmp_path):
    path = tmp_path / CHAPTERS[0].name
    shutil.copy(CHAPTERS[0], path)
    assert colab.apply_to_notebook(path, "fork/course", "workshop") is True
    nb = nbformat.read(path, as_version=4)
    badge = colab.badge_markdown(path.name, "fork/course", "workshop")
    assert f"\n\n{badge}\n\n" in nb.cells[0].source  # a paragraph of its own, after the title
    assert nb.cells[0].source.count("Open In Colab") == 1
    assert [c.source for c in nb.cells if "setup" in c.metadata.get("tags", [])] == \
           [colab.setup_cell_source("fork/course", "workshop")]
    assert colab.apply_to_notebook(path, "fork/course", "workshop") is False


def test_set_repository_rewrites_the_one_constant(tmp_path, monkeypatch):
    copy = tmp_path / "colab.py"
    shutil.copy(colab.__file__, copy)
    monkeypatch.setattr(colab, "__file__", str(copy))
    colab.set_repository("fork/course", "v2")
    text = copy.read_text()
    assert 'REPOSITORY = "fork/course"' in text and 'REF = "v2"' in text
    with pytest.raises(ValueError, match="OWNER/NAME"):
        colab.set_repository("not a repo", "main")


def test_badges_command_refuses_a_bad_repository(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["badges", "--repo", "https://github.com/x/y"])
    assert exit_info.value.code == 2
    assert "OWNER/NAME" in capsys.readouterr().err
