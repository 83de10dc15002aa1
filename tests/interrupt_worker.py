"""Run by tests/test_train.py in a subprocess: a small fit() with a checkpoint, to be killed and resumed.

Usage: python tests/interrupt_worker.py CHECKPOINT STEPS OUT
Prints "step N" after every step; at the end saves the final weights to OUT.
"""

import sys

import torch
from torch import nn

from genai_lib.train import fit


def main(checkpoint: str, steps: int, out: str) -> None:
    torch.manual_seed(0)
    # dropout: RNG matters
    model = nn.Sequential(nn.Linear(4, 32), nn.Tanh(), nn.Dropout(0.2), nn.Linear(32, 1))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(256, 4, generator=g)
    y = x.sum(1, keepdim=True).cos()
    fit(
        model,
        lambda b: ((model(b[0]) - b[1]) ** 2).mean(),
        (x, y),
        steps=steps,
        batch_size=16,
        lr=1e-2,
        warmup_steps=3,
        checkpoint_path=checkpoint,
        checkpoint_every=2,
        device="cpu",
        progress=False,
        callbacks=[lambda step: print(f"step {step}", flush=True)],
    )
    torch.save(model.state_dict(), out)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
