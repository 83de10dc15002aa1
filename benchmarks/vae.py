"""Benchmark: held-out negative ELBO and IWAE negative log-likelihood of our VAE against the "classic" one.

"classic" is ``VAE(arch="classic")`` with z = 20: one hidden layer of 400 ReLU
units, the VAE of PyTorch's examples repository (784-400-20 on MNIST), not the
configuration of Kingma & Welling's paper (500 tanh units on MNIST, Adagrad).

    python benchmarks/vae.py                                  # the bundled 8x8 digits, 100 epochs
    python benchmarks/vae.py --mnist ../shared/data/mnist     # MNIST t10k: 8,000 train / 2,000 held out

Both architectures train in the same run, on the same data, for the same
number of epochs, with Adam 1e-3, batch 128, a Bernoulli decoder, on
dynamically binarised images (a fresh binary draw of every image each time it
is seen; held-out images are binarised once, with a fixed seed). Reported, per
model: the held-out negative ELBO and the IWAE(K=100) negative log-likelihood
bound in nats per image, seconds per epoch (training only) and the process's
peak memory. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
from pathlib import Path

import torch

from genai_lib.data import binarize, load_digits, mnist_t10k_split
from genai_lib.losses import elbo, iwae_bound
from genai_lib.models import VAE
from genai_lib.recipes import train_vae


@torch.no_grad()
def evaluate(model: VAE, x_val: torch.Tensor, k: int) -> dict[str, float]:
    torch.manual_seed(0)
    neg_elbo = -torch.cat([elbo(model, xb)["elbo"] for xb in x_val.split(500)]).mean().item()
    iwae_nll = -torch.cat([iwae_bound(model, xb, k) for xb in x_val.split(25)]).mean().item()
    return {"neg_elbo": round(neg_elbo, 2), "iwae_nll": round(iwae_nll, 2)}


def train_one(
    arch: str,
    latent_dim: int,
    x_train: torch.Tensor,
    x_val: torch.Tensor,
    epochs: int,
    batch_size: int,
    k: int,
    seed: int,
) -> dict[str, float]:
    # the baseline schedule of PyTorch's examples VAE: Adam 1e-3 throughout, no warmup, no clipping
    model, _, seconds = train_vae(
        x_train,
        arch=arch,
        latent_dim=latent_dim,
        epochs=epochs,
        batch_size=batch_size,
        lr=1e-3,
        warmup_epochs=0,
        schedule="constant",
        grad_clip=None,
        seed=seed,
        log_every=50,
        device="cpu",
        progress=False,
    )
    result = evaluate(model, x_val, k)
    result["s_per_epoch"] = round(seconds / epochs, 3)
    result["params"] = sum(p.numel() for p in model.parameters())
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mnist", type=Path, help="folder with t10k-images-idx3-ubyte(.gz)")
    parser.add_argument("--epochs", type=int, help="default: 100 on digits, 10 on MNIST")
    parser.add_argument(
        "--arch",
        choices=VAE.ARCHS,
        help="our architecture (default, as in chapter 01b: mlp for 8x8 digits, conv for 28x28)",
    )
    parser.add_argument(
        "--latent", type=int, default=16, help="our latent size (default: 16, as in chapter 01b)"
    )
    parser.add_argument("--k", type=int, default=100, help="importance samples for the IWAE bound")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.mnist:
        split = mnist_t10k_split(args.mnist)
        x_train, x_val = split.train_images, split.val_images
        dataset, epochs = "mnist-t10k-8k/2k", args.epochs or 10
    else:
        digits = load_digits()
        x_train, x_val = digits.train_images, digits.val_images
        dataset, epochs = "digits", args.epochs or 100
    x_val = binarize(x_val, torch.Generator().manual_seed(1234))  # one fixed binary draw
    arch = args.arch or ("mlp" if x_train.shape[-1] < 16 else "conv")
    print(
        f"{dataset}: {len(x_train)} train / {len(x_val)} held-out images of {tuple(x_train.shape[1:])}; "
        f"{epochs} epochs; torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()}"
    )

    results = {}
    for name, kind, latent in (("ours", arch, args.latent), ("classic", "classic", 20)):
        results[name] = train_one(kind, latent, x_train, x_val, epochs, 128, args.k, args.seed)
        r = results[name]
        print(
            f"{name:8s} ({arch}, z={latent}, {r['params']:,} params): held-out -ELBO {r['neg_elbo']:.2f}, "
            f"IWAE(K={args.k}) NLL {r['iwae_nll']:.2f} nats/image; {r['s_per_epoch']:.3f} s/epoch; "
            f"peak RSS {r['peak_rss_mb']:.0f} MB"
        )
    summary = {
        "dataset": dataset,
        "epochs": epochs,
        **{
            name: {k: r[k] for k in ("neg_elbo", "iwae_nll", "s_per_epoch")}
            for name, r in results.items()
        },
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
