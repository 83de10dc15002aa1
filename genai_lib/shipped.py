"""Trained weights that ship with the course, in ``data/``, and are checked every time they are read.

Each shipped model is two files in one folder:

- ``NAME.safetensors``: the tensors (safetensors: tensors only, no code to run);
- ``NAME.json``: how it was made (the exact command, its settings, what it
  scored) and the SHA-256 of the weights file.

:func:`load_weights` checks the SHA-256 before it reads a byte of the weights,
so a truncated, corrupt or altered file is refused with a message that says how
to restore or rebuild it. Two models ship today: chapter 04's pretrained base
(:mod:`genai_lib.pretrained`) and the digit classifier that scores generated
digits in chapters 02b and 05 (:mod:`genai_lib.metrics`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from genai_lib.data.download import sha256_file


class ShippedWeightsError(RuntimeError):
    """A shipped model is missing, or its weights do not match their recorded checksum."""


def save_weights(folder: Path, name: str, tensors: dict[str, Tensor], info: dict[str, Any]) -> Path:
    """Write ``name.safetensors`` and ``name.json`` (``info`` plus the SHA-256) into ``folder``; return the JSON path.

    Both files are written to a temporary name first and then renamed, so an
    interrupted save leaves the old pair, never half a file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    weights_path = folder / f"{name}.safetensors"
    tmp = weights_path.with_suffix(".safetensors.tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))
    tmp.replace(weights_path)
    meta = {**info, "weights_file": weights_path.name, "sha256": sha256_file(weights_path)}
    meta_path = folder / f"{name}.json"
    meta_path.with_suffix(".json.tmp").write_text(json.dumps(meta, indent=2) + "\n")
    meta_path.with_suffix(".json.tmp").replace(meta_path)
    return meta_path


def load_weights(
    folder: Path,
    name: str,
    what: str,
    rebuild: str,
    error: type[ShippedWeightsError] = ShippedWeightsError,
) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """``(tensors, metadata)`` of ``folder/name``, after checking the weights' SHA-256.

    ``what`` names the model in messages ("pretrained base"); ``rebuild`` is
    the sentence that says how to make it again. Raises ``error`` (a
    :class:`ShippedWeightsError`) if a file is missing or unreadable, or the
    checksum differs.
    """
    meta_path = folder / f"{name}.json"
    if not meta_path.is_file():
        raise error(
            f"No {what} at {meta_path}. It ships in the repository's data/ folder; if you installed "
            f"genai_lib without the repository, clone it. {rebuild}"
        )
    try:
        meta = json.loads(meta_path.read_text())
        weights_path = folder / meta["weights_file"]
        recorded = meta["sha256"]
    except (ValueError, KeyError, TypeError) as err:
        raise error(
            f"{meta_path} is not a readable description of the {what} ({type(err).__name__}: {err}): "
            f"it is truncated or was edited. Restore it from the repository "
            f"(git checkout -- {meta_path.name}). {rebuild}"
        ) from None
    if not weights_path.is_file():
        raise error(f"{meta_path.name} names {weights_path.name}, which is missing. {rebuild}")
    got = sha256_file(weights_path)
    if got != recorded:
        raise error(
            f"{weights_path} does not match its recorded SHA-256 (expected {recorded}, got {got}): "
            f"the file is truncated, corrupt or was changed. Restore it from the repository "
            f"(git checkout -- {weights_path.name}). {rebuild}"
        )
    try:
        tensors = load_file(str(weights_path))
    except SafetensorError as err:  # a file saved with a matching checksum but not as safetensors
        raise error(
            f"{weights_path} matches its checksum but is not a safetensors file ({err}). {rebuild}"
        ) from None
    return tensors, meta
