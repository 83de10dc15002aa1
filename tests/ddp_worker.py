"""Launched by tests/test_scaling.py under torchrun: the same fit() calls on 2 gloo processes.

Usage: torchrun --standalone --nproc_per_node=2 tests/ddp_worker.py OUT_DIR BATCH_SIZE STEPS

Rank 0 saves, to OUT_DIR/result.pt, the parameters and histories of:
- a run without dropout (to compare with one process and twice the batch);
- a run with dropout, uninterrupted;
- the same run stopped half-way with a checkpoint and resumed in a new model.
Each rank also saves, to OUT_DIR/gan_rank{R}.pt, a small GAN trained with two
objectives (two DDP-wrapped models, the discriminator called twice a step).
"""

import sys
from pathlib import Path

import torch
from torch import nn

from genai_lib import distributed
from genai_lib.gan import gan_objectives
from genai_lib.train import fit


def make_model(dropout: float, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Dropout(dropout), nn.Linear(32, 1))


def make_data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 8, generator=g)
    return x, x.sum(dim=1, keepdim=True).sin()


class TinyGenerator(nn.Module):
    latent_dim = 4

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))

    def forward(self, z):
        return self.net(z)


def train_gan(rank: int) -> dict:
    torch.manual_seed(1 + rank)  # other weights and other noise on each rank
    generator = TinyGenerator()
    discriminator = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    points = torch.randn(256, 2, generator=torch.Generator().manual_seed(0))
    history = fit(
        gan_objectives(generator, discriminator),
        data=points,
        steps=10,
        batch_size=16,
        device="cpu",
        progress=False,
        log_every=5,
    )
    return {
        "generator": generator.state_dict(),
        "discriminator": discriminator.state_dict(),
        "history": history.rows,
    }


def train(model: nn.Module, batch_size: int, steps: int, **kwargs):
    return fit(
        model,
        lambda b: ((model(b[0]) - b[1]) ** 2).mean(),
        make_data(),
        steps=steps,
        batch_size=batch_size,
        lr=1e-2,
        warmup_steps=1,
        device="cpu",
        progress=False,
        log_every=1,
        **kwargs,
    )


if __name__ == "__main__":
    out, batch_size, steps = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    rank = int(__import__("os").environ["RANK"])
    # each rank starts from other weights: DDP must copy rank 0's to all
    plain = make_model(0.0, seed=1 + rank)
    plain_history = train(plain, batch_size, steps)
    torch.manual_seed(100 + rank)  # the dropout masks differ between ranks
    uninterrupted = make_model(0.3, seed=1)
    torch.manual_seed(100 + rank)
    train(uninterrupted, batch_size, steps)
    halves = make_model(0.3, seed=1)
    torch.manual_seed(100 + rank)
    train(halves, batch_size, steps, checkpoint_path=out / "run.pt", stop_after=steps // 2)
    resumed = make_model(0.3, seed=1)
    torch.manual_seed(12345)  # whatever the state now, resuming restores each rank's own stream
    resumed_history = train(resumed, batch_size, steps, checkpoint_path=out / "run.pt")
    torch.save(train_gan(rank), out / f"gan_rank{rank}.pt")
    if distributed.init(torch.device("cpu")).is_main:
        torch.save(
            {
                "plain": plain.state_dict(),
                "plain_history": plain_history.rows,
                "uninterrupted": uninterrupted.state_dict(),
                "resumed": resumed.state_dict(),
                "resumed_history": resumed_history.rows,
            },
            out / "result.pt",
        )
    print(f"rank {rank} done")
