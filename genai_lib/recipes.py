"""Training recipes that run in more than one place: a chapter, a benchmark, the command line.

Each recipe lives here once, so the figure a benchmark records and the one a
chapter shows come from the same code. A recipe is a few lines around
:func:`genai_lib.train.fit` with its settings named; where two places want
different settings (a benchmark's baseline schedule, a chapter's), they pass
them to the same function.

- :func:`train_vae`: a VAE on dynamically binarised images (chapter 01b, the
  VAE and diffusion benchmarks).
- :func:`train_gan`: a GAN with the non-saturating loss (the GAN and diffusion benchmarks).
- :func:`train_and_measure_lm`: a language model trained on random windows and
  measured on the whole held-out text (chapters 03a and 03b, ``train_gpt``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from genai_lib.config import seed_everything
from genai_lib.data import binarize
from genai_lib.gan import gan_objectives
from genai_lib.lm import bits, evaluate_lm, train_lm
from genai_lib.losses import vae_loss
from genai_lib.models import VAE
from genai_lib.train import History, fit


def train_vae(
    images: Tensor,
    *,
    arch: str,
    latent_dim: int,
    epochs: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    beta: float = 1.0,
    seed: int = 0,
    warmup_epochs: int = 1,
    schedule: str = "cosine",
    grad_clip: float | None = 1.0,
    evaluate: Callable[[VAE], dict[str, float]] | None = None,
    eval_every_epochs: int = 0,
    **fit_kwargs: Any,
) -> tuple[VAE, History, float]:
    """A VAE trained on ``images`` ``(N, C, H, W)`` in [0, 1], binarised afresh at every batch.

    Minimises the negative ELBO (``beta`` weighting the KL), in nats per image,
    with AdamW at ``lr``: by default a warmup of one epoch, then a cosine
    decay, gradients clipped at norm 1 (chapter 01b's recipe). ``evaluate(model)``
    runs every ``eval_every_epochs`` epochs and at the end. The weights are
    seeded with ``seed``, and so is the order of the batches. Other keyword
    arguments go to :func:`~genai_lib.train.fit` (``device``, ``desc``...).
    Returns ``(model in eval mode on the CPU, history, training seconds)``.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1; got {epochs}.")
    if batch_size > len(images):
        raise ValueError(
            f"batch_size={batch_size} is larger than the {len(images)} images, so an epoch has no "
            f"full batch: use batch_size <= {len(images)}, or more images."
        )
    seed_everything(seed)
    model = VAE(image_shape=tuple(images.shape[1:]), latent_dim=latent_dim, arch=arch)
    steps_per_epoch = len(images) // batch_size
    eval_fn = (lambda: evaluate(model)) if evaluate is not None else None
    start = time.perf_counter()
    history = fit(
        model,
        lambda x: vae_loss(model, binarize(x), beta=beta),
        images,  # a fresh binary draw each batch
        steps=epochs * steps_per_epoch,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        warmup_steps=warmup_epochs * steps_per_epoch,
        schedule=schedule,
        grad_clip=grad_clip,
        eval_fn=eval_fn,
        eval_every=eval_every_epochs * steps_per_epoch,
        **fit_kwargs,
    )
    return model.cpu().eval(), history, time.perf_counter() - start


def train_gan(
    generator: nn.Module,
    discriminator: nn.Module,
    data: Tensor | tuple[Tensor, Tensor],
    *,
    steps: int,
    batch_size: int = 64,
    lr: float = 2e-4,
    loss: str = "nonsaturating",
    seed: int = 0,
    **fit_kwargs: Any,
) -> tuple[History, float]:
    """A GAN trained with :func:`~genai_lib.gan.gan_objectives`.

    Adam at ``lr`` (beta1 0.5), a constant rate, no clipping.

    ``data``: images in [-1, 1], or ``(images, labels)`` for a conditional GAN.
    Other keyword arguments go to :func:`~genai_lib.train.fit`. Returns
    ``(history, training seconds)``; the networks are left in eval mode.
    """
    seed_everything(seed)
    start = time.perf_counter()
    history = fit(
        gan_objectives(generator, discriminator, loss=loss, lr=lr),
        data=data,
        steps=steps,
        batch_size=batch_size,
        schedule="constant",
        grad_clip=None,
        seed=seed,
        **fit_kwargs,
    )
    return history, time.perf_counter() - start


@dataclass
class LMResult:
    """What :func:`train_and_measure_lm` reports: held-out bits per token on the whole held-out text."""

    history: History
    parameters: int
    held_out_bits: float
    seconds: float


def train_and_measure_lm(
    model: nn.Module,
    train_tokens: Tensor,
    val_tokens: Tensor,
    *,
    steps: int,
    block_size: int,
    batch_size: int,
    lr: float,
    seed: int = 0,
    **fit_kwargs: Any,
) -> LMResult:
    """Chapter 03's recipe for comparing language models at one budget.

    Every model sees ``steps`` batches of ``batch_size`` random windows of
    ``block_size`` tokens, with a warmup over the first 5% of the steps and a
    cosine decay; the history gets the held-out bits ten times during
    training, and the result is measured on the *whole* held-out text (every
    token predicted once). Other keyword arguments go to
    :func:`~genai_lib.lm.train_lm` and :func:`~genai_lib.train.fit`.
    """
    seed_everything(seed)
    start = time.perf_counter()
    fit_kwargs.setdefault("log_every", 10)
    history = train_lm(
        model,
        train_tokens,
        steps=steps,
        block_size=block_size,
        batch_size=batch_size,
        lr=lr,
        warmup_steps=steps // 20,
        val_tokens=val_tokens,
        eval_every=max(1, steps // 10),
        eval_max_tokens=None,
        seed=seed,
        **fit_kwargs,
    )
    seconds = time.perf_counter() - start
    held_out = bits(evaluate_lm(model, val_tokens, block_size))
    return LMResult(history, sum(p.numel() for p in model.parameters()), held_out, seconds)
