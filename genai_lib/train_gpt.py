"""Train chapter 03's character-level GPT from the command line, on one process or many.

One process (laptop, one GPU)::

    python -m genai_lib.train_gpt --steps 1500 --checkpoint runs/gpt.pt

Two data-parallel processes on this machine's CPUs (gloo), or one per GPU (NCCL)::

    torchrun --standalone --nproc_per_node=2 -m genai_lib.train_gpt --steps 1500 --checkpoint runs/gpt.pt

Run the same command again and it resumes from the checkpoint. The defaults
are chapter 03's GPT (4 layers, 4 heads, 128 dimensions, 64-character
context, batch 32, learning rate 3e-3) on the bundled ``pydoc`` corpus;
chapter 06 imports :class:`GPTRun` to train the same model in the notebook.
``--batch-size`` is per process and per micro-batch, as in :func:`~genai_lib.train.fit`:
one step sees ``batch_size * accumulate * processes`` windows.

Rank 0 prints the progress and, with ``--log-file FILE``, writes one JSON object a
line: the settings, each logged step, and a summary (held-out bits per
character, tokens per second).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from genai_lib import distributed
from genai_lib.callbacks import Callback, StepTimer
from genai_lib.checkpoint import save_model
from genai_lib.config import PROGRESS_STYLES, get_device, seed_everything
from genai_lib.data import TEXT_NAMES, CharTokenizer, load_text, split_train_val
from genai_lib.lm import bits, evaluate_lm, train_lm
from genai_lib.models import GPT, GPTConfig
from genai_lib.training_state import TrainingState


@dataclass
class GPTRun:
    """Everything that defines a run. The defaults are chapter 03's GPT."""

    corpus: str = "pydoc"
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    dropout: float = 0.0
    batch_size: int = 32  # per process and per micro-batch
    accumulate: int = 1  # micro-batches per optimizer step
    steps: int = 1500
    lr: float = 3e-3
    weight_decay: float = 0.1
    precision: str = "auto"  # "auto", "fp32", "bf16" or "fp16"
    compile: bool = False
    device: str | None = None  # None: the best available
    seed: int = 0
    checkpoint: str | None = None
    checkpoint_every: int = 100
    stop_after: int | None = None
    log_file: str | None = None  # a JSON-lines file, written by rank 0
    save: str | None = None  # the trained model, for genai_lib.checkpoint.load_model
    log_every: int = 10
    eval_every: int = 0  # 0: evaluate at the end only
    progress: bool | str = True


def run(settings: GPTRun) -> dict[str, Any]:
    """Train the GPT ``settings`` describe (resuming from its checkpoint, if any) and return a summary.

    Under torchrun every process calls this; each returns the same summary.
    """
    device = get_device(settings.device)
    process = distributed.init(device)
    if settings.corpus != "pydoc" and not process.is_main:
        distributed.barrier()  # rank 0 downloads, once, while the others wait
    text = load_text(settings.corpus, download=settings.corpus != "pydoc")
    if settings.corpus != "pydoc" and process.is_main:
        distributed.barrier()
    tokenizer = CharTokenizer.from_text(text)
    train_tokens, val_tokens = split_train_val(
        torch.tensor(tokenizer.encode(text)), val_fraction=0.1
    )

    # DDP copies rank 0's initial weights to every rank
    seed_everything(settings.seed + process.rank)
    config = GPTConfig(
        vocab_size=tokenizer.vocab_size,
        block_size=settings.block_size,
        n_layer=settings.n_layer,
        n_head=settings.n_head,
        n_embd=settings.n_embd,
        dropout=settings.dropout,
    )
    model = GPT(config)
    log = _Log(settings.log_file if process.is_main else None)
    log.write(
        {
            "kind": "settings",
            **dataclasses.asdict(settings),
            "world_size": process.world_size,
            "vocab_size": tokenizer.vocab_size,
            "train_tokens": len(train_tokens),
        }
    )

    timer = StepTimer()
    start = time.perf_counter()
    history = train_lm(
        model,
        train_tokens,
        steps=settings.steps,
        block_size=settings.block_size,
        batch_size=settings.batch_size,
        lr=settings.lr,
        val_tokens=val_tokens,
        eval_every=settings.eval_every,
        seed=settings.seed,
        weight_decay=settings.weight_decay,
        warmup_steps=settings.steps // 20,
        accumulate=settings.accumulate,
        compile=settings.compile,
        precision=settings.precision,
        device=device,
        checkpoint_path=settings.checkpoint,
        checkpoint_every=settings.checkpoint_every,
        stop_after=settings.stop_after,
        log_every=settings.log_every,
        progress=settings.progress,
        desc=f"GPT x{process.world_size}" if process.distributed else "GPT",
        callbacks=[timer, log],
    )
    seconds = time.perf_counter() - start
    steps_done = min(settings.steps, settings.stop_after or settings.steps)  # where fit stops

    tokens_per_step = (
        settings.batch_size * settings.block_size * settings.accumulate * process.world_size
    )
    step_times = timer.step_seconds
    # the first steps warm up (and compile)
    median_step = timer.median(skip=min(5, len(step_times) // 2))
    summary = {
        "kind": "summary",
        "world_size": process.world_size,
        "steps_done": steps_done,
        "steps_this_run": len(step_times),
        "seconds": round(seconds, 2),
        "first_step_s": round(step_times[0], 2) if step_times else None,  # includes any compiling
        "tokens_per_s_median": round(tokens_per_step / median_step) if median_step else None,
        "train_loss": history.last("loss") if history.rows else None,
        "val_bits": bits(evaluate_lm(model, val_tokens, settings.block_size)),
    }
    log.write(summary)
    if process.is_main:
        print(
            f"{summary['steps_done']} steps on {process.world_size} process(es); "
            f"held-out {summary['val_bits']:.3f} bits per character; "
            f"{summary['tokens_per_s_median']} training tokens/s"
        )
        if settings.save:
            save_model(settings.save, model, tokenizer)
            print(f"saved the model to {settings.save}")
    return summary


class _Log(Callback):
    """JSON lines appended to a file (or nothing, for ranks other than 0).

    As a callback it appends each row of the history as it is logged (one
    step later, or at the end), so an interrupted run's file holds its steps.
    Only this call's rows: a resumed run's history also holds the earlier ones.
    """

    def __init__(self, path: str | None):
        self.path = Path(path) if path else None
        self.written = 0
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    def on_start(self, state: TrainingState) -> None:
        self.written = len(state.history.rows)

    def after_step(self, state: TrainingState, metrics: Any) -> None:
        for row in state.history.rows[self.written :]:
            self.write({"kind": "history", **row})
        self.written = len(state.history.rows)

    def on_end(self, state: TrainingState) -> None:
        self.after_step(state, {})

    def on_interrupt(self, state: TrainingState, between_steps: bool) -> None:
        self.after_step(state, {})


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``--log-file`` file, in order."""
    return [
        json.loads(line)
        for line in Path(path).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


HELP = {
    "corpus": "pydoc and stdlib ship with Python; tinyshakespeare is downloaded (1 MB) on first use",
    "n_layer": "transformer blocks",
    "n_head": "attention heads per block",
    "n_embd": "width of the model",
    "block_size": "characters of context",
    "dropout": "dropout probability",
    "batch_size": "windows per process and per micro-batch",
    "accumulate": "micro-batches whose gradients are summed into one optimizer step",
    "steps": "optimizer steps of the whole run (the learning-rate schedule spans them)",
    "lr": "peak learning rate of AdamW",
    "weight_decay": "AdamW's weight decay, on the weight matrices",
    "precision": "auto: bf16 on GPUs that have it, fp16 + GradScaler on older GPUs, fp32 on CPUs",
    "compile": "train through torch.compile (falls back, with a warning, where it cannot)",
    "device": "cpu, cuda or mps (default: the best available; under torchrun, GPU LOCAL_RANK)",
    "seed": "seed of the weights and the batches",
    "checkpoint": "training state to resume from and save to",
    "checkpoint_every": "steps between checkpoints",
    "stop_after": "end this session after this step",
    "log_file": "JSON lines: settings, logged steps, summary (written by rank 0)",
    "save": "write the trained model here, for genai_lib.checkpoint.load_model",
    "log_every": "steps per logged training loss",
    "eval_every": "steps between held-out evaluations (0: at the end)",
    "progress": "progress bar style",
}
CHOICES = {
    "corpus": TEXT_NAMES,
    "precision": ("auto", "fp32", "bf16", "fp16"),
    "progress": PROGRESS_STYLES,
}


def parse_args(argv: Sequence[str] | None = None) -> GPTRun:
    """The command line's settings: one option per :class:`GPTRun` field."""
    parser = argparse.ArgumentParser(
        prog="python -m genai_lib.train_gpt",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    # a terminal: a few text lines, not a widget
    defaults = dataclasses.replace(GPTRun(), progress="text")
    for field in dataclasses.fields(GPTRun):
        name, default = "--" + field.name.replace("_", "-"), getattr(defaults, field.name)
        if field.name == "compile":
            parser.add_argument(name, action="store_true", help=HELP[field.name])
        elif field.name in CHOICES:
            parser.add_argument(
                name, choices=CHOICES[field.name], default=default, help=HELP[field.name]
            )
        else:
            kind = int if "int" in field.type else float if "float" in field.type else str
            parser.add_argument(
                name,
                type=kind,
                default=default,
                metavar=field.name.split("_")[-1].upper(),
                help=HELP[field.name],
            )
    args = parser.parse_args(argv)
    # whole numbers that must be positive (or, for these, at least 0); argparse only checks the type
    at_least = {"checkpoint_every": 0, "eval_every": 0, "seed": 0}
    for field in dataclasses.fields(GPTRun):
        value, low = getattr(args, field.name), at_least.get(field.name, 1)
        if "int" in field.type and value is not None and value < low:
            parser.error(f"--{field.name.replace('_', '-')} must be at least {low}; got {value}")
    if not 0 <= args.dropout < 1 or args.lr <= 0 or args.weight_decay < 0:
        parser.error("--dropout must be in [0, 1), --lr positive and --weight-decay at least 0")
    return GPTRun(**vars(args))


def main(argv: Sequence[str] | None = None) -> None:
    run(parse_args(argv))


if __name__ == "__main__":
    main()
