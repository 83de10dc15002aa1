"""Benchmark: text to image in miniature (chapter 07), a small CLIP and a denoiser that reads its text encoder.

    python benchmarks/text_to_image.py             # the bundled 8x8 digits
    python benchmarks/text_to_image.py --seed 1

On the training digits with true captions (genai_lib.data.captions), three
combinations held out of training entirely (a thin four, a thick seven, a two
leaning right):

1. a CLIP (contrastive loss, every caption in the batch that is true of an image a match);
   measured on the 359 held-out digits: zero-shot digit accuracy from the
   prompts "a 0" .. "a 9", recall@1 and @5 both ways (a hit is any image the
   caption is true of, or any caption true of the image);
2. a U-Net with cross-attention over the frozen CLIP text encoder, captions
   dropped 10% of the time; sampled with DDIM (50 steps) and classifier-free
   guidance at --guidance (2, chosen before any run), prompted with the captions of the held-out digits whose
   combinations were seen in training. Measured: digit accuracy (the pinned
   digit classifier), attribute accuracy (each attribute a prompt states,
   judged against the digit's median), FD-digits against the held-out digits
   next to the real-vs-real floor, CLIP score (mean cosine of image and its
   prompt); then the same for the held-out combinations, 60 samples each,
   with the four phrasings; and a sweep of guidance scales.

The last line is JSON: {"clip": {...}, "t2i": {...}, "sweep": {...}}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from genai_lib.data import load_digits
from genai_lib.data.captions import SLANT, THICKNESS, Description, phrase
from genai_lib.metrics import fd_digits, load_or_train_classifier, predict, real_floor
from genai_lib.text_to_image import (
    CaptionedDigits,
    clip_score,
    generate,
    is_held_out,
    retrieval_recall,
    train_clip,
    train_text_denoiser,
    zero_shot_accuracy,
)


def held_out_description(digit: int, word: str) -> Description:
    return Description(digit, *((word, None) if word in THICKNESS else (None, word)))


def opposite(word: str) -> str:
    pair = THICKNESS if word in THICKNESS else SLANT
    return pair[1 - pair.index(word)]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clip-steps", type=int, default=1000)
    parser.add_argument(
        "--steps", type=int, default=3000, help="denoiser training steps (batch 128)"
    )
    parser.add_argument("--base-channels", type=int, default=32)
    parser.add_argument("--guidance", type=float, default=2.0, help="the scale the JSON reports")
    parser.add_argument("--sweep", type=float, nargs="+", default=[0.0, 1.0, 2.0, 3.0, 5.0])
    parser.add_argument(
        "--per-combo", type=int, default=60, help="samples per held-out combination"
    )
    parser.add_argument(
        "--n-eval",
        type=int,
        help="prompts per guidance scale (default: every held-out caption of a seen combination)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    data = load_digits()
    captioned = CaptionedDigits.build(data)
    tok, val = captioned.tokenizer, captioned.val
    classifier = load_or_train_classifier(data)
    print(
        f"{data.name}: {len(captioned.train)} captioned training digits "
        f"({len(data.train_images) - len(captioned.train)} "
        f"left out: every {', '.join(f'{w} {d}' for d, w in captioned.held_out)}), {len(val)} held out"
    )

    clip, _, clip_s = train_clip(
        captioned,
        steps=args.clip_steps,
        seed=args.seed,
        device="cpu",
        progress=False,
        log_every=100,
    )
    recall = {
        k: retrieval_recall(
            clip, val.images, val.codes, val.tokens[:, 0], val.caption_codes[:, 0], k
        )
        for k in (1, 5)
    }
    clip_row = {
        "zero_shot_acc": round(zero_shot_accuracy(clip, tok, val.images, val.labels), 4),
        "r_at_1_text_to_image": round(recall[1]["text_to_image"], 4),
        "r_at_1_image_to_text": round(recall[1]["image_to_text"], 4),
        "r_at_5_text_to_image": round(recall[5]["text_to_image"], 4),
        "r_at_5_image_to_text": round(recall[5]["image_to_text"], 4),
        "temperature": round(1 / clip.scale().item(), 4),
        "train_s": round(clip_s, 1),
    }
    print(f"CLIP ({clip_s:.0f} s): {clip_row}")

    ema, schedule, _, train_s = train_text_denoiser(
        captioned,
        clip,
        steps=args.steps,
        base_channels=args.base_channels,
        seed=args.seed,
        device="cpu",
        progress=False,
        log_every=200,
    )
    print(
        f"denoiser: {sum(p.numel() for p in ema.model.unet.parameters()):,} parameters, {train_s:.0f} s"
    )

    seen = [i for i, d in enumerate(val.descriptions) if not is_held_out(d, captioned.held_out)]
    seen = seen[: args.n_eval]
    seen = seen[: args.n_eval]
    asked = [val.descriptions[i] for i in seen]
    prompts = [phrase(d, i % 4) for i, d in enumerate(asked)]
    digits = torch.tensor([d.digit for d in asked])
    floor = real_floor(classifier, data, len(val))

    def measure(samples, descriptions, digit_labels, texts) -> dict:
        r = {
            "digit_acc": round(
                (predict(classifier, samples) == digit_labels).float().mean().item(), 4
            ),
            "attribute_acc": round(
                captioned.attributes.honoured(samples, descriptions).float().mean().item(), 4
            ),
            "clip_score": round(clip_score(clip, samples, tok(texts)), 4),
        }
        return r

    sweep = {}
    for scale in sorted(set(args.sweep) | {args.guidance}):
        samples = generate(ema, schedule, tok, prompts, guidance=scale, seed=args.seed)
        sweep[scale] = {
            **measure(samples, asked, digits, prompts),
            "fd": round(fd_digits(classifier, samples, val.images), 3),
        }
        print(f"  s = {scale:<4g} {sweep[scale]}")

    combos, counterparts = [], []
    for digit, word in captioned.held_out:
        for target, store in ((word, combos), (opposite(word), counterparts)):
            desc = held_out_description(digit, target)
            texts = [phrase(desc, t % 4) for t in range(args.per_combo)]
            samples = generate(ema, schedule, tok, texts, guidance=args.guidance, seed=args.seed)
            store.append(
                measure(samples, [desc] * len(texts), torch.full((len(texts),), digit), texts)
            )
    mean = lambda rows, key: round(statistics.fmean(r[key] for r in rows), 4)  # noqa: E731

    times = []
    for _ in range(3):
        start = time.perf_counter()
        generate(ema, schedule, tok, ["a 3"] * 100, guidance=args.guidance, seed=args.seed)
        times.append(time.perf_counter() - start)

    main_row = sweep[args.guidance]
    t2i = {
        "guidance": args.guidance,
        "digit_acc": main_row["digit_acc"],
        "attribute_acc": main_row["attribute_acc"],
        "heldout_combo_digit_acc": mean(combos, "digit_acc"),
        "heldout_combo_attribute_acc": mean(combos, "attribute_acc"),
        "seen_counterpart_digit_acc": mean(counterparts, "digit_acc"),
        "seen_counterpart_attribute_acc": mean(counterparts, "attribute_acc"),
        "fd": main_row["fd"],
        "fd_floor": round(floor, 3),
        "clip_score": main_row["clip_score"],
        "train_s": round(train_s, 1),
        "s_per_100": round(statistics.median(times), 3),
    }
    print(
        "\nheld-out combinations (never in training), and the same digit with the other value (seen):"
    )
    for (digit, word), c, s in zip(captioned.held_out, combos, counterparts):
        print(
            f"  {word} {digit}: digit {c['digit_acc']:.1%}, attribute {c['attribute_acc']:.1%}   |   "
            f"{opposite(word)} {digit}: digit {s['digit_acc']:.1%}, attribute {s['attribute_acc']:.1%}"
        )
    result = {"clip": clip_row, "t2i": t2i, "sweep": {f"{k:g}": v for k, v in sweep.items()}}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
