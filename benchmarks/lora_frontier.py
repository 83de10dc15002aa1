"""Benchmark: the learning-forgetting frontier of full fine-tuning, freezing and LoRA.

    python benchmarks/lora_frontier.py                       # 5 methods x 5 rates x 3 seeds
    python benchmarks/lora_frontier.py --seeds 0 --lrs 1e-3 --steps 20    # a quick check

One learning rate per method says little about a trade-off: a method can look
as if it "learns less and forgets less" only because its rate was lower
(Biderman et al. 2024, "LoRA learns less and forgets less"). So every method
adapts the course's pretrained base (English pydoc text) to Python source code
(stdlib) at each of several learning rates, with chapter 04's settings
otherwise (300 steps of 16 windows of 128 characters, AdamW, warmup then
cosine), and we measure both held-out losses, in nats per character:

- target: held-out stdlib code (what was learned; lower is better);
- source: held-out pydoc text (what was forgotten; the base scores 1.206).

Each method's points, one per rate (median over the seeds), trace its
frontier in the (target, source) plane. The summary compares LoRA with full
fine-tuning at equal learning: for each LoRA rank within 5% of the parameters,
take its point with the lowest target loss, and read full fine-tuning's source
loss at that same target loss off full fine-tuning's frontier (linear between
its two rates that bracket it). ``source_gap`` is LoRA's source loss minus
full fine-tuning's there: negative means LoRA forgets less at the same
learning. Where full fine-tuning learns more than that even at its smallest
rate, there is no such point; ``full_dominates`` then says whether one of full
fine-tuning's points learns at least as much *and* forgets at most as much.
The last line is JSON.

    python benchmarks/lora_frontier.py --summarise RUN.json    # the comparison again, no training

reads the JSON line of an earlier run and prints its comparison again.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

# the same training as benchmarks/finetune.py and chapter 04 (this script runs from benchmarks/)
from finetune import train_on_target

from genai_lib import seed_everything
from genai_lib.data import load_text, split_train_val
from genai_lib.finetune import prepare
from genai_lib.lm import evaluate_lm
from genai_lib.models.lora import trainable_parameters
from genai_lib.pretrained import load_base

# (label, method, LoRA rank)
METHODS = [
    ("full", "full", None),
    ("frozen", "frozen", None),
    ("lora_r2", "lora", 2),
    ("lora_r4", "lora", 4),
    ("lora_r8", "lora", 8),
]
DEFAULT_LRS = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]


def adapt_once(base, data, method, rank, lr, seed, args) -> dict:
    """Adapt a copy of ``base`` with one method at one rate; return its two held-out losses."""
    target_train, target_val, source_val = data
    seed_everything(seed)
    model = prepare(base, method, lora_r=rank or 4, lora_alpha=2.0 * (rank or 4))
    trainable, total = trainable_parameters(model)
    start = time.perf_counter()
    train_on_target(
        model,
        method,
        target_train,
        args.steps,
        args.batch_size,
        lr,
        seed,
        args.device,
        log_every=args.steps,
    )
    seconds = time.perf_counter() - start
    return {
        "share": trainable / total,
        "target": evaluate_lm(model, target_val),
        "source": evaluate_lm(model, source_val),
        "train_s": seconds,
    }


def source_on_frontier(points: list[tuple[float, float]], target: float) -> float | None:
    """Source loss on the line through ``points`` (target, source), ordered by rate, at ``target``.

    Linear between the first pair of neighbouring points whose targets bracket
    ``target``; ``None`` if no pair does (the frontier never reaches it).
    """
    for (t0, s0), (t1, s1) in zip(points, points[1:]):
        lo, hi = min(t0, t1), max(t0, t1)
        if lo <= target <= hi:
            if t1 == t0:
                return min(s0, s1)
            return s0 + (s1 - s0) * (target - t0) / (t1 - t0)
    return None


def compare_with_full(frontier: dict[str, list[dict]]) -> dict[str, dict]:
    """For each LoRA rank within 5% of the parameters: its best point against full fine-tuning's line."""
    comparison = {}
    if "full" not in frontier:
        return comparison
    full_points = [(p["target"], p["source"]) for p in frontier["full"]]
    for label, points in frontier.items():
        if not label.startswith("lora") or points[0]["share"] > 0.05:
            continue
        best = min(points, key=lambda p: p["target"])
        full_source = source_on_frontier(full_points, best["target"])
        comparison[label] = {
            "share": best["share"],
            "lr": best["lr"],
            "target": best["target"],
            "source": best["source"],
            "full_source_at_same_target": None if full_source is None else round(full_source, 4),
            "source_gap": None if full_source is None else round(best["source"] - full_source, 4),
            "full_dominates": any(
                t <= best["target"] and s <= best["source"] for t, s in full_points
            ),
        }
    return comparison


def print_comparison(comparison: dict[str, dict]) -> None:
    for label, c in comparison.items():
        full_source = c["full_source_at_same_target"]
        if full_source is None:
            there = "full fine-tuning's line does not reach this target loss"
        else:
            there = (
                f"full fine-tuning there: source {full_source:.4f}; LoRA "
                f"{'forgets less' if c['source'] < full_source else 'forgets more'} by "
                f"{abs(c['source'] - full_source):.4f} nats/char"
            )
        if c["full_dominates"]:
            there += "; a full fine-tuning run learns at least as much and forgets no more"
        print(
            f"{label} (share {c['share']:.1%}) at its best rate {c['lr']:g}: "
            f"target {c['target']:.4f}, source {c['source']:.4f}; {there}"
        )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lrs", type=float, nargs="+", default=DEFAULT_LRS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--methods", nargs="+", choices=[m[0] for m in METHODS], default=[m[0] for m in METHODS]
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--summarise", metavar="RUN.json", help="print the comparison of an earlier run's JSON"
    )
    args = parser.parse_args(argv)
    if args.summarise:
        with open(args.summarise, encoding="utf-8") as file:
            earlier = json.load(file)
        earlier["lora_vs_full"] = compare_with_full(earlier["frontier"])
        print_comparison(earlier["lora_vs_full"])
        print(json.dumps(earlier))
        return earlier

    base, tok, _ = load_base()
    target_train, target_val = split_train_val(torch.tensor(tok.encode(load_text("stdlib"))))
    _, source_val = split_train_val(torch.tensor(tok.encode(load_text("pydoc"))))
    data = (target_train, target_val, source_val)
    base_figures = {
        "target": round(evaluate_lm(base, target_val), 4),
        "source": round(evaluate_lm(base, source_val), 4),
    }
    print(
        f"base: target {base_figures['target']:.4f}, source {base_figures['source']:.4f} nats/char; "
        f"{args.steps} steps of {args.batch_size} windows per run; seeds {args.seeds}"
    )
    print(f"{'method':<9}{'lr':>8}{'share':>7}  target (median, runs)        source (median, runs)")

    chosen = [m for m in METHODS if m[0] in args.methods]
    # seed-major order, so that a slow phase of the machine spreads over all settings
    runs: dict[tuple[str, float], list[dict]] = {}
    for seed in args.seeds:
        for label, method, rank in chosen:
            for lr in args.lrs:
                runs.setdefault((label, lr), []).append(
                    adapt_once(base, data, method, rank, lr, seed, args)
                )

    frontier: dict[str, list[dict]] = {}
    for label, _, _ in chosen:
        for lr in args.lrs:
            rs = runs[(label, lr)]
            point = {
                "lr": lr,
                "share": round(rs[0]["share"], 4),
                "target": round(statistics.median(r["target"] for r in rs), 4),
                "source": round(statistics.median(r["source"] for r in rs), 4),
                "target_runs": [round(r["target"], 4) for r in rs],
                "source_runs": [round(r["source"], 4) for r in rs],
            }
            frontier.setdefault(label, []).append(point)
            print(
                f"{label:<9}{lr:>8.0e}{point['share']:>7.1%}  {point['target']:.4f} "
                f"{point['target_runs']}  {point['source']:.4f} {point['source_runs']}"
            )

    comparison = compare_with_full(frontier)
    print_comparison(comparison)

    summary = {"base": base_figures, "frontier": frontier, "lora_vs_full": comparison}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
