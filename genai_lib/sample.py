"""Decoding: turning a language model's next-token logits into text.

A model gives logits ``(B, vocab_size)`` for the next token. How we pick from
them changes the text as much as the model does:

- **greedy** (``temperature=0``): always the most likely token;
- **temperature** ``t``: sample from ``softmax(logits / t)``; ``t < 1``
  sharpens the distribution, ``t > 1`` flattens it, ``t -> 0`` becomes greedy;
- **top-k**: sample only among the ``k`` most likely tokens;
- **top-p** (nucleus, Holtzman et al. 2019): sample only among the smallest
  set of most likely tokens whose probabilities add up to at least ``p``.

Temperature is applied first, then top-k, then top-p, and the kept
probabilities are renormalised. :func:`generate` works with any model of the
course: ``model(tokens) -> logits`` of shape ``(B, T, vocab_size)`` and a
``block_size`` attribute (the most tokens it looks at; ``None`` for no limit).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genai_lib.config import device_of


def filter_logits(logits: Tensor, top_k: int | None = None, top_p: float | None = None) -> Tensor:
    """Set the logits of tokens outside the top-k and the top-p nucleus to ``-inf``.

    ``logits``: ``(..., vocab_size)``. ``top_p`` keeps, for each row, the
    smallest set of the most likely tokens whose total probability reaches
    ``top_p`` (at least one token is always kept). Returns a new tensor.
    """
    logits = logits.clone()
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1; got {top_k}.")
        if top_k < logits.shape[-1]:
            kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]  # the k-th largest logit
            logits[logits < kth] = float("-inf")
    if top_p is not None:
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1]; got {top_p}.")
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        mass_before = torch.cumsum(probs, dim=-1) - probs  # probability of the tokens ranked above
        # a token is needed while the tokens above it have not reached top_p yet
        drop_sorted = mass_before >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits[drop] = float("-inf")
    return logits


def next_token_probs(
    logits: Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> Tensor:
    """The distribution a sampler draws from: ``(..., vocab_size)`` logits -> probabilities.

    ``temperature=0`` gives a one-hot on the most likely token (greedy).
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0; got {temperature}.")
    if temperature == 0:
        return torch.zeros_like(logits).scatter(-1, logits.argmax(-1, keepdim=True), 1.0)
    return torch.softmax(filter_logits(logits.float() / temperature, top_k, top_p), dim=-1)


def sample_next(
    logits: Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Draw one token per row: ``(B, vocab_size)`` logits -> ``(B,)`` token ids."""
    # checked where it is free (no GPU sync); argmax over NaN would quietly pick token 0
    if logits.device.type == "cpu" and torch.isnan(logits).any():
        raise ValueError(
            "The model's logits contain NaN, so there is no distribution to sample from: did "
            "training diverge? (Check the loss curve, or retrain with a lower learning rate.)"
        )
    if temperature == 0:
        return logits.argmax(-1)
    probs = next_token_probs(logits, temperature, top_k, top_p)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def generate(
    model: nn.Module,
    tokens: Tensor | list[int],
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    use_cache: bool = True,
) -> Tensor:
    """Continue ``tokens`` by ``max_new_tokens`` sampled tokens.

    ``tokens``: ``(T,)`` or ``(B, T)`` token ids on the model's device, T >= 1
    (a list of ids, such as ``tok.encode(text)``, is moved there).
    Returns the prompt followed by the new tokens, with the same number of
    dimensions: ``(T + max_new_tokens,)`` or ``(B, T + max_new_tokens)``.

    The model sees at most its ``block_size`` latest tokens. With
    ``use_cache=True`` and a model that has ``new_cache()`` (the GPT), each
    new token is one position's work while the context fits in the block; once
    it is full the window slides, positions shift, and the cache is rebuilt
    from the window at every step, which is exactly what the model computes
    without a cache. So ``use_cache`` changes speed, never the tokens.
    ``seed`` makes the sampling reproducible without touching the global
    random state.
    """
    if not isinstance(tokens, Tensor):  # a list from tok.encode(text), say
        tokens = torch.as_tensor(tokens, device=device_of(model))
    if tokens.is_floating_point():
        raise ValueError(f"tokens must be integer token ids; got {tokens.dtype}.")
    if tokens.dim() not in (1, 2) or tokens.shape[-1] < 1:
        raise ValueError(
            f"tokens must have shape (T,) or (B, T) with T >= 1; got {tuple(tokens.shape)}."
        )
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0; got {max_new_tokens}.")
    single = tokens.dim() == 1
    seq = tokens[None] if single else tokens
    block = getattr(model, "block_size", None)
    generator = torch.Generator(device=seq.device).manual_seed(seed) if seed is not None else None
    cached = use_cache and hasattr(model, "new_cache")

    was_training = model.training
    model.eval()
    try:
        window = seq if block is None else seq[:, -block:]
        cache = model.new_cache(len(seq)) if cached else None
        logits = model(window, cache)[:, -1] if cached else model(window)[:, -1]
        new = []
        for i in range(max_new_tokens):
            token = sample_next(logits, temperature, top_k, top_p, generator)  # (B,)
            new.append(token)
            if i == max_new_tokens - 1:
                break
            if cached and cache.length < cache.capacity:
                logits = model(token[:, None], cache)[:, -1]  # one new position
            else:
                full = torch.cat([seq, torch.stack(new, dim=1)], dim=1)
                window = full if block is None else full[:, -block:]
                if cached:  # the window slid: every position moved, so rebuild the cache
                    cache = model.new_cache(len(seq))
                    logits = model(window, cache)[:, -1]
                else:
                    logits = model(window)[:, -1]
    finally:
        model.train(was_training)
    out = torch.cat([seq, torch.stack(new, dim=1)], dim=1) if new else seq
    return out[0] if single else out
