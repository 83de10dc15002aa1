"""`python -m genai_lib pack`: one zip of the course, installable with pip, that never replaces a file unasked."""

import shutil
import zipfile
from pathlib import Path

import pytest
import tomllib

from genai_lib import pack as packing
from genai_lib.cli import main as cli_main

ROOT = Path(__file__).resolve().parent.parent


def course_copy(tmp_path: Path) -> Path:
    """A copy of the course as a USB stick would hold it, with a learner's download inside data/."""
    root = tmp_path / "course"
    for name in ("genai_lib", "data", "chapters"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in packing.TOP_FILES:
        shutil.copy(ROOT / name, root / name)
    (root / "data" / "mnist").mkdir(exist_ok=True)
    (root / "data" / "mnist" / "train-images-idx3-ubyte.gz").write_bytes(b"a learner's download")
    return root


def test_the_pack_holds_the_package_its_shipped_data_and_the_chapters_in_one_folder(tmp_path):
    root = course_copy(tmp_path)
    out = packing.pack(tmp_path / "genai-course.zip", root=root)
    names = zipfile.ZipFile(out).namelist()
    # one top folder, as pip expects of an archive
    assert all(n.startswith("genai-course/") for n in names)
    inside = {n.removeprefix("genai-course/") for n in names}
    assert {
        "pyproject.toml",
        "README.md",
        "genai_lib/__init__.py",
        "genai_lib/train.py",
        "data/README.md",
        "data/pretrained/base_pydoc.safetensors",
        "data/classifiers/digits.json",
        "chapters/00_welcome.ipynb",
    } <= inside
    # downloads and caches stay out
    assert not any("mnist" in n or "__pycache__" in n for n in inside)
    # every module and every chapter of the course travels
    assert {
        f"genai_lib/{p.relative_to(root / 'genai_lib').as_posix()}"
        for p in (root / "genai_lib").rglob("*.py")
        if "__pycache__" not in p.parts
    } <= inside
    assert {f"chapters/{p.name}" for p in (root / "chapters").glob("*.ipynb")} <= inside


def test_pack_never_replaces_a_file_unless_told(tmp_path, capsys):
    out = tmp_path / "genai-course.zip"
    out.write_bytes(b"an instructor's own file")
    assert cli_main(["pack", "--out", str(out)]) == 1
    assert (
        "exists already" in capsys.readouterr().err
        and out.read_bytes() == b"an instructor's own file"
    )
    assert cli_main(["pack", "--out", str(out), "--overwrite"]) == 0
    assert zipfile.is_zipfile(out) and "In Colab: upload it" in capsys.readouterr().out
    assert not list(tmp_path.glob("*.tmp"))  # written through a temporary file, renamed into place


def test_pack_refuses_a_folder_and_a_tree_that_is_not_the_course(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder"):
        packing.pack(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a copy of the course"):
        packing.pack(tmp_path / "x.zip", root=tmp_path)


def test_the_pack_ships_the_data_files_pyproject_ships():
    """A data folder added to pyproject.toml but not to the pack would leave the zip uninstallable."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    from_pyproject = set()
    for package, patterns in setuptools["package-data"].items():
        folder = package.removeprefix("genai_lib._data").lstrip(".").replace(".", "/")
        from_pyproject |= {f"{folder}/{p}" if folder else p for p in patterns}

    def chosen(patterns):
        return {path for pattern in patterns for path in (ROOT / "data").glob(pattern)}

    assert chosen(packing.SHIPPED_DATA) == chosen(from_pyproject)
