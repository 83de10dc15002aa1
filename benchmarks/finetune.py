"""Benchmark: fine-tuning the course's pretrained base: from scratch, full, frozen, LoRA; then instruction tuning.

    python benchmarks/finetune.py                 # the defaults below, on the CPU
    python benchmarks/finetune.py --steps 20 --instruct-steps 20    # a quick check that it runs

Domain adaptation: the base GPT (data/pretrained, trained on English pydoc text)
is adapted to Python source code (the standard library, load_text("stdlib")).
Every method trains for the same number of steps on the same batches:

- scratch: a new GPT of the same size, randomly initialised;
- full:    every weight of the base;
- frozen:  only the last block and the final norm, plus the token embedding
           (which is also the output layer: the two are tied);
- lora:    rank-r adapters on the four projections of every block; the base frozen.

For each: trainable and total parameters, seconds per step (median), peak memory
(each method runs in its own process; on a CPU the peak resident memory of that
process, on CUDA the peak allocated memory), the validation loss on held-out
stdlib code (target) and on held-out pydoc text (source: what is forgotten),
in nats per character.

Instruction tuning: the generated tasks of genai_lib.data.instructions, trained
with the prompt masked out of the loss; exact match on held-out prompts for the
base as it is, after full fine-tuning, and after LoRA. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

import torch

from genai_lib import seed_everything
from genai_lib.data import load_text, split_train_val
from genai_lib.data.instructions import encode_examples, make_instruction_data, vocabulary_words
from genai_lib.finetune import METHODS, prepare
from genai_lib.lm import evaluate_lm, exact_match, train_lm
from genai_lib.losses import next_token_loss
from genai_lib.models.lora import trainable_parameters
from genai_lib.pretrained import load_base
from genai_lib.train import fit


def peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def train_on_target(model, method, target_train, steps, batch_size, lr, seed, device, **kwargs):
    """Chapter 04's domain-adaptation training: AdamW, a tenth of the steps as warmup, then cosine;
    weight decay 0.1 except for LoRA's adapters. Shared with benchmarks/lora_frontier.py."""
    train_lm(
        model,
        target_train,
        steps=steps,
        block_size=model.block_size,
        batch_size=batch_size,
        lr=lr,
        weight_decay=0.1 if method != "lora" else 0.0,
        warmup_steps=steps // 10,
        seed=seed,
        device=device,
        progress=False,
        **kwargs,
    )


def adapt(method: str, args: argparse.Namespace) -> dict:
    """Run one domain-adaptation method (in its own process) and return its figures."""
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    base, tok, _ = load_base()
    target_train, target_val = split_train_val(torch.tensor(tok.encode(load_text("stdlib"))))
    _, source_val = split_train_val(torch.tensor(tok.encode(load_text("pydoc"))))
    # after load_base, so that the model's start is the same as in chapter 04
    seed_everything(args.seed)
    model = prepare(base, method, lora_r=args.lora_r, lora_alpha=2.0 * args.lora_r)
    trainable, total = trainable_parameters(model)
    lr = args.lora_lr if method == "lora" else args.lr
    ends: list[float] = []
    start = time.perf_counter()
    train_on_target(
        model,
        method,
        target_train,
        args.steps,
        args.batch_size,
        lr,
        args.seed,
        device,
        log_every=10,
        callbacks=[lambda step: ends.append(time.perf_counter())],
    )
    seconds = time.perf_counter() - start
    steps = [b - a for a, b in zip([start, *ends], ends)]
    return {
        "trainable_params": trainable,
        "total_params": total,
        "target_val": round(evaluate_lm(model, target_val), 4),
        "source_val": round(evaluate_lm(model, source_val), 4),
        "s_per_step": round(statistics.median(steps[min(5, len(steps) // 2) :]), 4),
        "peak_mb": round(peak_mb(device)),
        "train_s": round(seconds, 1),
    }


def instruct(method: str, args: argparse.Namespace) -> float:
    """Exact match on held-out prompts for the base ("base"), or after full or LoRA instruction tuning."""
    torch.set_num_threads(args.threads)
    base, tok, _ = load_base()
    train, val = make_instruction_data(
        vocabulary_words(load_text("pydoc")),
        n_train=args.instruct_train,
        n_val=args.instruct_val,
        seed=args.seed,
    )
    if method != "base":
        seed_everything(args.seed)
        model = prepare(base, method, lora_r=args.lora_r, lora_alpha=2.0 * args.lora_r)
        inputs, targets = encode_examples(
            train, tok.encode, block_size=48, pad_id=tok.encode(" ")[0]
        )
        fit(
            model,
            lambda b: next_token_loss(model(b[0]), b[1]),
            (inputs, targets),
            steps=args.instruct_steps,
            batch_size=32,
            lr=args.lora_lr if method == "lora" else args.lr,
            warmup_steps=args.instruct_steps // 10,
            device=args.device,
            progress=False,
            seed=args.seed,
        )
        base = model.eval()
    return exact_match(base, val, tok.encode, tok.decode)


def in_subprocess(fn, *fn_args):
    """Run ``fn(*fn_args)`` in a fresh process, so that the peak memory measured there is that method's own."""
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(fn, *fn_args).result()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=300, help="domain-adaptation steps per method")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--lr", type=float, default=1e-3, help="AdamW rate for scratch, full and frozen"
    )
    parser.add_argument(
        "--lora-lr", type=float, default=5e-3, help="AdamW rate for the LoRA adapters"
    )
    parser.add_argument(
        "--lora-r", type=int, default=4, help="LoRA rank (4: 3.9%% of the parameters)"
    )
    parser.add_argument("--instruct-steps", type=int, default=400)
    parser.add_argument("--instruct-train", type=int, default=4000)
    parser.add_argument("--instruct-val", type=int, default=200)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=METHODS,
        default=list(METHODS),
        help="domain-adaptation methods to run (a sweep of LoRA settings needs only lora)",
    )
    parser.add_argument(
        "--instruct-methods",
        nargs="*",
        choices=("base", "full", "lora"),
        default=["base", "full", "lora"],
        help="instruction-tuning runs (none: skip them)",
    )
    args = parser.parse_args(argv)

    methods = {}
    print(
        f"Domain adaptation, pydoc -> stdlib: {args.steps} steps of {args.batch_size} windows per method "
        f"(nats per character, held out)"
    )
    print(
        f"{'method':<9}{'trainable':>11}{'total':>10}{'share':>8}{'target val':>12}{'source val':>12}"
        f"{'s/step':>9}{'peak MB':>9}{'train s':>9}"
    )
    for method in args.methods:
        r = in_subprocess(adapt, method, args)
        methods[method] = r
        print(
            f"{method:<9}{r['trainable_params']:>11,}{r['total_params']:>10,}"
            f"{r['trainable_params'] / r['total_params']:>8.1%}{r['target_val']:>12.4f}{r['source_val']:>12.4f}"
            f"{r['s_per_step']:>9.3f}{r['peak_mb']:>9}{r['train_s']:>9.1f}",
            flush=True,
        )

    print(
        f"\nInstruction tuning: {args.instruct_steps} steps, exact match on {args.instruct_val} held-out prompts"
    )
    em = {}
    for method in args.instruct_methods:
        start = time.perf_counter()
        em[f"{method}_em"] = round(in_subprocess(instruct, method, args), 4)
        print(
            f"{method:<6} exact match {em[f'{method}_em']:.1%} ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )

    summary = {
        "methods": {m: {k: v for k, v in r.items() if k != "train_s"} for m, r in methods.items()},
        "instruct": em,
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
