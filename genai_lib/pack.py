"""One file that carries the course anywhere, Colab included, with no repository address needed.

``python -m genai_lib pack --out genai-course.zip`` writes a zip of what an
installed course needs and what a learner opens: the ``genai_lib`` package,
the files that ship in ``data/``, the chapters, ``pyproject.toml``,
``requirements.txt`` and the README. ``pip install genai-course.zip`` installs
the package with its shipped data (and leaves an installed torch alone); in
Colab, the setup cell of every chapter finds the file in the Files pane or in
Google Drive and does that itself. An instructor can share the file over a
USB stick or a drive, where a public repository is not an option.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

from genai_lib.config import REPO_DATA_DIR

PACK_NAME = "genai-course.zip"
# everything in the zip sits in one folder: what pip expects of a source archive
TOP_FOLDER = "genai-course"
ROOT = REPO_DATA_DIR.parent
TOP_FILES = ("pyproject.toml", "requirements.txt", "README.md", "LICENSE")
# as pyproject.toml's package-data (tests/test_pack.py checks that the two agree)
SHIPPED_DATA = (
    "README.md",
    "classifiers/*.json",
    "classifiers/*.safetensors",
    "pretrained/*.json",
    "pretrained/*.safetensors",
    "measurements/*.json",
)


def files_to_pack(root: Path = ROOT) -> list[Path]:
    """The files of the course that go into the pack, relative to ``root``, sorted.

    Downloads a learner put into ``data/`` (MNIST, say) are left out: they are
    not the course's, and a download is checked when it is made.
    """
    root = Path(root)
    if not (root / "pyproject.toml").is_file() or not (root / "genai_lib").is_dir():
        raise FileNotFoundError(
            f"{root} is not a copy of the course (no pyproject.toml and genai_lib/ there): "
            f"run pack from a clone or an unpacked copy."
        )
    chosen = [root / name for name in TOP_FILES if (root / name).is_file()]
    chosen += [p for p in (root / "genai_lib").rglob("*.py") if "__pycache__" not in p.parts]
    for pattern in SHIPPED_DATA:
        chosen += (root / "data").glob(pattern)
    chosen += (root / "chapters").glob("*.ipynb")
    return sorted(p.relative_to(root) for p in chosen)


def pack(out: str | Path = PACK_NAME, root: Path = ROOT, overwrite: bool = False) -> Path:
    """Write the course into the zip file ``out``, atomically; return its path.

    An existing ``out`` is replaced only with ``overwrite=True``: it may be a
    learner's or an instructor's own file.
    """
    out = Path(out)
    if out.is_dir():
        raise IsADirectoryError(f"{out} is a folder; give a file name, e.g. {out / PACK_NAME}.")
    if out.exists() and not overwrite:
        raise FileExistsError(
            f"{out} exists already. Give another --out, or pass --overwrite to replace it."
        )
    files = files_to_pack(root)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in files:
                archive.write(Path(root) / name, f"{TOP_FOLDER}/{name.as_posix()}")
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
