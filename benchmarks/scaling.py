"""Training throughput of chapter 03's GPT on this machine's CPUs: processes, threads, compile, bf16.

Each configuration trains the same model (4 layers, 4 heads, 128 dimensions,
64-character windows, 32 windows a step, the bundled pydoc corpus) for the
same steps with ``python -m genai_lib.train_gpt``, in a fresh process, and
reads back the script's log:

- ``one_process_1_thread``: one process, one thread;
- ``one_process_2_threads``: one process, two threads (compile off, fp32);
- ``two_processes_1_thread``: torchrun, 2 gloo processes of one thread each,
  16 windows each: the same 32 windows a step, split (DistributedDataParallel);
- ``compile``: as ``one_process_2_threads``, with ``torch.compile`` (Inductor);
- ``bf16``: as ``one_process_2_threads``, under bf16 autocast.

Tokens per second: training tokens a step (32 x 64) over the median step
time of a run (its first steps skipped: warm-up and compilation), then the
median over ``--repeats`` runs. ``final_loss``: the mean training loss over
the last 10 steps, in nats per character (the same in every repeat: the runs
are seeded). Run from the repository root::

    python benchmarks/scaling.py [--steps 200] [--repeats 3] [--only NAME ...]

The last line is JSON: ``{"configs": {NAME: {"tokens_per_s_median", "final_loss"}}}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

CONFIGS: dict[str, dict] = {
    "one_process_1_thread": {"processes": 1, "threads": 1, "args": []},
    "one_process_2_threads": {"processes": 1, "threads": 2, "args": []},
    "two_processes_1_thread": {"processes": 2, "threads": 1, "args": []},
    "compile": {"processes": 1, "threads": 2, "args": ["--compile"]},
    "bf16": {"processes": 1, "threads": 2, "args": ["--precision", "bf16"]},
}
GLOBAL_BATCH = 32


def train_once(name: str, steps: int, workdir: Path) -> dict:
    """One run of a configuration in a fresh process; the summary and history from its log."""
    config = CONFIGS[name]
    log = workdir / f"{name}.jsonl"
    log.unlink(missing_ok=True)
    script = [
        "-m",
        "genai_lib.train_gpt",
        "--steps",
        str(steps),
        "--batch-size",
        str(GLOBAL_BATCH // config["processes"]),
        "--device",
        "cpu",
        "--progress",
        "off",
        "--log-every",
        "10",
        "--log-file",
        str(log),
        *config["args"],
    ]
    if config["processes"] == 1:
        command = [sys.executable, *script]
    else:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={config['processes']}",
            *script,
        ]
    env = {**os.environ, "OMP_NUM_THREADS": str(config["threads"]), "MASTER_ADDR": "127.0.0.1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    summary = next(r for r in records if r["kind"] == "summary")
    losses = [r["loss"] for r in records if r["kind"] == "history" and r["split"] == "train"]
    return {
        "tokens_per_s": summary["tokens_per_s_median"],
        "final_loss": losses[-1],
        "val_bits": summary["val_bits"],
        "seconds": summary["seconds"],
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--only", nargs="+", choices=sorted(CONFIGS), help="run these configurations only"
    )
    args = parser.parse_args(argv)
    names = args.only or list(CONFIGS)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}; "
        f"{args.steps} steps of {GLOBAL_BATCH} x 64 tokens, {args.repeats} repeats"
    )

    runs: dict[str, list[dict]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        # interleaved, so a noisy minute hits every configuration alike
        for repeat in range(args.repeats):
            for name in names:
                result = train_once(name, args.steps, Path(tmp))
                runs[name].append(result)
                print(
                    f"  repeat {repeat + 1} {name:24s} {result['tokens_per_s']:>8,} tokens/s  "
                    f"loss {result['final_loss']:.4f}  ({result['seconds']:.1f} s)",
                    flush=True,
                )

    configs = {}
    header = ["tokens/s (median)".rjust(18), "all runs".rjust(26), "final loss".rjust(11)]
    print(f"\n{'configuration':24s} {' '.join(header)} {'held-out bits':>14s}")
    for name in names:
        speeds = [r["tokens_per_s"] for r in runs[name]]
        configs[name] = {
            "tokens_per_s_median": round(statistics.median(speeds)),
            "final_loss": round(runs[name][0]["final_loss"], 4),
        }
        print(
            f"{name:24s} {configs[name]['tokens_per_s_median']:>18,} {str(speeds):>26s} "
            f"{configs[name]['final_loss']:>11.4f} {runs[name][0]['val_bits']:>14.3f}"
        )
    print(json.dumps({"configs": configs}))
    return configs


if __name__ == "__main__":
    main()
