"""Build the Colab-like environment that tests/test_colab_e2e.py runs the real setup cell in (needs PyPI once).

    python tests/colab_env.py      # into ~/.cache/genai_lib/colab-like-env, or the folder $GENAI_COLAB_ENV names

Shaped like Colab's runtime, as far as the setup cell can tell:
- torch installed first and on its own, as Colab preinstalls it (the setup cell must leave it alone);
- the classic notebook stack and ipywidgets 7 that Colab ships, not JupyterLab and ipywidgets 8;
- genai_lib's other dependencies (Colab has them), and the build tools pip needs to install a source tree
  with no network (in Colab pip would fetch them);
- no genai_lib.
Run again, it rebuilds only if the recipe changed. The tests skip, saying why, where it is not built.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ENV = Path(
    os.environ.get("GENAI_COLAB_ENV") or Path.home() / ".cache" / "genai_lib" / "colab-like-env"
)
TORCH = "torch==2.13.0"  # the wheel on this machine's disk; installed apart from everything else
STACK = [
    "ipywidgets>=7.7,<8",
    "notebook<7",
    "ipykernel",
    "numpy",
    "matplotlib",
    "tqdm",
    "scikit-learn",
    "papermill",
    "safetensors",
    "transformers",
    "setuptools>=64",
    "wheel",
]
RECIPE = {
    "python": f"{sys.version_info.major}.{sys.version_info.minor}",
    "torch": TORCH,
    "stack": STACK,
}
MARKER = ENV / "colab-like.json"


def python() -> Path:
    return ENV / "bin" / "python"


def built() -> bool:
    """Whether the environment exists and was built from this recipe."""
    try:
        return python().exists() and json.loads(MARKER.read_text()) == RECIPE
    except (OSError, ValueError):
        return False


def build() -> None:
    if built():
        print(f"{ENV}: already built")
        return
    shutil.rmtree(ENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(ENV)], check=True)
    pip = [str(python()), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, TORCH], check=True)
    subprocess.run([*pip, *STACK], check=True)
    MARKER.write_text(json.dumps(RECIPE))
    print(f"{ENV}: built")


if __name__ == "__main__":
    build()
