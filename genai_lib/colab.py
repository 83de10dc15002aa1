"""Google Colab: the badge and the setup cell that every chapter opens with.

The repository's address lives here, in :data:`REPOSITORY` and :data:`REF`, and
nowhere else. ``python -m genai_lib badges --repo OWNER/NAME --ref TAG``
rewrites these two constants, then every chapter's badge and setup cell from
them, so a fork for a workshop changes one thing.

The setup cell cannot import ``genai_lib`` (in a fresh Colab runtime it is not
installed yet), so it is plain code, written out by :func:`setup_cell_source`.
In Colab it installs the course from a course file uploaded by the learner
(``python -m genai_lib pack``), or else from a clone of the repository at
``REF``; never with an editable install, and never reinstalling torch (Colab's
preinstalled torch satisfies the package's ``torch>=2.2``). The installed
package carries its shipped data. Then it turns on widgets and says which
accelerator it found. While the address is the placeholder and no file was
uploaded, or when the clone fails, it prints what to do and raises nothing.
Anywhere else it does nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

# The course's GitHub repository, and the branch or tag that the badges and setup
# cells point at. Set both with `python -m genai_lib badges --repo OWNER/NAME --ref REF`.
REPOSITORY = "OWNER/NAME"
REF = "main"

BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
_BADGE_LINE = re.compile(r"^\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)[ \t]*$", re.MULTILINE)
_REPO_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


def check_repository(repo: str, ref: str) -> None:
    """Raise ``ValueError`` unless ``repo`` looks like ``OWNER/NAME`` and ``ref`` like a branch or tag."""
    if not _REPO_NAME.match(repo):
        raise ValueError(f"The repository must look like OWNER/NAME (as on GitHub); got {repo!r}.")
    if not re.fullmatch(r"[A-Za-z0-9_./-]+", ref) or ref.startswith("-"):
        raise ValueError(f"The ref must be a branch or tag name; got {ref!r}.")


def badge_markdown(chapter_file: str, repo: str = REPOSITORY, ref: str = REF) -> str:
    """The "Open in Colab" badge for ``chapters/<chapter_file>``, as one line of Markdown."""
    url = f"https://colab.research.google.com/github/{repo}/blob/{ref}/chapters/{chapter_file}"
    return f"[![Open In Colab]({BADGE_IMAGE})]({url})"


PLACEHOLDER = "OWNER/NAME"  # the address before anyone has set one


def setup_cell_source(repo: str = REPOSITORY, ref: str = REF) -> str:
    """The source of the setup cell: installs the course in Colab, does nothing elsewhere.

    In Colab it installs from a course file (``python -m genai_lib pack``)
    uploaded into the Files pane or Google Drive if there is one, else from a
    clone of ``repo`` at ``ref``. Where neither is possible (the address is
    still the placeholder, or the clone fails) it says what to do, and raises nothing.
    """
    name = repo.split("/")[1]
    return f'''# Setup. In Google Colab: install the course (Colab's torch is kept as it is),
# turn on widgets and report the GPU. Anywhere else this cell does nothing.
import sys

if "google.colab" in sys.modules:
    import glob
    import os
    import subprocess

    REPOSITORY, REF = "{repo}", "{ref}"  # written by: python -m genai_lib badges
    # A course file (python -m genai_lib pack) uploaded to the Files pane
    # (Colab's working folder, /content) or to Google Drive, if any:
    packs = sorted(glob.glob("genai-course*.zip") + glob.glob("drive/MyDrive/genai-course*.zip"))
    source, problem = (packs[-1], None) if packs else (None, None)
    if source is None and REPOSITORY == "{PLACEHOLDER}":
        problem = "this copy of the course has no repository address yet."
    elif source is None:
        source = os.path.abspath("{name}")
        if not os.path.isdir(source):
            url = f"https://github.com/{{REPOSITORY}}"
            git = ["git", "clone", "--quiet", "--depth", "1", "--branch", REF, url, source]
            clone = subprocess.run(git, capture_output=True, text=True)
            if clone.returncode != 0:
                said = (clone.stderr.strip().splitlines() or ["no message"])[-1]
                source = None
                problem = f"github.com/{{REPOSITORY}} (at {{REF}}) could not be cloned: {{said}}"
    if source is not None:
        pip = [sys.executable, "-m", "pip", "install", "--quiet", source]  # not -e: see README
        install = subprocess.run(pip, capture_output=True, text=True)
        if install.returncode != 0:
            problem = f"pip could not install {{source}}: {{install.stderr.strip()[-500:]}}"
    if problem is None:
        import torch
        from google.colab import output

        output.enable_custom_widget_manager()
        if torch.cuda.is_available():
            gpu = f"GPU: {{torch.cuda.get_device_name(0)}}"
        else:
            gpu = "No GPU in this runtime: Runtime > Change runtime type > GPU, then run it again."
        print(f"Installed the course from {{source}}. {{gpu}}")
    else:
        print(
            f"The course is not installed: {{problem}}\\n"
            "To install it, either\\n"
            "  - upload genai-course.zip (your instructor's, or made with\\n"
            "    `python -m genai_lib pack` in a copy of the course) into the Files pane\\n"
            "    on the left, or to Google Drive as MyDrive/genai-course.zip with Drive\\n"
            "    mounted, then run this cell again; or\\n"
            "  - in a copy of the course with a GitHub repository, run\\n"
            "    `python -m genai_lib badges --repo OWNER/NAME`\\n"
            "    and open the chapter from its new badge."
        )'''


def _with_badge(markdown: str, badge: str) -> str:
    if _BADGE_LINE.search(markdown):
        return _BADGE_LINE.sub(lambda _: badge, markdown, count=1)
    title, _, rest = markdown.partition("\n")
    rest = rest.lstrip("\n")
    return f"{title}\n\n{badge}\n\n{rest}" if rest else f"{title}\n\n{badge}"


def apply_to_notebook(path: Path, repo: str = REPOSITORY, ref: str = REF) -> bool:
    """Write the badge (into the first Markdown cell) and the setup cell (before the parameters cell) of one chapter.

    An existing badge and setup cell (a code cell tagged ``setup``) are replaced,
    so running it twice changes nothing. Outputs of other cells are kept.
    Returns whether the file changed.
    """
    import nbformat

    nb = nbformat.read(path, as_version=4)
    before = nbformat.writes(nb)
    first_md = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if first_md is None:
        raise ValueError(f"{path.name} has no Markdown cell for the badge.")
    first_md.source = _with_badge(first_md.source, badge_markdown(path.name, repo, ref))

    source = setup_cell_source(repo, ref)
    setup = [c for c in nb.cells if c.cell_type == "code" and "setup" in c.metadata.get("tags", [])]
    if setup:
        setup[0].source = source
    else:
        params = next(
            (i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])), None
        )
        if params is None:
            raise ValueError(
                f"{path.name} has no cell tagged 'parameters' to put the setup cell before."
            )
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["tags"] = ["setup"]
        nb.cells.insert(params, cell)
    after = nbformat.writes(nb)
    if after != before:
        path.write_text(after + ("" if after.endswith("\n") else "\n"))
    return after != before


def set_repository(repo: str, ref: str) -> None:
    """Rewrite :data:`REPOSITORY` and :data:`REF` in this file (the one place they live)."""
    check_repository(repo, ref)
    this = Path(__file__)
    text = this.read_text()
    text = re.sub(
        r'^REPOSITORY = "[^"]*"', f'REPOSITORY = "{repo}"', text, count=1, flags=re.MULTILINE
    )
    text = re.sub(r'^REF = "[^"]*"', f'REF = "{ref}"', text, count=1, flags=re.MULTILINE)
    this.write_text(text)
