"""The Colab badge and setup cell: what the setup cell would run in Colab, that it runs nothing elsewhere,
and that every chapter carries both, in step with the one repository constant."""

import glob
import shutil
import subprocess
import sys
import types

import nbformat
import pytest

from genai_lib import colab, runner
from genai_lib.cli import main as cli_main

CHAPTERS = runner.list_chapters()


def run_setup_cell(monkeypatch, source, in_colab, uploaded=(), fail=None):
    """Execute a setup cell's source with subprocess.run recorded; return (commands, widgets on).

    ``uploaded``: the course files glob would find; ``fail``: ``(program, stderr)`` for a command that fails.
    A real run in a Colab-like environment is issue 19's end-to-end test; this one checks the cell's decisions.
    """
    commands, widgets = [], []

    def record(cmd, **kw):
        commands.append(list(cmd))
        failed = fail is not None and fail[0] in cmd  # "git" for the clone, "pip" for the install
        return subprocess.CompletedProcess(cmd, 1 if failed else 0, "", fail[1] if failed else "")

    monkeypatch.setattr(subprocess, "run", record)
    monkeypatch.setattr(
        glob, "glob", lambda pattern: [u for u in uploaded if u.startswith(pattern.split("*")[0])]
    )
    monkeypatch.chdir("/")  # stands for Colab's working folder, /content: nothing is written there
    if in_colab:
        output = types.SimpleNamespace(enable_custom_widget_manager=lambda: widgets.append(True))
        fake = types.ModuleType("google.colab")
        fake.output = output
        monkeypatch.setitem(sys.modules, "google.colab", fake)
        monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
        sys.modules["google"].colab = fake
    monkeypatch.setattr(sys, "path", list(sys.path))
    exec(compile(source, "setup cell", "exec"), {})  # raises nothing, whatever happens
    return commands, widgets


def test_in_colab_the_setup_cell_clones_the_ref_and_installs_without_touching_torch(
    monkeypatch, capsys
):
    commands, widgets = run_setup_cell(
        monkeypatch, colab.setup_cell_source("someone/genai-course", "v1.2"), True
    )
    assert commands[0] == [
        "git",
        "clone",
        "--quiet",
        "--depth",
        "1",
        "--branch",
        "v1.2",
        "https://github.com/someone/genai-course",
        "/genai-course",
    ]
    pip = commands[1]
    assert pip[:4] == [sys.executable, "-m", "pip", "install"] and pip[-1] == "/genai-course"
    # an editable install is not importable until a restart
    assert "-e" not in pip and "--editable" not in pip
    assert not any("torch" in part for part in pip)  # Colab's torch stays
    assert len(commands) == 2 and widgets == [True]
    assert "GPU" in capsys.readouterr().out  # says what it found, or how to get one


def test_an_uploaded_course_file_is_installed_even_without_a_repository(monkeypatch, capsys):
    commands, widgets = run_setup_cell(
        monkeypatch, colab.setup_cell_source(), True, uploaded=["drive/MyDrive/genai-course.zip"]
    )
    assert commands == [
        [sys.executable, "-m", "pip", "install", "--quiet", "drive/MyDrive/genai-course.zip"]
    ]
    assert (
        widgets == [True]
        and "Installed the course from drive/MyDrive/genai-course.zip" in capsys.readouterr().out
    )


def test_with_the_placeholder_address_the_cell_says_what_to_do_and_raises_nothing(
    monkeypatch, capsys
):
    # the chapters carry the placeholder today
    assert colab.setup_cell_source().count(colab.PLACEHOLDER) >= 2
    commands, widgets = run_setup_cell(
        monkeypatch, colab.setup_cell_source(colab.PLACEHOLDER), True
    )
    said = capsys.readouterr().out
    assert commands == [] and widgets == []
    assert "not installed: this copy of the course has no repository address yet" in said
    assert (
        "genai-course.zip" in said
        and "python -m genai_lib pack" in said
        and "badges --repo" in said
    )


@pytest.mark.parametrize(
    "fail, said",
    [
        (
            ("git", "fatal: repository 'https://github.com/someone/gone/' not found"),
            "github.com/someone/gone (at main) could not be cloned: fatal: repository",
        ),
        (
            ("pip", "ERROR: No matching distribution found for numpy>=1.24"),
            "pip could not install /gone",
        ),
    ],
)
def test_a_clone_or_install_that_fails_is_explained_not_raised(monkeypatch, capsys, fail, said):
    commands, widgets = run_setup_cell(
        monkeypatch, colab.setup_cell_source("someone/gone", "main"), True, fail=fail
    )
    out = capsys.readouterr().out
    assert said in out and "genai-course.zip" in out and widgets == []
    assert len(commands) == (1 if fail[0] == "git" else 2)  # no install after a failed clone


def test_outside_colab_the_setup_cell_does_nothing(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    commands, widgets = run_setup_cell(monkeypatch, colab.setup_cell_source(), False)
    assert commands == [] and widgets == []


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_has_its_badge_and_the_current_setup_cell(path):
    nb = nbformat.read(path, as_version=4)
    assert colab.badge_markdown(path.name) in nb.cells[0].source
    setup = [c for c in nb.cells if "setup" in c.metadata.get("tags", [])]
    assert len(setup) == 1 and setup[0].source == colab.setup_cell_source(), (
        f"{path.name}: run `python -m genai_lib badges` to rewrite the setup cell"
    )
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
    assert [c.source for c in nb.cells if "setup" in c.metadata.get("tags", [])] == [
        colab.setup_cell_source("fork/course", "workshop")
    ]
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
