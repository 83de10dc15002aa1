"""Saving and loading training state, safely.

A checkpoint holds everything needed to continue a run exactly where it
stopped: the weights of every model, the optimizers, the learning-rate
schedulers, the gradient scalers, the step, the history, and every random
number generator. It is written atomically (a temporary file, then a rename),
so a crash while saving never leaves a half-written checkpoint behind, and it
is read with ``torch.load(weights_only=True)``, which refuses to run code
hidden in a file. Every file written here is sealed with the SHA-256 of its
contents, checked on load, so a byte changed on disk is refused with a clear
error instead of resuming from a damaged weight.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

FORMAT = "genai_lib.checkpoint/1"
# the envelope of every file atomic_save writes: a payload and its SHA-256
SEALED = "genai_lib.sealed/1"


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be used: unreadable, truncated, or not ours."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint was saved from a different model than the one given."""


# ---------------------------------------------------------------- model fingerprints


def fingerprint(model: nn.Module) -> dict[str, Any]:
    """What a model must match to take a checkpoint's weights: class and tensor shapes."""
    return {
        "class": type(model).__name__,
        "shapes": {name: list(t.shape) for name, t in model.state_dict().items()},
    }


def compare_fingerprints(name: str, saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Human-readable differences between two fingerprints (empty if they match)."""
    problems = []
    if saved["class"] != current["class"]:
        problems.append(
            f"{name} is a {saved['class']} in the checkpoint but a {current['class']} here"
        )
    old, new = saved["shapes"], current["shapes"]
    for key in old.keys() - new.keys():
        problems.append(f"{name}.{key} is in the checkpoint but not in this model")
    for key in new.keys() - old.keys():
        problems.append(f"{name}.{key} is in this model but not in the checkpoint")
    for key in old.keys() & new.keys():
        if old[key] != new[key]:
            problems.append(
                f"{name}.{key} has shape {old[key]} in the checkpoint but {new[key]} here"
            )
    return sorted(problems)


# ---------------------------------------------------------------- random number generators


def rng_state() -> dict[str, Any]:
    """The state of every generator a training step may draw from."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        # numpy's state holds an ndarray; store plain types so weights_only loading accepts it
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    random.setstate(state["python"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy(), *rest))
    torch.set_rng_state(state["torch"])
    if (
        "cuda" in state
        and torch.cuda.is_available()
        and len(state["cuda"]) == torch.cuda.device_count()
    ):
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------- files


def remove_leftovers(folder: Path, pattern: str) -> list[Path]:
    """Delete the temporary files matching ``pattern`` in ``folder`` that a killed write left behind.

    A write that is killed outright (SIGKILL, a power cut) cannot clean up
    after itself; the next write of the same file does it. Returns what was removed.
    """
    removed = []
    for leftover in folder.glob(pattern):
        if leftover.is_file():
            leftover.unlink(missing_ok=True)
            removed.append(leftover)
    return removed


def atomic_save(obj: Any, path: str | Path) -> Path:
    """Save ``obj`` sealed with its SHA-256: to a temporary file next to ``path``, then renamed into place.

    The file is ``torch.save`` of ``{"format": SEALED, "sha256": ..., "payload": the bytes of
    torch.save(obj)}``; :func:`load_file` checks the digest before it unpacks the payload.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(
            f"Cannot save to {path}: it is a folder. Give a file name, e.g. {path / 'run.pt'}."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    payload = buffer.getvalue()
    sealed = {
        "format": SEALED,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "payload": torch.frombuffer(bytearray(payload), dtype=torch.uint8),
    }
    # from a save that was killed (SIGKILL, power)
    remove_leftovers(path.parent, path.name + ".*.tmp")
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(sealed, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX and Windows
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_file(path: str | Path, what: str = "checkpoint", advice: str = "") -> Any:
    """Read a file written by :func:`atomic_save`, after checking its SHA-256; or raise :class:`CheckpointError`.

    Loading uses ``weights_only=True``: no code in the file can run. A file
    that is not sealed (written by ``torch.save`` directly, or by an older
    genai_lib) is returned as it is. ``what`` and ``advice`` go into the messages.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(
            f"The {what} path {path} is a folder, not a file. Give the file's path, "
            f"e.g. {path / 'run.pt'}."
        )
    if not path.is_file():
        raise CheckpointError(f"No {what} at {path}.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for bad files
        detail = str(err).strip().splitlines()[0][:200] if str(err).strip() else "no details"
        size = path.stat().st_size
        raise CheckpointError(
            f"The {what} {path} cannot be read ({size:,} bytes): it is truncated, corrupt, or not a {what} "
            f"({type(err).__name__}: {detail}). {advice}".rstrip()
        ) from None
    if not (isinstance(state, dict) and state.get("format") == SEALED):
        return state
    payload = state["payload"].numpy().tobytes()
    if hashlib.sha256(payload).hexdigest() != state["sha256"]:
        raise CheckpointError(
            f"The {what} {path} is damaged: its contents do not match the SHA-256 saved with them (a byte "
            f"changed on disk, or a copy went wrong). Nothing was loaded from it. {advice}".rstrip()
        )
    return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint file safely, or raise a :class:`CheckpointError` that says why not."""
    path = Path(path)
    state = load_file(
        path, "checkpoint", "Delete it to start training afresh, or pass another checkpoint_path."
    )
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is a torch file but not a genai_lib training checkpoint "
            f"(expected format {FORMAT!r}). Delete it or pass another checkpoint_path."
        )
    return state


def check_models_match(
    path: str | Path, state: dict[str, Any], models: dict[str, nn.Module]
) -> None:
    """Raise :class:`CheckpointMismatchError` unless ``models`` are the ones saved in ``state``."""
    saved = state["fingerprints"]
    problems = []
    for name in saved.keys() - models.keys():
        problems.append(f"the checkpoint has a model '{name}' that this run does not")
    for name in models.keys() - saved.keys():
        problems.append(f"this run has a model '{name}' that the checkpoint does not")
    for name in saved.keys() & models.keys():
        problems += compare_fingerprints(name, saved[name], fingerprint(models[name]))
    if problems:
        shown = "\n  - ".join(problems[:8])
        more = f"\n  ... and {len(problems) - 8} more" if len(problems) > 8 else ""
        raise CheckpointMismatchError(
            f"The checkpoint {path} was saved from a different model:\n  - {shown}{more}\n"
            f"Build the model with the settings it was saved with, or delete the file "
            f"(or pass another checkpoint_path) to start afresh."
        )


# ---------------------------------------------------------------- trained models

MODEL_FORMAT = "genai_lib.model/1"


def save_model(path: str | Path, model: nn.Module, tokenizer: Any = None) -> Path:
    """Save a trained model to share or reload: its class, its config, its weights, its tokenizer.

    ``model.config`` must be a dataclass (as :class:`genai_lib.models.GPTConfig`
    is); ``tokenizer`` anything with ``to_dict()``. Written atomically.
    A model with LoRA adapters is saved as the plain model it computes (the
    adapters merged into a copy), so that ``load_model(path, GPT, GPTConfig)``
    reads it back; ``model`` itself is left as it is.
    """
    import dataclasses

    from genai_lib.models.lora import lora_layers, without_lora

    if lora_layers(model):
        model = without_lora(model)

    config = getattr(model, "config", None)
    if config is None or not dataclasses.is_dataclass(config):
        raise TypeError(
            f"save_model needs a model with a dataclass .config; {type(model).__name__} has none."
        )
    return atomic_save(
        {
            "format": MODEL_FORMAT,
            "class": type(model).__name__,
            "config": dataclasses.asdict(config),
            "weights": model.state_dict(),
            "tokenizer": tokenizer.to_dict() if tokenizer is not None else None,
        },
        path,
    )


def load_model(
    path: str | Path, model_class: type[nn.Module], config_class: type
) -> tuple[nn.Module, Any]:
    """The inverse of :func:`save_model`: ``(model, tokenizer_state)``, the model in eval mode on the CPU.

    Raises :class:`CheckpointError` for an unreadable file and
    :class:`CheckpointMismatchError` when the file holds another kind of model.
    Rebuild the tokenizer with :func:`genai_lib.data.tokenizer_from_dict`.
    """
    path = Path(path)
    state = load_file(path, "saved model", "Save it again with save_model.")
    if not isinstance(state, dict) or state.get("format") != MODEL_FORMAT:
        raise CheckpointError(
            f"{path} is not a genai_lib model file (expected format {MODEL_FORMAT!r}); "
            f"a training checkpoint is loaded by fit(..., checkpoint_path=...) instead."
        )
    if state["class"] != model_class.__name__:
        raise CheckpointMismatchError(
            f"{path} holds a {state['class']}, not a {model_class.__name__}."
        )
    model = model_class(config_class(**state["config"]))
    model.load_state_dict(state["weights"])
    return model.eval(), state["tokenizer"]
