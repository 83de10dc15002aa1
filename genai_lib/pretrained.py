"""The course's pretrained base model: a small character GPT trained on the bundled English text.

Chapter 04 fine-tunes a model that already knows English. Training it takes a
few minutes on a CPU, so the result ships with the course, in ``data/pretrained/``:

- ``base_pydoc.safetensors``: the weights (safetensors: tensors only, no code);
- ``base_pydoc.json``: the GPT configuration, the tokenizer, how it was
  trained (the exact command), its validation loss, and the SHA-256 of the
  weights file.

:func:`load_base` checks the SHA-256 before it reads a byte of the weights, so
a truncated or altered file is refused with a message that says how to
rebuild it. :func:`pretrain_base` (``python -m genai_lib pretrain``) rebuilds
it: the same command on the same machine gives the same file, bit for bit.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from genai_lib.config import SHIPPED_DATA_DIR, seed_everything
from genai_lib.data.text import CharTokenizer, load_text, split_train_val
from genai_lib.lm import bits, evaluate_lm, train_lm
from genai_lib.models.gpt import GPT, GPTConfig
from genai_lib.optim import muon_with_adamw
from genai_lib.shipped import ShippedWeightsError, load_weights, save_weights

BASE_NAME = "base_pydoc"
DEFAULT_DIR = SHIPPED_DATA_DIR / "pretrained"
# Every printable ASCII character and the newline: the base can read any cleaned text
# (genai_lib.data.clean_to_ascii), not only the characters its training text happened to use.
ASCII_VOCAB = "\n" + "".join(chr(c) for c in range(32, 127))
BASE_SETTINGS = dict(n_layer=4, n_head=4, n_embd=128, block_size=128)


class BaseModelError(ShippedWeightsError):
    """The shipped base model is missing or does not match its recorded checksum."""


def save_base(
    folder: Path, model: GPT, tokenizer: CharTokenizer, info: dict[str, Any], name: str = BASE_NAME
) -> Path:
    """Write ``name.safetensors`` and ``name.json`` (config, tokenizer, ``info``, SHA-256) into ``folder``."""
    # the output layer is tied to the token embedding: store the tensor once
    weights = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight"}
    return save_weights(
        folder,
        name,
        weights,
        {"config": asdict(model.config), "tokenizer": tokenizer.to_dict(), **info},
    )


def load_base(
    folder: Path | None = None, name: str = BASE_NAME
) -> tuple[GPT, CharTokenizer, dict[str, Any]]:
    """The pretrained base: ``(model in eval mode, tokenizer, metadata)``.

    Raises :class:`BaseModelError` if the files are missing, or if the weights'
    SHA-256 differs from the one recorded next to them.
    """
    folder = Path(folder) if folder is not None else DEFAULT_DIR
    weights, meta = load_weights(
        folder,
        name,
        "pretrained base",
        f"Rebuild it with:  python -m genai_lib pretrain --out {folder}",
        BaseModelError,
    )
    model = GPT(GPTConfig(**meta["config"]))
    weights["lm_head.weight"] = weights["token_embedding.weight"]
    model.load_state_dict(weights)
    return model.eval(), CharTokenizer.from_dict(meta["tokenizer"]), meta


def pretrain_base(
    out: Path | None = None,
    steps: int = 1200,
    seed: int = 0,
    progress: bool | str = True,
    command: str = "python -m genai_lib pretrain",
) -> Path:
    """Train the base GPT on the bundled pydoc text (its first 90%) and save it; return the JSON path.

    The recipe is the one our GPT benchmark found fastest on a CPU (benchmarks/RESULTS.md):
    Muon on the blocks' weight matrices, AdamW on the embeddings, batches of 32 windows.
    """
    out = Path(out) if out is not None else DEFAULT_DIR
    text = load_text("pydoc")
    tokenizer = CharTokenizer(ASCII_VOCAB)
    train_tokens, val_tokens = split_train_val(
        torch.tensor(tokenizer.encode(text)), val_fraction=0.1
    )
    seed_everything(seed)
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, **BASE_SETTINGS))
    optimizer = muon_with_adamw(
        model, muon_lr=0.02, adamw_lr=4e-3, betas=(0.9, 0.95), weight_decay=0.1
    )
    start = time.perf_counter()
    train_lm(
        model,
        train_tokens,
        steps=steps,
        block_size=model.block_size,
        batch_size=32,
        seed=seed,
        optimizer=optimizer,
        warmup_steps=max(1, steps // 20),
        min_lr_ratio=0.025,
        device="cpu",
        progress=progress,
        desc="pretraining the base",
    )
    seconds = time.perf_counter() - start
    val_nats = evaluate_lm(model, val_tokens)
    info = {
        "trained_on": "pydoc (first 90%)",
        "steps": steps,
        "seed": seed,
        "command": command,
        "train_seconds": round(seconds, 1),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "val_loss_nats_per_char": round(val_nats, 4),
        "val_bits_per_char": round(bits(val_nats), 4),
    }
    return save_base(out, model, tokenizer, info)
