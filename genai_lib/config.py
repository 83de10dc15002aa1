"""Settings read from the environment, in one place.

Every other module takes its settings as arguments. Only this file reads
environment variables, so a learner can see at a glance what can be changed:

- ``GENAI_FAST``: ``1``/``true`` shrinks data and steps so a chapter runs in
  about a minute (the test suite sets it). ``0``/``false`` (the default) is the
  real lesson.
- ``GENAI_DEVICE``: force ``cpu``, ``cuda``, ``cuda:1`` or ``mps``.
- ``GENAI_DATA``: the one folder to read and write data in, instead of the
  repository's ``data/`` and the user cache folder.
- ``GENAI_PROGRESS``: how training shows progress: ``auto`` (a widget in a
  notebook, text in a terminal; the default), ``text`` (a plain-text bar),
  ``summary`` (one line per training run: ``python -m genai_lib run`` sets it,
  so saved notebooks read cleanly) or ``off``.
"""

from __future__ import annotations

import importlib.resources
import os
import random
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_flag(name: str, value: str | None) -> bool:
    """Read an on/off environment variable strictly: a typo is an error, not 'off'."""
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(
        f"{name}={value!r} is not understood. Use {name}=1 (fast mode: tiny data, "
        f"few steps) or {name}=0 (the full lesson), or leave it unset."
    )


FAST: bool = parse_flag("GENAI_FAST", os.environ.get("GENAI_FAST"))


PROGRESS_STYLES = ("auto", "text", "summary", "off")


def parse_progress(value: str | None) -> str:
    style = (value or "auto").strip().lower()
    if style not in PROGRESS_STYLES:
        raise ValueError(
            f"GENAI_PROGRESS={value!r} is not understood; use one of {', '.join(PROGRESS_STYLES)}."
        )
    return style


PROGRESS: str = parse_progress(os.environ.get("GENAI_PROGRESS"))


def pick(fast: T, full: T) -> T:
    """Return ``fast`` in fast mode and ``full`` otherwise.

    Used in parameters cells: ``steps = pick(fast=50, full=3000)``.
    """
    return fast if FAST else full


# ---------------------------------------------------------------- device


def get_device(prefer: str | torch.device | None = None) -> torch.device:
    """The device to train on: CUDA, then Apple's MPS, then the CPU.

    ``prefer`` (or the ``GENAI_DEVICE`` environment variable) overrides the
    choice; asking for a device this machine does not have is an error.
    """
    name = str(prefer or os.environ.get("GENAI_DEVICE") or "")  # a torch.device too
    name = name.strip().lower()
    if not name or name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(
            f"Unknown device {name!r}. Use 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto'."
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"Device {name!r} was asked for, but torch sees no CUDA GPU here.")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"Device {name!r} was asked for, but MPS is not available here.")
    if device.type not in {"cpu", "cuda", "mps"}:
        raise ValueError(f"Device {name!r} is not supported; use cpu, cuda or mps.")
    return device


def device_of(x: torch.Tensor | torch.nn.Module) -> torch.device:
    """Where a tensor lives, or where a module's parameters live (the CPU for a module without any)."""
    if isinstance(x, torch.Tensor):
        return x.device
    param = next(iter(x.parameters()), None)
    return param.device if param is not None else torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) so a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


# ---------------------------------------------------------------- data folders

REPO_DATA_DIR = Path(__file__).resolve().parent.parent / "data"  # in a clone of the course


def _shipped_data_dir() -> Path:
    """Where the course's own data files are (the pinned classifier, the pretrained base model).

    An installed genai_lib carries them as the package data ``genai_lib._data``
    (``pyproject.toml`` maps the repository's ``data/`` there); a clone, or an
    editable install of one, reads the repository's ``data/`` itself.
    """
    try:
        readme = importlib.resources.files("genai_lib._data") / "README.md"
    except ModuleNotFoundError:
        return REPO_DATA_DIR
    return Path(str(readme)).parent


SHIPPED_DATA_DIR = _shipped_data_dir()


def user_cache_dir() -> Path:
    """Where downloads go: ``$XDG_CACHE_HOME/genai_lib`` or ``~/.cache/genai_lib``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "genai_lib"


def data_dirs() -> list[Path]:
    """Folders searched for data files, in order.

    ``GENAI_DATA`` replaces the list. Otherwise: the repository's ``data/``
    (present in a clone), then the user cache folder.
    """
    override = os.environ.get("GENAI_DATA")
    if override:
        folder = Path(override).expanduser()
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(
                f"GENAI_DATA={override!r} is a file, not a folder. Point it at the folder "
                f"that holds your data (for example the one with mnist/ in it), or unset it."
            )
        return [folder]
    dirs = [REPO_DATA_DIR] if REPO_DATA_DIR.is_dir() else []
    return dirs + [user_cache_dir()]


def download_dir() -> Path:
    """The folder that downloads are written to (the last of :func:`data_dirs`)."""
    return data_dirs()[-1]
