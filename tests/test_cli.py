"""The command line: argument checking, and a real headless run of a tiny notebook."""

import subprocess
import sys

import nbformat
import pytest

from genai_lib import cli, runner


def test_run_needs_chapters_or_all(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run"])
    assert exit_info.value.code == 2
    assert "name one or more chapters, or pass --all" in capsys.readouterr().err


def test_run_rejects_an_unknown_chapter(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "99_nothing"])
    err = capsys.readouterr().err
    assert "No chapter matches '99_nothing'" in err and "00_welcome" in err


def test_find_chapters_by_number_part_and_name():
    assert [p.name for p in runner.find_chapters("00")] == ["00_welcome.ipynb"]
    assert [p.name for p in runner.find_chapters("00_welcome")] == ["00_welcome.ipynb"]
    assert [p.name for p in runner.find_chapters("01")] == [
        "01a_vae_math.ipynb",
        "01b_vae_practice.ipynb",
    ]
    assert [p.name for p in runner.find_chapters("01b")] == ["01b_vae_practice.ipynb"]


def test_parameter_values_are_python_literals_or_strings():
    assert runner.parse_value("3") == 3 and runner.parse_value("0.5") == 0.5
    assert runner.parse_value("None") is None and runner.parse_value("mnist") == "mnist"


def test_run_executes_a_notebook_with_parameters_and_reports_time(tmp_path):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("seed = 0")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell(
            "import os, matplotlib\nassert seed == 3, seed\n"
            "print('fast', os.environ['GENAI_FAST'], 'backend', matplotlib.get_backend())\n"
            "print('progress', os.environ['GENAI_PROGRESS'])"
        ),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    source = tmp_path / "01_tiny.ipynb"
    nbformat.write(nb, source)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "genai_lib",
            "run",
            str(source),
            "--fast",
            "-p",
            "seed",
            "3",
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "MPLBACKEND": "Agg"},
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "01_tiny" in result.stdout and "ok" in result.stdout and "total" in result.stdout
    executed = nbformat.read(tmp_path / "out" / "01_tiny.ipynb", as_version=4)
    printed = "".join(
        o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs
    )
    assert "fast 1 backend" in printed  # fast mode reached the kernel
    assert "inline" in printed  # figures go into the notebook, not to the caller's MPLBACKEND=Agg
    assert "progress summary" in printed  # one line per training run, no bar fragments saved


def test_a_failing_chapter_gives_a_nonzero_exit_and_says_why(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("raise RuntimeError('boom in the notebook')")]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    source = tmp_path / "02_broken.ipynb"
    nbformat.write(nb, source)
    code = cli.main(["run", str(source), "--out", str(tmp_path / "out")])
    assert code == 1


def test_data_fetch_refuses_unknown_names_and_reports_failures(capsys, monkeypatch):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["data", "fetch", "imagenet"])
    assert (
        exit_info.value.code == 2
        and "choose from mnist, fashion, tinyshakespeare, gpt2" in capsys.readouterr().err
    )
    with pytest.raises(SystemExit):
        cli.main(["data", "fetch"])  # neither names nor --all

    def offline(name):
        raise OSError(f"no network for {name}; copy the cache folder from a machine that has it")

    monkeypatch.setattr(cli, "_fetch", offline)
    assert cli.main(["data", "fetch", "mnist", "tinyshakespeare"]) == 1
    err = capsys.readouterr().err
    assert "mnist: FAILED: no network for mnist" in err and "tinyshakespeare: FAILED" in err


# ---------------------------------------------------------------- never overwrite a learner's work


def test_student_refuses_to_overwrite_edited_notebooks_and_the_course(tmp_path, capsys):
    out = tmp_path / "student_edition"
    assert cli.main(["student", "--out", str(out)]) == 0
    mine = out / "00_welcome.ipynb"
    # a learner's edit
    mine.write_text(mine.read_text().replace("NotImplementedError", "my answer", 1))
    before = mine.read_text()
    assert cli.main(["student", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "already exist" in err and str(mine) in err and "--overwrite" in err
    assert mine.read_text() == before  # nothing was written
    # the course's own chapters: refused, and said so
    sources = {p: p.read_bytes() for p in runner.list_chapters()}
    assert cli.main(["student", "--out", str(runner.CHAPTERS_DIR)]) == 1
    assert "(a chapter of the course itself)" in capsys.readouterr().err
    assert all(p.read_bytes() == b for p, b in sources.items())
    assert cli.main(["student", "--out", str(out), "--overwrite"]) == 0  # told to: it does
    assert mine.read_text() != before


def test_run_refuses_to_write_over_the_chapters_or_earlier_files(tmp_path, capsys):
    sources = {p: p.read_bytes() for p in runner.list_chapters()}
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", "00", "--out", str(runner.CHAPTERS_DIR)])
    err = capsys.readouterr().err
    assert (
        exit_info.value.code == 2
        and "(a chapter of the course itself)" in err
        and "--overwrite" in err
    )
    assert all(p.read_bytes() == b for p, b in sources.items())
    (tmp_path / "00_welcome.ipynb").write_text("my notes")
    with pytest.raises(SystemExit):
        cli.main(["run", "00", "--out", str(tmp_path)])
    assert "may hold your own work" in capsys.readouterr().err
    assert (tmp_path / "00_welcome.ipynb").read_text() == "my notes"


@pytest.mark.parametrize(
    "name, value, said",
    [
        (
            "nosuchparam",
            "3",
            "00_welcome has no parameter 'nosuchparam'. Its parameters: n_points=4000",
        ),
        ("seed", "notanint", "seed should be a int like its default 0; got 'notanint'"),
        ("lr", "True", "lr should be a float"),
    ],
)
def test_run_refuses_unknown_parameters_and_values_of_the_wrong_kind(
    capsys, tmp_path, name, value, said
):
    with pytest.raises(SystemExit) as exit_info:  # refused before any kernel starts
        cli.main(["run", "00", "-p", name, value, "--out", str(tmp_path)])
    assert exit_info.value.code == 2 and said in capsys.readouterr().err.replace("\n", " ")
    assert list(tmp_path.iterdir()) == []


def test_parameters_of_the_right_kind_are_accepted():
    chapter = runner.find_chapters("00")[0]
    # int for a float: fine
    runner.check_parameters(chapter, {"seed": 3, "lr": 1, "device": "cpu", "steps": 10})
    assert set(runner.chapter_parameters(chapter)) >= {"n_points", "steps", "seed", "device"}
