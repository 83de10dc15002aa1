"""Text to image in miniature: the data, the two trainings and the measurements of chapter 07.

One place for what the chapter and ``benchmarks/text_to_image.py`` share:

- :class:`CaptionedDigits`: digits with true captions (:mod:`genai_lib.data.captions`),
  some combinations of digit and attribute held out of training entirely;
- :func:`train_clip`: a small CLIP on (image, caption) pairs; at every step
  each image gets one of its true captions at random: any phrasing, with any of
  its attributes left out ("a 7" is as true of a thin seven as "a thin 7");
- :func:`train_text_denoiser`: chapter 05's U-Net with cross-attention over
  the frozen CLIP text encoder, captions dropped 10% of the time for guidance;
- measurements: :func:`zero_shot_accuracy`, :func:`retrieval_recall`,
  :func:`clip_score`, and :func:`generate` for prompts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from genai_lib.config import seed_everything
from genai_lib.data import ImageData
from genai_lib.data.captions import (
    TEMPLATES,
    THICKNESS,
    CaptionTokenizer,
    Description,
    DigitAttributes,
    phrase,
    true_of,
)
from genai_lib.diffusion import NoiseSchedule, ddim_sample, diffusion_loss, noise_schedule
from genai_lib.ema import EMA
from genai_lib.losses import contrastive_loss
from genai_lib.models.clip import CLIP
from genai_lib.models.text_denoiser import TextDenoiser
from genai_lib.models.unet import UNet
from genai_lib.train import History, fit

# Combinations of a digit and an attribute never shown in training: no image of them, no caption.
HELD_OUT = ((4, "thin"), (7, "thick"), (2, "leaning right"))


def is_held_out(d: Description, held_out: Sequence[tuple[int, str]] = HELD_OUT) -> bool:
    return any(d.has(digit, word) for digit, word in held_out)


# Every true caption of an image: its description with each subset of attributes left out (at most 4),
# each in every phrasing. Images with fewer attributes repeat their captions to fill the slots, so a
# caption drawn uniformly leaves out each stated attribute half of the time.
CAPTIONS_PER_IMAGE = 4 * len(TEMPLATES)


@dataclass
class Captioned:
    """Images with their descriptions and every true caption of each, tokenized, with codes for :func:`true_of`."""

    images: Tensor  # (N, 1, H, W) in [0, 1]
    labels: Tensor  # (N,) the digit
    descriptions: list[Description]  # the fullest true description of each image
    codes: Tensor  # (N, 3) the images' codes (digit, thickness, slant): 0 = middling
    tokens: Tensor  # (N, CAPTIONS_PER_IMAGE, context): every true caption
    caption_codes: Tensor  # (N, CAPTIONS_PER_IMAGE, 3): what each of those captions states

    def __len__(self) -> int:
        return len(self.images)


@dataclass
class CaptionedDigits:
    """The training and held-out digits with captions; ``train`` leaves out every held-out combination.

    ``held_out_images``: the held-out (validation) images that show a held-out
    combination, kept apart so they can be compared with what the model draws.
    """

    attributes: DigitAttributes
    tokenizer: CaptionTokenizer
    train: Captioned
    val: Captioned
    held_out: tuple[tuple[int, str], ...]

    @classmethod
    def build(
        cls,
        data: ImageData,
        held_out: Sequence[tuple[int, str]] = HELD_OUT,
        tokenizer: CaptionTokenizer | None = None,
    ) -> CaptionedDigits:
        for digit, word in held_out:
            Description(
                digit, *((word, None) if word in THICKNESS else (None, word))
            )  # checks both
        tokenizer = tokenizer or CaptionTokenizer()
        # thresholds from all training images, before any are held out, so "thin" means the same everywhere
        attributes = DigitAttributes.fit(data.train_images, data.train_labels)

        def captioned(images: Tensor, labels: Tensor, keep_held_out: bool) -> Captioned:
            described = attributes.describe(images, labels)
            keep = [
                i for i, d in enumerate(described) if keep_held_out or not is_held_out(d, held_out)
            ]
            described = [described[i] for i in keep]
            tokens, caption_codes = [], []
            for d in described:
                shorter = d.shortened()
                shorter = shorter * (4 // len(shorter))  # 1, 2 or 4 of them -> 4
                tokens.append(
                    tokenizer([phrase(c, t) for c in shorter for t in range(len(TEMPLATES))])
                )
                caption_codes.append(torch.tensor([c.codes for c in shorter for _ in TEMPLATES]))
            return Captioned(
                images[keep],
                labels[keep],
                described,
                torch.tensor([d.codes for d in described]),
                torch.stack(tokens),
                torch.stack(caption_codes),
            )

        return cls(
            attributes,
            tokenizer,
            captioned(data.train_images, data.train_labels, keep_held_out=False),
            captioned(data.val_images, data.val_labels, keep_held_out=True),
            tuple(held_out),
        )


def pick_caption(tokens: Tensor, codes: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """For each image one of its true captions at random (global torch generator).

    ``tokens (B, P, L)``, ``codes (B, P, 3)`` -> ``(B, L)`` and ``(B, 3)`` (``None`` without codes).
    """
    choice = torch.randint(tokens.shape[1], (len(tokens),), device=tokens.device)
    rows = torch.arange(len(tokens), device=tokens.device)
    return tokens[rows, choice], None if codes is None else codes[rows, choice]


# ---------------------------------------------------------------- CLIP


def train_clip(
    captioned: CaptionedDigits,
    *,
    steps: int,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    model_kwargs: dict[str, Any] | None = None,
    **fit_kwargs: Any,
) -> tuple[CLIP, History, float]:
    """A :class:`~genai_lib.models.clip.CLIP` trained contrastively; each caption true of an image counts as its match.

    AdamW at ``lr``, 5% warmup, cosine decay, weight decay 0.1 on the
    weights. Returns ``(model in eval mode on the CPU, history, seconds)``.
    """
    seed_everything(seed)
    tok = captioned.tokenizer
    model = CLIP(tok.vocab_size, tok.context, **(model_kwargs or {}))

    def loss_fn(batch: tuple[Tensor, Tensor, Tensor, Tensor]) -> Tensor:
        images, image_codes, tokens, caption_codes = batch
        tokens, caption_codes = pick_caption(tokens, caption_codes)
        return contrastive_loss(model(images, tokens), true_of(caption_codes, image_codes))

    train = captioned.train
    start = time.perf_counter()
    history = fit(
        model,
        loss_fn,
        (train.images, train.codes, train.tokens, train.caption_codes),
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        weight_decay=0.1,
        warmup_steps=max(1, steps // 20),
        seed=seed,
        **fit_kwargs,
    )
    return model.cpu().eval(), history, time.perf_counter() - start


@torch.no_grad()
def zero_shot_accuracy(
    clip: CLIP,
    tokenizer: CaptionTokenizer,
    images: Tensor,
    labels: Tensor,
    prompt: str = "a {digit}",
) -> float:
    """Classify each image as the digit whose prompt (``"a 3"``) is nearest; the share right, in [0, 1]."""
    clip.eval()
    texts = clip.encode_text(
        tokenizer.prompt([prompt.format(digit=k) for k in range(10)])
    )  # (10, D)
    guess = (clip.encode_image(images) @ texts.T).argmax(1)
    return (guess == torch.as_tensor(labels)).float().mean().item()


@torch.no_grad()
def retrieval_recall(
    clip: CLIP,
    images: Tensor,
    image_codes: Tensor,
    tokens: Tensor,
    caption_codes: Tensor,
    k: int = 1,
) -> dict[str, float]:
    """Recall@k both ways over images and captions, a hit being any item the caption is true of (:func:`true_of`).

    text -> image: for each caption, is an image it describes among the k
    nearest images? image -> text: is a caption true of the image among its k
    nearest captions? Captions repeat (many images are "a thin seven"), so
    matching only the exact partner would count right answers as misses.
    """
    clip.eval()
    sim = clip.encode_image(images) @ clip.encode_text(tokens).T  # (N images, M captions)
    same = true_of(caption_codes, image_codes)  # (N, M)
    top_images = sim.T.topk(k, dim=1).indices  # (M captions, k)
    top_texts = sim.topk(k, dim=1).indices  # (N images, k)
    captions, images_ = torch.arange(same.shape[1])[:, None], torch.arange(same.shape[0])[:, None]
    return {
        "text_to_image": same.T[captions, top_images].any(1).float().mean().item(),
        "image_to_text": same[images_, top_texts].any(1).float().mean().item(),
    }


@torch.no_grad()
def clip_score(clip: CLIP, images: Tensor, tokens: Tensor) -> float:
    """The mean cosine similarity between each image and its own caption, in [-1, 1]."""
    clip.eval()
    return (clip.encode_image(images) * clip.encode_text(tokens)).sum(1).mean().item()


# ---------------------------------------------------------------- the denoiser


def train_text_denoiser(
    captioned: CaptionedDigits,
    clip: CLIP,
    *,
    steps: int,
    base_channels: int = 32,
    batch_size: int = 128,
    lr: float = 2e-3,
    p_uncond: float = 0.1,
    timesteps: int = 1000,
    ema_decay: float = 0.999,
    seed: int = 0,
    **fit_kwargs: Any,
) -> tuple[EMA, NoiseSchedule, History, float]:
    """A :class:`~genai_lib.models.text_denoiser.TextDenoiser` on the training digits, with an EMA of its weights.

    Cosine schedule of ``timesteps`` steps, AdamW at ``lr`` with 100 warmup
    steps and cosine decay, captions dropped with probability ``p_uncond``.
    Returns ``(ema, schedule, history, seconds)``; sample from ``ema``.
    """
    seed_everything(seed)
    text_encoder = clip.text_encoder
    unet = UNet(base_channels=base_channels, context_dim=text_encoder.width)
    model = TextDenoiser(unet, text_encoder, captioned.tokenizer.null(1)[0])
    ema = EMA(model, decay=ema_decay)
    schedule = noise_schedule("cosine", timesteps)
    train = captioned.train

    def loss_fn(batch: tuple[Tensor, Tensor]) -> Tensor:
        x0, tokens = batch
        return diffusion_loss(model, schedule, x0, pick_caption(tokens)[0], p_uncond=p_uncond)

    start = time.perf_counter()
    history = fit(
        model,
        loss_fn,
        (train.images * 2 - 1, train.tokens),  # diffusion space is [-1, 1]
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        warmup_steps=min(100, steps // 10),
        callbacks=[ema.callback(model)],
        seed=seed,
        **fit_kwargs,
    )
    ema.cpu()
    return ema, schedule, history, time.perf_counter() - start


def generate(
    model: TextDenoiser | EMA,
    schedule: NoiseSchedule,
    tokenizer: CaptionTokenizer,
    prompts: str | Sequence[str],
    n_per_prompt: int = 1,
    guidance: float = 2.0,
    steps: int = 50,
    seed: int | None = 0,
    batch_size: int = 512,
    image_shape: tuple[int, int, int] = (1, 8, 8),
) -> Tensor:
    """Images ``(len(prompts) * n_per_prompt, *image_shape)`` in [0, 1], prompt by prompt, with DDIM and guidance ``s``.

    Prompts are checked (:meth:`CaptionTokenizer.prompt`): an empty prompt
    or an unknown word is an error that names the vocabulary.
    """
    if isinstance(prompts, str):
        prompts = [prompts]
    tokens = tokenizer.prompt(prompts).repeat_interleave(n_per_prompt, dim=0)
    out = []
    for i, chunk in enumerate(tokens.split(batch_size)):
        out.append(
            ddim_sample(
                model,
                schedule,
                len(chunk),
                image_shape,
                steps=steps,
                labels=chunk,
                guidance=guidance,
                seed=None if seed is None else seed + i,
            )
        )
    return torch.cat(out)
