"""Benchmark: diffusion (DDPM, DDIM, classifier-free guidance) against the VAE and the GANs, on one metric.

    python benchmarks/diffusion.py                 # the bundled 8x8 digits, default CPU configuration
    python benchmarks/diffusion.py --seed 1
    python benchmarks/diffusion.py --unconditional-only --base-channels 32   # issue 21: diffusion against the DCGAN

Trains, on the same training digits, each with the course's loop (fit):
- an unconditional diffusion U-Net and a class-conditional one (label dropout
  0.1, for classifier-free guidance), cosine schedule with T = 1000 (--timesteps), EMA 0.999;
- the baselines of chapters 01 and 02 at their benchmark settings: the VAE
  (MLP, z = 16, 100 epochs, binarised pixels), the DCGAN and the conditional
  DCGAN (4,000 steps of batch 64).
Then measures, with the cached digit classifier: FD-digits of n samples against
n held-out images, next to the real-vs-real floor; class coverage; for the
conditional models, the share of samples classified as the requested class
(under several guidance scales for diffusion); training seconds; and the
median seconds to sample 100 images (3 repeats). The diffusion samplers are
DDPM (all T steps) and DDIM (eta = 0) with 50 and 20 steps. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable

import torch

from genai_lib import seed_everything
from genai_lib.data import load_digits
from genai_lib.diffusion import ddim_sample, ddpm_sample, diffusion_loss, noise_schedule
from genai_lib.ema import EMA
from genai_lib.gan import generate
from genai_lib.metrics import (
    accuracy,
    class_accuracy,
    class_coverage,
    fd_digits,
    held_out_sample,
    load_or_train_classifier,
    real_floor,
)
from genai_lib.models import UNet
from genai_lib.models.gan import DCDiscriminator, DCGenerator
from genai_lib.recipes import train_gan, train_vae
from genai_lib.train import fit

SAMPLERS = {"ddpm": None, "ddim50": 50, "ddim20": 20}  # name -> DDIM steps (None: DDPM, every step)


def train_diffusion(
    data, conditional: bool, steps: int, base_channels: int, timesteps: int, seed: int
):
    """A U-Net trained on the epsilon loss, and its EMA copy; returns (ema, seconds)."""
    seed_everything(seed)
    model = UNet(base_channels=base_channels, n_classes=10 if conditional else None)
    ema = EMA(model, decay=0.999)
    schedule = noise_schedule("cosine", timesteps)
    x0 = data.train_images * 2 - 1  # diffusion space is [-1, 1]

    def loss_fn(batch):
        images, labels = batch
        return diffusion_loss(
            model, schedule, images, labels if conditional else None, p_uncond=0.1
        )

    start = time.perf_counter()
    fit(
        model,
        loss_fn,
        (x0, data.train_labels),
        steps=steps,
        batch_size=128,
        lr=2e-3,
        warmup_steps=100,
        callbacks=[ema.callback(model)],
        device="cpu",
        progress=False,
        log_every=100,
        seed=seed,
    )
    return ema, schedule, time.perf_counter() - start


def seconds_per_100(sample: Callable[[int], torch.Tensor], repeats: int = 3) -> float:
    """Median wall time of drawing 100 images."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        sample(100)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--steps", type=int, default=2400, help="diffusion training steps (batch 128)"
    )
    parser.add_argument(
        "--base-channels", type=int, default=24, help="the U-Net's first-level channels"
    )
    parser.add_argument(
        "--timesteps", type=int, default=1000, help="T, the diffusion steps DDPM samples with"
    )
    parser.add_argument("--gan-steps", type=int, default=4000)
    parser.add_argument("--vae-epochs", type=int, default=100)
    parser.add_argument(
        "--guidance", type=float, default=1.5, help="the guidance scale the JSON reports"
    )
    parser.add_argument("--sweep", type=float, nargs="+", default=[0.0, 1.0, 1.5, 2.0, 3.0])
    parser.add_argument(
        "--n", type=int, help="images per FD estimate (default: all held-out, at most 2000)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--unconditional-only",
        action="store_true",
        help="train only the DCGAN and the unconditional diffusion model (no VAE, cGAN or guidance)",
    )
    args = parser.parse_args(argv)

    data = load_digits()
    n = args.n or min(2000, len(data.val_images))
    classifier = load_or_train_classifier(data)
    floor = real_floor(classifier, data, n)
    reference = held_out_sample(data, n)
    requested = torch.arange(n) % 10
    print(
        f"{data.name}: {len(data.train_images)} train / {len(data.val_images)} held out; classifier held-out "
        f"accuracy {accuracy(classifier, data.val_images, data.val_labels):.4f}; FD-digits floor (n={n}) {floor:.3f}"
    )

    def score(samples: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        coverage = class_coverage(classifier, samples)
        r = {
            "fd": round(fd_digits(classifier, samples, reference), 3),
            "coverage": coverage["classes_covered"],
        }
        if labels is not None:
            r["cond_acc"] = round(class_accuracy(classifier, samples, labels), 4)
        return r

    rows: dict[str, dict] = {}

    # the VAE benchmark's settings (benchmarks/vae.py): Adam 1e-3 throughout, no warmup, no clipping
    vae, _, vae_s = (
        (None, None, None)
        if args.unconditional_only
        else train_vae(
            data.train_images,
            arch="mlp",
            latent_dim=16,
            epochs=args.vae_epochs,
            batch_size=128,
            lr=1e-3,
            warmup_epochs=0,
            schedule="constant",
            grad_clip=None,
            seed=args.seed,
            log_every=50,
            device="cpu",
            progress=False,
        )
    )
    if vae is not None:
        draw = lambda k: vae.sample(k, torch.Generator().manual_seed(args.seed))  # noqa: E731
        rows["VAE (ch. 01)"] = {
            **score(draw(n)),
            "train_s": round(vae_s, 1),
            "s_per_100": seconds_per_100(draw),
        }

    x = data.train_images * 2 - 1
    gans = (("DCGAN (ch. 02)", False),) + (
        () if args.unconditional_only else (("cGAN (ch. 02)", True),)
    )
    for name, conditional in gans:
        seed_everything(args.seed)
        generator = DCGenerator(32, data.shape, n_classes=10 if conditional else None)
        discriminator = DCDiscriminator(data.shape, n_classes=10 if conditional else None)
        _, seconds = train_gan(
            generator,
            discriminator,
            (x, data.train_labels) if conditional else x,
            steps=args.gan_steps,
            seed=args.seed,
            device="cpu",
            progress=False,
            log_every=100,
        )
        img_per_s = args.gan_steps * 64 / seconds
        labels = requested if conditional else None
        draw = lambda k, g=generator, c=conditional: generate(
            g,
            k,
            labels=torch.arange(k) % 10 if c else None,  # noqa: E731
            seed=args.seed,
        )
        rows[name] = {
            **score(generate(generator, n, labels=labels, seed=args.seed), labels),
            "train_s": round(args.gan_steps * 64 / img_per_s, 1),
            "s_per_100": seconds_per_100(draw),
        }

    ema, schedule, uncond_s = train_diffusion(
        data, False, args.steps, args.base_channels, args.timesteps, args.seed
    )
    samplers = {}
    for name, ddim_steps in SAMPLERS.items():

        def draw(k, ddim_steps=ddim_steps):
            if ddim_steps is None:
                return ddpm_sample(ema, schedule, k, data.shape, seed=args.seed)
            return ddim_sample(ema, schedule, k, data.shape, steps=ddim_steps, seed=args.seed)

        samplers[name] = {
            **score(draw(n)),
            "s_per_100": round(seconds_per_100(draw, 1 if ddim_steps is None else 3), 3),
        }
        rows[f"diffusion, {name}"] = {**samplers[name], "train_s": round(uncond_s, 1)}

    sweep = {}
    if not args.unconditional_only:
        cond_ema, schedule, cond_s = train_diffusion(
            data, True, args.steps, args.base_channels, args.timesteps, args.seed
        )
        for scale in sorted(set(args.sweep) | {args.guidance}):
            samples = ddim_sample(
                cond_ema,
                schedule,
                n,
                data.shape,
                steps=50,
                labels=requested,
                guidance=scale,
                seed=args.seed,
            )
            sweep[scale] = score(samples, requested)
        draw = lambda k: ddim_sample(
            cond_ema,
            schedule,
            k,
            data.shape,
            steps=50,
            labels=torch.arange(k) % 10,  # noqa: E731
            guidance=args.guidance,
            seed=args.seed,
        )
        rows[f"cond. diffusion, ddim50, s={args.guidance:g}"] = {
            **sweep[args.guidance],
            "train_s": round(cond_s, 1),
            "s_per_100": round(seconds_per_100(draw), 3),
        }

    print(
        f"\n{'model':34s} {'FD-digits':>9s} {'x floor':>7s} {'classes':>7s} {'cond. acc':>9s} "
        f"{'train s':>7s} {'s/100 img':>9s}"
    )
    for name, r in rows.items():
        acc = f"{r['cond_acc']:.1%}" if "cond_acc" in r else ""
        print(
            f"{name:34s} {r['fd']:>9.2f} {r['fd'] / floor:>7.1f} {r['coverage']:>7d} {acc:>9s} "
            f"{r['train_s']:>7.0f} {r['s_per_100']:>9.3f}"
        )
    if sweep:
        print("\nclassifier-free guidance (conditional diffusion, DDIM 50, balanced labels):")
    for scale, r in sweep.items():
        print(
            f"  s = {scale:<4g} FD-digits {r['fd']:6.2f}, classes {r['coverage']}, class accuracy {r['cond_acc']:.1%}"
        )

    summary = {
        "fd_floor": round(floor, 3),
        "dcgan_fd": rows["DCGAN (ch. 02)"]["fd"],
        "samplers": {
            k: {key: v[key] for key in ("fd", "coverage", "s_per_100")} for k, v in samplers.items()
        },
        "train_s": round(uncond_s, 1),
    }
    if sweep:
        summary.update(guidance=args.guidance, cond_acc=sweep[args.guidance]["cond_acc"])
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
