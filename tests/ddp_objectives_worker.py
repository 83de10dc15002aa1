"""Every chapter's kind of objective, trained by fit() for a few steps; run alone or under torchrun.

Usage:
    torchrun --standalone --nproc_per_node=2 tests/ddp_objectives_worker.py OUT BATCH [--compile] [--model-only]
    python tests/ddp_objectives_worker.py OUT BATCH          (one process; give it the whole batch)

Each process saves OUT/rank{R}.pt: for each kind, the final weights of its models.
- vae: a loss that calls model.encode and model.decode, never model(x);
- gan: two objectives, the generator's loss calling the discriminator;
- gpt: random windows of a token sequence (TokenWindows);
- diffusion: a conditional U-Net with an EMA of its weights, through diffusion_loss;
- lora: a GPT with LoRA adapters, its base weights frozen.
Each rank starts from other weights (seeded by its rank): DDP must start them all from rank 0's.

--model-only reproduces the old mistake on purpose: the *model* is wrapped in DDP but the
objective's loss is called directly, so a loss that does not go through the wrapper is not synced.
"""

import os
import sys
import warnings
from pathlib import Path

import torch

import genai_lib.objective
from genai_lib import distributed
from genai_lib.data import TokenWindows
from genai_lib.diffusion import diffusion_loss, noise_schedule
from genai_lib.ema import EMA
from genai_lib.gan import gan_objectives
from genai_lib.losses import next_token_loss, vae_loss
from genai_lib.models import GPT, VAE, GPTConfig, UNet
from genai_lib.models.gan import MLPDiscriminator, MLPGenerator
from genai_lib.models.lora import inject_lora
from genai_lib.train import fit

STEPS = 3


def data(seed: int = 0) -> dict[str, object]:
    g = torch.Generator().manual_seed(seed)
    return {
        "images": (
            torch.rand(64, 1, 8, 8, generator=g) > 0.5
        ).float(),  # binary pixels, for the VAE
        "points": torch.randn(64, 2, generator=g),
        "tokens": torch.randint(0, 11, (400,), generator=g),
        "noisy": (torch.rand(64, 1, 8, 8, generator=g) * 2 - 1, torch.arange(64) % 2),
    }


def run_all(batch: int, rank: int, compile: bool | str) -> dict[str, dict[str, torch.Tensor]]:
    d = data()
    # each kind compiled as in a process of its own: no shapes shared between them
    fresh = torch._dynamo.reset
    common = dict(
        steps=STEPS, batch_size=batch, device="cpu", progress=False, log_every=1, compile=compile
    )
    weights = {}

    fresh()
    torch.manual_seed(10 + rank)
    vae = VAE(image_shape=(1, 8, 8), latent_dim=2, arch="mlp")
    # the same noise stream on every rank count: not needed for equality of ranks
    torch.manual_seed(20)
    fit(vae, lambda x: vae_loss(vae, x), d["images"], lr=1e-2, **common)
    weights["vae"] = vae.state_dict()

    fresh()
    torch.manual_seed(30 + rank)
    G = MLPGenerator(latent_dim=2, out_shape=(2,), hidden=(16,), output=None)
    D = MLPDiscriminator(in_shape=(2,), hidden=(16,), dropout=0)
    fit(gan_objectives(G, D, lr=1e-2), data=d["points"], **common)
    weights["gan"] = {
        **{f"G.{k}": v for k, v in G.state_dict().items()},
        **{f"D.{k}": v for k, v in D.state_dict().items()},
    }

    fresh()
    torch.manual_seed(40 + rank)
    gpt = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16))
    windows = TokenWindows(d["tokens"], block_size=8, batch_size=batch, seed=0)
    fit(gpt, lambda b: next_token_loss(gpt(b[0]), b[1]), windows, lr=1e-2, **common)
    weights["gpt"] = gpt.state_dict()

    fresh()
    torch.manual_seed(50 + rank)
    unet = UNet(base_channels=8, channel_mults=(1, 2), n_classes=2)
    ema = EMA(unet, decay=0.5)
    schedule = noise_schedule("cosine", 50)
    fit(
        unet,
        lambda b: diffusion_loss(unet, schedule, *b),
        d["noisy"],
        lr=1e-2,
        callbacks=[ema.callback(unet)],
        **common,
    )
    weights["diffusion"] = {
        **unet.state_dict(),
        **{f"ema.{k}": v for k, v in ema.state_dict().items()},
    }

    fresh()
    torch.manual_seed(60 + rank)
    base = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16))
    inject_lora(base, r=2, alpha=4.0)
    fit(base, lambda b: next_token_loss(base(b[0]), b[1]), windows, lr=1e-2, **common)
    weights["lora"] = base.state_dict()
    return weights


def wrap_model_only(objective, device, process, compile):
    """The old mistake, for the test that shows the check can fail: DDP around the model, loss called directly."""
    if process.distributed and any(p.requires_grad for p in objective.model.parameters()):
        distributed.wrap(objective.model, device)  # copies rank 0's weights, then is never called
    return objective


if __name__ == "__main__":
    out, batch = Path(sys.argv[1]), int(sys.argv[2])
    compile = "aot_eager" if "--compile" in sys.argv else False
    # no quiet fallback to eager here
    warnings.filterwarnings("error", message="torch.compile failed")
    if "--model-only" in sys.argv:
        genai_lib.objective.wrap = wrap_model_only
    rank = int(os.environ.get("RANK", 0))
    torch.save(run_all(batch, rank, compile), out / f"rank{rank}.pt")
    print(f"rank {rank} done")
