"""Benchmark: a character-level GPT on tiny Shakespeare, trained with the course's loop.

    python benchmarks/gpt_char.py                         # nanoGPT's "baby GPT on CPU" settings
    python benchmarks/gpt_char.py --recipe best           # our recipe for the 90-second budget (Muon)
    python benchmarks/gpt_char.py --recipe speedrun       # nanoGPT's loss in as few seconds as we can
    python benchmarks/gpt_char.py --iters 200             # a short run

Data: characters of --data (default ../shared/data/tinyshakespeare.txt); the
first 90% to train on, the last 10% to validate. Trains genai_lib.models.GPT
with genai_lib.train.fit and reports:

- train throughput: tokens per second from the median time of a training step
  (evaluation is not timed: it runs once, after training);
- the validation loss over the whole validation split (every token predicted
  once, in consecutive windows of block_size), in nats per character;
- wall time of training and the peak resident memory of the process.

The last line is JSON: recipe, iters, params, val_loss_full,
tokens_per_s_median, train_s, peak_rss_mb.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import torch

from genai_lib import seed_everything
from genai_lib.callbacks import StepTimer
from genai_lib.data import CharTokenizer, TokenWindows, split_train_val
from genai_lib.lm import bits, evaluate_lm
from genai_lib.losses import next_token_loss
from genai_lib.models import GPT, GPTConfig
from genai_lib.optim import muon_with_adamw
from genai_lib.train import Objective, fit

# Each recipe: model sizes, then optimisation. "nanogpt" is nanoGPT's config/train_shakespeare_char.py
# with its "baby GPT on CPU" overrides (4 layers, 4 heads, 128-d, block 64, batch 12, dropout 0).
RECIPES = {
    "nanogpt": dict(
        n_layer=4,
        n_head=4,
        n_embd=128,
        block_size=64,
        dropout=0.0,
        bias=False,
        batch_size=12,
        lr=1e-3,
        betas=(0.9, 0.99),
        weight_decay=0.1,
        warmup=100,
        min_lr=1e-4,
        iters=2000,
        grad_clip=1.0,
        optimizer="adamw",
    ),
    # Ours: the same network, trained with Muon on the blocks' weight matrices (AdamW on the embeddings
    # and gains, at a higher rate), in fewer, larger steps: 450 x 32 windows instead of 2000 x 12.
    "best": dict(
        n_layer=4,
        n_head=4,
        n_embd=128,
        block_size=64,
        dropout=0.0,
        bias=False,
        batch_size=32,
        lr=4e-3,
        betas=(0.9, 0.95),
        weight_decay=0.1,
        warmup=50,
        min_lr=1e-4,
        iters=450,
        grad_clip=1.0,
        optimizer="muon",
        muon_lr=0.02,
    ),
    # The speedrun (benchmarks/RESULTS.md has its record table): a one-layer GPT, 128-d, trained
    # with Muon at a higher rate in 500 steps of 24 windows. On two CPU cores a small model that
    # takes many cheap steps beats a larger one that takes few; validation still in windows of 64.
    "speedrun": dict(
        n_layer=1,
        n_head=4,
        n_embd=128,
        block_size=64,
        dropout=0.0,
        bias=False,
        batch_size=24,
        lr=4e-3,
        betas=(0.9, 0.95),
        weight_decay=0.1,
        warmup=20,
        min_lr=1e-4,
        iters=500,
        grad_clip=1.0,
        optimizer="muon",
        muon_lr=0.05,
    ),
}
DEFAULT_DATA = (
    Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "tinyshakespeare.txt"
)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a plain-text corpus")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="nanogpt")
    parser.add_argument("--iters", type=int, help="training steps (default: the recipe's)")
    parser.add_argument("--seed", type=int, default=1337)
    for key in ("n_layer", "n_head", "n_embd", "block_size", "batch_size", "warmup"):
        parser.add_argument("--" + key.replace("_", "-"), type=int, help="override the recipe")
    parser.add_argument("--optimizer", choices=["adamw", "muon"], help="override the recipe")
    parser.add_argument("--ns-steps", type=int, help="Muon's Newton-Schulz steps (default 5)")
    parser.add_argument(
        "--precision", choices=["fp32", "bf16"], help="override the recipe (default fp32)"
    )
    for key in ("lr", "min_lr", "dropout", "weight_decay", "beta2", "muon_lr"):
        parser.add_argument("--" + key.replace("_", "-"), type=float, help="override the recipe")
    args = parser.parse_args(argv)
    recipe = {"ns_steps": 5, "precision": "fp32", **RECIPES[args.recipe]}
    overrides = {k: v for k, v in vars(args).items() if k in recipe and v is not None}
    if args.beta2 is not None:
        overrides["betas"] = (recipe["betas"][0], args.beta2)
    recipe.update(overrides)
    if args.iters:
        recipe["iters"] = args.iters

    if not args.data.is_file():
        raise SystemExit(f"No corpus at {args.data}; pass --data PATH to a plain-text file.")
    text = args.data.read_text(encoding="utf-8")
    tokenizer = CharTokenizer.from_text(text)
    train_tokens, val_tokens = split_train_val(
        torch.tensor(tokenizer.encode(text)), val_fraction=0.1
    )
    print(
        f"{args.data.name}: {len(text):,} characters, vocabulary {tokenizer.vocab_size}; "
        f"{len(train_tokens):,} train / {len(val_tokens):,} validation tokens"
    )
    print(
        f"recipe {args.recipe}: {recipe}"
        + (f" (overrides: {sorted(overrides)})" if overrides else "")
    )

    seed_everything(args.seed)
    model = GPT(
        GPTConfig(
            vocab_size=tokenizer.vocab_size,
            block_size=recipe["block_size"],
            n_layer=recipe["n_layer"],
            n_head=recipe["n_head"],
            n_embd=recipe["n_embd"],
            dropout=recipe["dropout"],
            bias=recipe["bias"],
        )
    )
    params = model.num_parameters()
    print(f"GPT: {params / 1e6:.2f}M parameters (without the position table, as nanoGPT counts)")

    batches = TokenWindows(train_tokens, recipe["block_size"], recipe["batch_size"], seed=args.seed)
    timer = StepTimer()
    start = time.perf_counter()
    optimizer = None  # fit's AdamW, with weight decay on the weight matrices
    if recipe["optimizer"] == "muon":
        optimizer = muon_with_adamw(
            model,
            muon_lr=recipe["muon_lr"],
            adamw_lr=recipe["lr"],
            betas=recipe["betas"],
            weight_decay=recipe["weight_decay"],
            ns_steps=recipe["ns_steps"],
        )
    objective = Objective("model", model, lambda b: next_token_loss(model(b[0]), b[1]), optimizer)
    fit(
        [objective],
        data=batches,
        steps=recipe["iters"],
        lr=recipe["lr"],
        betas=recipe["betas"],
        weight_decay=recipe["weight_decay"],
        warmup_steps=recipe["warmup"],
        min_lr_ratio=recipe["min_lr"] / recipe["lr"],
        grad_clip=recipe["grad_clip"],
        device="cpu",
        precision=recipe["precision"],
        progress=False,
        log_every=50,
        seed=args.seed,
        callbacks=[timer],
    )
    train_s = time.perf_counter() - start
    tokens_per_step = recipe["block_size"] * recipe["batch_size"]
    # skip the first steps: allocation, warm caches
    median_step = timer.median(skip=min(10, recipe["iters"] // 2))

    val_loss = evaluate_lm(model, val_tokens, recipe["block_size"])
    summary = {
        "recipe": args.recipe,
        "iters": recipe["iters"],
        "params": params,
        "val_loss_full": round(val_loss, 4),
        "tokens_per_s_median": round(tokens_per_step / median_step),
        "train_s": round(train_s, 1),
        "peak_rss_mb": round(peak_rss_mb()),
    }
    print(
        f"median step {median_step * 1000:.1f} ms -> {summary['tokens_per_s_median']:,} train tokens/s; "
        f"training {train_s:.1f} s"
    )
    print(
        f"validation loss over the whole split: {val_loss:.4f} nats/char ({bits(val_loss):.3f} bits/char)"
    )
    print(f"peak RSS {summary['peak_rss_mb']} MB")
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
