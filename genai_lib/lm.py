"""Language models: training one on a token sequence, and measuring it in bits per token.

:func:`train_lm` connects the pieces every chapter-03 model shares: random
windows of the training tokens (:class:`~genai_lib.data.TokenWindows`), the
next-token cross-entropy (:func:`~genai_lib.losses.next_token_loss`) and the
course's loop (:func:`~genai_lib.train.fit`). :func:`evaluate_lm` measures a
model on a whole held-out sequence.

The loss a language model minimises is the average negative log-likelihood
of the next token, in nats. Dividing by ln 2 gives **bits per token**: how
many bits an ideal compressor driven by the model would spend per token.
Perplexity is ``2 ** bits = e ** nats``: the model is as unsure as a uniform
choice among that many tokens. Two baselines frame every figure:

- uniform over the vocabulary: ``log2(vocab_size)`` bits;
- the unigram floor, ``unigram_entropy_bits(val_tokens, vocab_size)``: the
  entropy of the held-out tokens' own frequencies. By Gibbs' inequality no
  model that ignores context (a unigram model) costs less on those tokens,
  whatever text it was fitted to.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from genai_lib.data.text import TokenWindows, as_token_ids
from genai_lib.losses import next_token_loss
from genai_lib.sample import generate
from genai_lib.train import History, Objective, fit


def bits(nats: float) -> float:
    """Nats -> bits."""
    return nats / math.log(2)


def unigram_entropy_bits(tokens: Tensor, vocab_size: int) -> float:
    """Entropy of the token frequencies of ``tokens`` (any shape), in bits per token.

    Called on held-out tokens, it is the *unigram floor* of that text: if
    ``q`` are their frequencies, any unigram model ``p`` costs them the
    cross-entropy ``-sum_c q(c) log2 p(c)``, which by Gibbs' inequality is at
    least this entropy, with equality only for ``p = q``. Called on the
    training tokens it describes the training text and bounds nothing about
    held-out costs: a unigram model fitted to the training text can cost less
    on held-out text than the training text's own entropy.
    """
    tokens = as_token_ids(tokens)
    counts = torch.bincount(tokens.flatten().long(), minlength=vocab_size).double()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * p.log2()).sum())


@torch.no_grad()
def evaluate_lm(
    model: nn.Module, tokens: Tensor, block_size: int | None = None, batch_size: int = 64
) -> float:
    """Mean next-token loss over a whole token sequence, in nats per token.

    ``tokens``: 1-D. The sequence is cut into consecutive, non-overlapping
    windows of ``block_size`` (default: the model's) so that every token after
    the first is predicted exactly once, each from the tokens before it within
    its window. Nothing is sampled: the same model and tokens always give the
    same figure. The model runs in eval mode on its own device; its mode is
    restored afterwards.
    """
    block_size = block_size or getattr(model, "block_size", None)
    if not block_size:
        raise ValueError("evaluate_lm needs a block_size for a model without one.")
    if batch_size < 1:
        raise ValueError(
            f"batch_size must be at least 1 (windows per forward pass); got {batch_size}."
        )
    tokens = as_token_ids(tokens)
    if tokens.dim() != 1 or len(tokens) < 2:
        raise ValueError(
            f"evaluate_lm takes a 1-D sequence of at least 2 tokens; got shape {tuple(tokens.shape)}."
        )
    device = next(model.parameters()).device
    n_windows = (len(tokens) - 1) // block_size
    full = tokens[: n_windows * block_size + 1]
    inputs, targets = full[:-1].view(n_windows, block_size), full[1:].view(n_windows, block_size)
    pieces = [
        (inputs[i : i + batch_size], targets[i : i + batch_size])
        for i in range(0, n_windows, batch_size)
    ]
    rest = len(tokens) - 1 - n_windows * block_size  # a last, shorter window
    if rest:
        tail = tokens[n_windows * block_size :]
        pieces.append((tail[:-1][None], tail[1:][None]))

    was_training = model.training
    model.eval()
    try:
        total, count = 0.0, 0
        for x, y in pieces:
            x, y = x.to(device), y.to(device)
            total += next_token_loss(model(x), y).item() * y.numel()
            count += y.numel()
    finally:
        model.train(was_training)
    return total / count


def train_lm(
    model: nn.Module,
    train_tokens: Tensor,
    *,
    steps: int,
    block_size: int,
    batch_size: int = 32,
    lr: float = 1e-3,
    val_tokens: Tensor | None = None,
    eval_every: int = 0,
    eval_max_tokens: int | None = 20_000,
    seed: int = 0,
    optimizer: torch.optim.Optimizer | None = None,
    **fit_kwargs: Any,
) -> History:
    """Train a language model on random windows of ``train_tokens`` (1-D) with :func:`~genai_lib.train.fit`.

    Each step sees ``batch_size`` windows of ``block_size`` tokens and
    minimises the mean next-token cross-entropy (``loss``, nats per token).
    With ``val_tokens``, every ``eval_every`` steps and at the end the history
    gets ``val_loss`` (nats per token) and ``val_bits`` (bits per token),
    measured with :func:`evaluate_lm` on the first ``eval_max_tokens``
    validation tokens (to keep evaluation quick on a large split; ``None``
    measures the whole split each time, the same figure as a final
    :func:`evaluate_lm` call). Other keyword arguments go to
    :func:`~genai_lib.train.fit` (``warmup_steps``, ``weight_decay``,
    ``checkpoint_path``, ``device``, ``progress``...). ``optimizer`` replaces
    fit's AdamW (for example :func:`genai_lib.optim.muon_with_adamw`).
    """
    windows = TokenWindows(train_tokens, block_size, batch_size, seed=seed)
    eval_fn = None
    if val_tokens is not None:
        val_part = val_tokens if eval_max_tokens is None else val_tokens[:eval_max_tokens]

        def eval_fn() -> dict[str, float]:
            nats = evaluate_lm(model, val_part, block_size)
            return {"val_loss": nats, "val_bits": bits(nats)}

    def loss_fn(batch: tuple[Tensor, Tensor]) -> Tensor:
        inputs, targets = batch
        return next_token_loss(model(inputs), targets)

    # one objective: metrics keep plain names
    objectives = [Objective("model", model, loss_fn, optimizer)]
    return fit(
        objectives,
        data=windows,
        steps=steps,
        lr=lr,
        eval_fn=eval_fn,
        eval_every=eval_every,
        seed=seed,
        **fit_kwargs,
    )


@torch.no_grad()
def answer(
    model: nn.Module,
    prompt: str,
    encode: Callable[[str], list[int]],
    decode: Callable[[list[int]], str],
    max_new_tokens: int = 24,
) -> str:
    """The model's greedy continuation of ``prompt``, up to and including its first newline (the end of an answer)."""
    device = next(model.parameters()).device
    prompt_ids = torch.tensor(encode(prompt), device=device)
    completion = decode(
        generate(model, prompt_ids, max_new_tokens, temperature=0)[len(prompt_ids) :].tolist()
    )
    cut = completion.find("\n")
    return completion[: cut + 1] if cut >= 0 else completion


def exact_match(
    model: nn.Module,
    pairs: list[tuple[str, str]],
    encode: Callable[[str], list[int]],
    decode: Callable[[list[int]], str],
    max_new_tokens: int = 24,
) -> float:
    """Share of ``(prompt, response)`` pairs for which :func:`answer` is exactly the response.

    Responses end with a newline, as answers do. 1.0 means every answer is right.
    """
    right = sum(
        answer(model, prompt, encode, decode, max_new_tokens) == response
        for prompt, response in pairs
    )
    return right / len(pairs)
