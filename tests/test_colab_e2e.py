"""The real setup cell, run for real in a Colab-like environment: both ways in install the course, and a chapter runs.

The environment (tests/colab_env.py) has torch preinstalled on its own, Colab's ipywidgets 7 and classic
notebook stack, and no genai_lib. A stand-in ``google.colab`` module, imported at interpreter start as
Colab imports its own, records that widgets were turned on. Nothing here touches the network:
- "from the repository": a git repository of this working tree, tagged, stands in for GitHub (git's
  ``url.<base>.insteadOf`` sends https://github.com/someone/genai-course to it), and pip installs offline
  with the build tools already in the environment (in Colab pip would fetch them);
- "from an uploaded file": ``python -m genai_lib pack`` writes genai-course.zip into the working folder,
  which is what Colab's Files pane shows.
Each way, chapter 00 runs in fast mode with papermill in that environment.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import colab_env  # noqa: E402

from genai_lib import colab  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
REPO, TAG = "someone/genai-course", "v-test"

pytestmark = pytest.mark.skipif(
    not colab_env.built(),
    reason=(
        f"the Colab-like environment is not built at {colab_env.ENV}: python tests/colab_env.py (needs PyPI once)"
    ),
)

STANDIN = '''"""A stand-in for Colab's google.colab: the part the setup cell uses."""
import os
from types import SimpleNamespace


def _enable_custom_widget_manager():
    with open(os.environ["COLAB_STANDIN_LOG"], "a") as f:
        f.write("widgets enabled\\n")


output = SimpleNamespace(enable_custom_widget_manager=_enable_custom_widget_manager)
'''


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    """A fresh 'Colab runtime': the stand-in module, a working folder, and a git remote of this working tree."""
    base = tmp_path_factory.mktemp("colab")
    (base / "standin" / "google" / "colab").mkdir(parents=True)  # google stays a namespace package
    (base / "standin" / "google" / "colab" / "__init__.py").write_text(STANDIN)
    (base / "standin" / "sitecustomize.py").write_text(
        "import google.colab  # imported at start, as in Colab\n"
    )
    tree = base / "tree"
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in listed:
        if (ROOT / name).is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, tree / name)
    git = [
        "git",
        "-c",
        "user.name=test",
        "-c",
        "user.email=test@example.com",
        "-c",
        "init.defaultBranch=main",
    ]
    subprocess.run([*git, "init", "--quiet", str(tree)], check=True)
    subprocess.run([*git, "-C", str(tree), "add", "--all"], check=True)
    subprocess.run(
        [*git, "-C", str(tree), "commit", "--quiet", "-m", "the working tree"], check=True
    )
    subprocess.run([*git, "-C", str(tree), "tag", TAG], check=True)
    return base


def colab_env_vars(runtime: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(runtime),
        "PYTHONPATH": str(runtime / "standin"),
        "COLAB_STANDIN_LOG": str(runtime / "standin.log"),
        "GENAI_FAST": "1",
        "MPLBACKEND": "Agg",
        "PIP_NO_INDEX": "1",
        "PIP_NO_BUILD_ISOLATION": "0",  # offline: no index, the env's own build tools
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"url.file://{runtime / 'tree'}.insteadOf",
        "GIT_CONFIG_VALUE_0": f"https://github.com/{REPO}",
    }


def fresh(runtime: Path) -> Path:
    """No genai_lib in the environment, an empty working folder, no widget record: a new runtime."""
    subprocess.run(
        [str(colab_env.python()), "-m", "pip", "uninstall", "--quiet", "--yes", "genai_lib"],
        capture_output=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PIP_NO_INDEX": "1"},
    )
    content = runtime / "content"
    shutil.rmtree(content, ignore_errors=True)
    content.mkdir()
    (runtime / "standin.log").unlink(missing_ok=True)
    return content


def torch_files() -> tuple[str, int, int]:
    done = subprocess.run(
        [
            str(colab_env.python()),
            "-c",
            "import os, torch; s = os.stat(torch.__file__); "
            "print(torch.__version__, s.st_ino, s.st_mtime_ns)",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    version, inode, mtime = done.stdout.split()
    return version, int(inode), int(mtime)


def run_chapter(runtime: Path, content: Path, setup_source: str) -> nbformat.NotebookNode:
    """Chapter 00 with the given setup cell, executed in the Colab-like environment; the executed notebook."""
    nb = nbformat.read(ROOT / "chapters" / "00_welcome.ipynb", as_version=4)
    for cell in nb.cells:
        if "setup" in cell.metadata.get("tags", []):
            cell.source = setup_source
    nbformat.write(nb, runtime / "chapter.ipynb")
    done = subprocess.run(
        [
            str(colab_env.python()),
            "-m",
            "papermill",
            str(runtime / "chapter.ipynb"),
            str(runtime / "executed.ipynb"),
            "-k",
            "python3",
            "--cwd",
            str(content),
            "--no-progress-bar",
        ],
        env=colab_env_vars(runtime),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return nbformat.read(runtime / "executed.ipynb", as_version=4)


def setup_output(nb: nbformat.NotebookNode) -> str:
    cell = next(c for c in nb.cells if "setup" in c.metadata.get("tags", []))
    return "".join(o.get("text", "") for o in cell.outputs)


def check_installed_course(runtime: Path, torch_before: tuple[str, int, int]) -> None:
    assert torch_files() == torch_before  # the same torch files: not reinstalled, not upgraded
    where = subprocess.run(
        [
            str(colab_env.python()),
            "-c",
            "import genai_lib, genai_lib.config as c; "
            "print(genai_lib.__file__); print(c.SHIPPED_DATA_DIR)",
        ],
        cwd=runtime,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    ).stdout.split()  # nothing inherited: no PYTHONPATH
    site = str(colab_env.ENV)
    # the package and its data from the install
    assert all(path.startswith(site) for path in where), where
    assert Path(where[1], "pretrained", "base_pydoc.safetensors").is_file()
    assert (runtime / "standin.log").read_text() == "widgets enabled\n"


def test_from_the_repository_the_setup_cell_installs_the_course_and_the_chapter_runs(runtime):
    content = fresh(runtime)
    torch_before = torch_files()
    executed = run_chapter(runtime, content, colab.setup_cell_source(REPO, TAG))
    assert f"Installed the course from {content / 'genai-course'}" in setup_output(executed)
    check_installed_course(runtime, torch_before)


def test_from_an_uploaded_course_file_the_setup_cell_installs_the_course_and_the_chapter_runs(
    runtime,
):
    content = fresh(runtime)
    torch_before = torch_files()
    packed = subprocess.run(
        [sys.executable, "-m", "genai_lib", "pack", "--out", str(content / "genai-course.zip")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert packed.returncode == 0, packed.stderr
    # the placeholder address, as shipped
    executed = run_chapter(runtime, content, colab.setup_cell_source())
    assert "Installed the course from genai-course.zip" in setup_output(executed)
    check_installed_course(runtime, torch_before)


def test_with_the_placeholder_and_no_file_the_real_cell_says_what_to_do_and_raises_nothing(runtime):
    content = fresh(runtime)
    (runtime / "cell.py").write_text(colab.setup_cell_source())
    done = subprocess.run(
        [str(colab_env.python()), str(runtime / "cell.py")],
        cwd=content,
        env=colab_env_vars(runtime),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert (
        "The course is not installed: this copy of the course has no repository address yet"
        in done.stdout
    )
    assert "genai-course.zip" in done.stdout
    assert not (runtime / "standin.log").exists() and list(content.iterdir()) == []
    assert json.loads(colab_env.MARKER.read_text()) == colab_env.RECIPE


# The setup cell the chapters carried before: with the placeholder address it cloned github.com/OWNER/NAME
# with check=True. Kept to show that the check above can fail.
OLD_CELL = """import sys
if "google.colab" in sys.modules:
    import os
    import subprocess
    REPOSITORY, REF = "OWNER/NAME", "main"
    folder = "/tmp/genai-old-cell-NAME"
    if not os.path.isdir(folder):
        subprocess.run(["git", "clone", "--quiet", "--depth", "1", "--branch", REF,
                        f"https://github.com/{REPOSITORY}", folder], check=True)
"""


def test_the_old_setup_cell_ended_in_a_traceback_with_the_placeholder(runtime):
    content = fresh(runtime)
    (runtime / "old_cell.py").write_text(OLD_CELL)
    env = colab_env_vars(runtime) | {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_VALUE_0": "https://github.com/OWNER/",
    }
    done = subprocess.run(
        [str(colab_env.python()), str(runtime / "old_cell.py")],
        cwd=content,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "CalledProcessError" in done.stderr
