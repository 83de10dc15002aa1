"""Benchmark: FD-digits, class coverage and speed of an MLP GAN, a DCGAN and a conditional DCGAN.

    python benchmarks/gan.py                                   # the bundled 8x8 digits
    python benchmarks/gan.py --mnist ../shared/data/mnist      # MNIST t10k: 8,000 train / 2,000 held out

All three train with the course's loop (genai_lib.gan.gan_objectives + fit),
the non-saturating loss, Adam 2e-4 (beta1 0.5), batch 64, for the same number
of steps. Measured with a digit classifier trained (and cached) on the same
training images: FD-digits of n generated images against n held-out images,
next to the real-vs-real floor (n training images against the same n held-out
images); class coverage; for the cGAN, the share of samples classified as the
requested class; and training speed. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from genai_lib import seed_everything
from genai_lib.data import load_digits, mnist_t10k_split
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
from genai_lib.models.gan import DCDiscriminator, DCGenerator, published_gan
from genai_lib.recipes import train_gan


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mnist", type=Path, help="folder with the MNIST t10k IDX files")
    parser.add_argument(
        "--steps", type=int, help="training steps (default: 4000 on digits, 2500 on MNIST)"
    )
    parser.add_argument(
        "--n", type=int, help="images per FD estimate (default: all held-out, at most 2000)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    data = mnist_t10k_split(args.mnist) if args.mnist else load_digits()
    steps = args.steps or (2500 if args.mnist else 4000)
    n = args.n or min(2000, len(data.val_images))
    classifier = load_or_train_classifier(data)
    classifier_acc = accuracy(classifier, data.val_images, data.val_labels)
    floor = real_floor(classifier, data, n)
    reference = held_out_sample(data, n)
    print(
        f"{data.name}: {len(data.train_images)} train / {len(data.val_images)} held out; {steps} steps; "
        f"classifier held-out accuracy {classifier_acc:.4f}; FD-digits floor (n={n}) {floor:.3f}"
    )

    x = data.train_images * 2 - 1
    builds = {
        "mlp": lambda: published_gan("pytorch", latent_dim=100, image_shape=data.shape),
        "dcgan": lambda: (DCGenerator(32, data.shape), DCDiscriminator(data.shape)),
        "cgan": lambda: (
            DCGenerator(32, data.shape, n_classes=10),
            DCDiscriminator(data.shape, n_classes=10),
        ),
    }
    results = {}
    for name, build in builds.items():
        seed_everything(args.seed)
        generator, discriminator = build()
        _, seconds = train_gan(
            generator,
            discriminator,
            (x, data.train_labels) if name == "cgan" else x,
            steps=steps,
            seed=args.seed,
            device="cpu",
            progress=False,
            log_every=100,
        )
        img_per_s = steps * 64 / seconds
        requested = torch.arange(n) % 10
        samples = generate(
            generator, n, labels=requested if name == "cgan" else None, seed=args.seed
        )
        coverage = class_coverage(classifier, samples)
        r = {
            "fd": round(fd_digits(classifier, samples, reference), 3),
            "coverage": coverage["classes_covered"],
            "evenness": round(coverage["evenness"], 3),
            "img_per_s": round(img_per_s),
            "s_per_epoch": round(len(x) / img_per_s, 3),
            "g_params": sum(p.numel() for p in generator.parameters()),
            "d_params": sum(p.numel() for p in discriminator.parameters()),
        }
        if name == "cgan":
            r["class_acc"] = round(class_accuracy(classifier, samples, requested), 4)
        results[name] = r
        extra = f", class accuracy {r['class_acc']:.1%}" if "class_acc" in r else ""
        print(
            f"{name:6s} (G {r['g_params']:,}, D {r['d_params']:,}): FD-digits {r['fd']:.3f} "
            f"({r['fd'] / floor:.1f}x floor), {r['coverage']}/10 classes (evenness {r['evenness']:.2f}){extra}; "
            f"{r['img_per_s']:,} img/s, {r['s_per_epoch']:.2f} s/epoch"
        )
    summary = {
        "dataset": data.name,
        "fd_floor": round(floor, 3),
        "classifier_acc": round(classifier_acc, 4),
        "models": {
            k: {key: v[key] for key in ("fd", "coverage", "img_per_s", "class_acc") if key in v}
            for k, v in results.items()
        },
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
