"""An installed genai_lib is whole: its shipped data travel inside the package, found through importlib.resources.

Building a wheel needs the build tools from PyPI, and the suite runs offline; so the test lays the
files out as pyproject.toml says a wheel holds them (genai_lib/ and data/ as genai_lib/_data/), in a
folder outside the repository, and runs Python there, from a folder with no data/ anywhere near.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]

PROBE = """
import genai_lib, genai_lib.config as config
from genai_lib.classifiers import load_pinned_classifier
from genai_lib.data import load_digits
from genai_lib.pretrained import load_base
model, tokenizer, _ = load_base()
load_pinned_classifier(load_digits())
print(genai_lib.__file__)
print(config.SHIPPED_DATA_DIR)
"""


def install_like_a_wheel(site: Path, with_data: bool = True) -> None:
    """genai_lib as pyproject.toml packages it: its packages, and data/ mapped to genai_lib._data."""
    shutil.copytree(
        ROOT / "genai_lib", site / "genai_lib", ignore=shutil.ignore_patterns("__pycache__")
    )
    if with_data:
        for package, folder in SETUPTOOLS["package-dir"].items():
            shutil.copytree(ROOT / folder, site / Path(*package.split(".")))


def run_probe(site: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site), "HOME": str(cwd), "GENAI_FAST": "1"}
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_every_package_is_listed_for_the_wheel():
    """A new subpackage of genai_lib must be added to pyproject.toml's list, or a wheel would leave it out."""
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "genai_lib").rglob("__init__.py")
    }
    listed = set(SETUPTOOLS["packages"])
    assert found <= listed, f"not in pyproject.toml's packages: {sorted(found - listed)}"
    shipped = {p for p in listed if p.startswith("genai_lib._data")}
    folders = {
        "genai_lib._data"
        + ("." + ".".join(d.relative_to(ROOT / "data").parts) if d != ROOT / "data" else "")
        for d in [ROOT / "data", *[d for d in (ROOT / "data").rglob("*") if d.is_dir()]]
    }
    assert folders == shipped


def test_an_installed_course_finds_its_base_model_and_classifier_without_the_repository(tmp_path):
    site, elsewhere = tmp_path / "site-packages", tmp_path / "elsewhere"
    elsewhere.mkdir()
    install_like_a_wheel(site)
    done = run_probe(site, elsewhere)
    assert done.returncode == 0, done.stderr[-3000:]
    module, shipped = done.stdout.split()[-2:]
    assert module.startswith(str(site)) and Path(shipped) == site / "genai_lib" / "_data"


def test_without_its_package_data_the_install_says_what_is_missing(tmp_path):
    """The check above can fail: the same layout without genai_lib/_data cannot find the base model."""
    site, elsewhere = tmp_path / "site-packages", tmp_path / "elsewhere"
    elsewhere.mkdir()
    install_like_a_wheel(site, with_data=False)
    done = run_probe(site, elsewhere)
    assert done.returncode != 0
    assert "pretrained" in done.stderr and "Rebuild it with" in done.stderr


@pytest.mark.parametrize(
    "name",
    ["classifiers/digits.json", "pretrained/base_pydoc.json", "measurements/lora_frontier.json"],
)
def test_the_package_data_patterns_cover_the_shipped_files(name):
    folder, file = name.split("/")
    patterns = SETUPTOOLS.get("package-data", {}).get(f"genai_lib._data.{folder}", [])
    assert any(Path(file).match(p) for p in patterns) and (ROOT / "data" / name).is_file()
