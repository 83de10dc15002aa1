"""Text to image in miniature: the data, the two trainings and the measurements of chapter 07.

One place for what the chapter and ``benchmarks/text_to_image.py`` share:

- :class:`CaptionedDigits`: digits with true captions (:mod:`genai_lib.data.captions`),
  some combinations of digit and attribute held out of training entirely;
- :func:`train_clip`: a small CLIP on (image, caption) pairs, a caption drawn
  from the four phrasings at every step;
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
    SLANT,
    TEMPLATES,
    THICKNESS,
    CaptionTokenizer,
    Description,
    DigitAttributes,
    phrase,
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


def meaning(d: Description) -> int:
    """One id per distinct description (digit x thickness x slant, "not stated" included): 90 in all."""
    th = 0 if d.thickness is None else 1 + THICKNESS.index(d.thickness)
    sl = 0 if d.slant is None else 1 + SLANT.index(d.slant)
    return d.digit * 9 + th * 3 + sl


def is_held_out(d: Description, held_out: Sequence[tuple[int, str]] = HELD_OUT) -> bool:
    return any(d.has(digit, word) for digit, word in held_out)


@dataclass
class Captioned:
    """Images with their descriptions, every phrasing tokenized, and meaning ids."""

    images: Tensor  # (N, 1, H, W) in [0, 1]
    labels: Tensor  # (N,) the digit
    descriptions: list[Description]
    tokens: Tensor  # (N, len(TEMPLATES), context): each caption in every phrasing
    groups: Tensor  # (N,) meaning ids: equal ids, equal meaning

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
            tokens = torch.stack(
                [tokenizer([phrase(d, t) for t in range(len(TEMPLATES))]) for d in described]
            )
            return Captioned(
                images[keep],
                labels[keep],
                described,
                tokens,
                torch.tensor([meaning(d) for d in described]),
            )

        return cls(
            attributes,
            tokenizer,
            captioned(data.train_images, data.train_labels, keep_held_out=False),
            captioned(data.val_images, data.val_labels, keep_held_out=True),
            tuple(held_out),
        )


def pick_phrasing(tokens: Tensor) -> Tensor:
    """``(B, P, L)`` -> ``(B, L)``: for each caption one of its P phrasings, at random (global torch generator)."""
    choice = torch.randint(tokens.shape[1], (len(tokens),), device=tokens.device)
    return tokens[torch.arange(len(tokens), device=tokens.device), choice]


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
    """A :class:`~genai_lib.models.clip.CLIP` trained contrastively, captions of equal meaning counted as matches.

    AdamW at ``lr``, 5% warmup, cosine decay, weight decay 0.1 on the
    weights. Returns ``(model in eval mode on the CPU, history, seconds)``.
    """
    seed_everything(seed)
    tok = captioned.tokenizer
    model = CLIP(tok.vocab_size, tok.context, **(model_kwargs or {}))

    def loss_fn(batch: tuple[Tensor, Tensor, Tensor]) -> Tensor:
        images, tokens, groups = batch
        return contrastive_loss(model(images, pick_phrasing(tokens)), groups)

    train = captioned.train
    start = time.perf_counter()
    history = fit(
        model,
        loss_fn,
        (train.images, train.tokens, train.groups),
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
    clip: CLIP, images: Tensor, tokens: Tensor, groups: Tensor, k: int = 1
) -> dict[str, float]:
    """Recall@k both ways over a set of (image, caption) pairs, a hit being any item of the same meaning.

    text -> image: for each caption, is an image of its meaning among the k
    nearest images? image -> text: likewise for captions. Meanings repeat (many
    images are "a thin seven"), so matching the exact partner would count correct
    answers as misses.
    """
    clip.eval()
    sim = clip.encode_image(images) @ clip.encode_text(tokens).T  # (N images, N captions)
    same = groups[:, None] == groups[None, :]
    top_images = sim.T.topk(k, dim=1).indices  # (N captions, k)
    top_texts = sim.topk(k, dim=1).indices  # (N images, k)
    rows = torch.arange(len(groups))[:, None]
    return {
        "text_to_image": same[rows, top_images].any(1).float().mean().item(),
        "image_to_text": same[rows, top_texts].any(1).float().mean().item(),
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
        return diffusion_loss(model, schedule, x0, pick_phrasing(tokens), p_uncond=p_uncond)

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
