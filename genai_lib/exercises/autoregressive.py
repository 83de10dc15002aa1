"""Checkers for chapter 03 (autoregressive text models: 03a from counts to an LSTM, 03b the GPT)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import functional as F

from genai_lib.exercises import call, expect, passed


def _as_tensor(value: object, what: str) -> Tensor:
    expect(
        isinstance(value, Tensor),
        f"{what} should return a torch tensor; got {type(value).__name__}.",
    )
    return value  # type: ignore[return-value]


# ---------------------------------------------------------------- 03a


def check_smoothed_bigram(smoothed_fn: Callable[[Tensor, float], Tensor]) -> None:
    """``smoothed_fn(counts, alpha)``: add-alpha bigram probabilities, ``(V, V) -> (V, V)``."""
    counts = torch.tensor([[3.0, 1.0, 0.0], [0.0, 0.0, 0.0], [5.0, 0.0, 5.0]])
    got = _as_tensor(call(smoothed_fn, counts, 1.0), "smoothed_bigram")
    expect(
        got.shape == (3, 3),
        f"Expected a (3, 3) table of probabilities; got shape {tuple(got.shape)}.",
    )
    expect(
        torch.allclose(got.sum(1), torch.ones(3), atol=1e-5),
        f"Each row is a distribution over the next token and must sum to 1; yours sum to {got.sum(1).tolist()}.",
    )
    expected = torch.tensor(
        [[4 / 7, 2 / 7, 1 / 7], [1 / 3, 1 / 3, 1 / 3], [6 / 13, 1 / 13, 6 / 13]]
    )
    expect(
        torch.allclose(got, expected, atol=1e-5),
        f"With alpha = 1, row [3, 1, 0] should become [4/7, 2/7, 1/7]: add alpha to every count, then divide "
        f"by the row total plus alpha * V. Yours gave {got[0].tolist()}.",
    )
    small = _as_tensor(call(smoothed_fn, counts, 0.01), "smoothed_bigram")
    expect(
        bool((small > 0).all()) and small[0, 0] > 0.7,
        "A small alpha should stay close to the raw frequencies (3/4 for the first entry) while no entry is 0.",
    )
    passed("rows sum to 1, unseen pairs get a small probability, and an empty row becomes uniform.")


def check_bits_and_perplexity(fn: Callable[[Tensor], tuple[float, float]]) -> None:
    """``fn(p_true)``: probabilities given to the true tokens ``(N,)`` -> (bits per token, perplexity)."""
    result = call(fn, torch.full((8,), 0.25))
    expect(
        isinstance(result, tuple) and len(result) == 2,
        "Return two numbers: (bits per token, perplexity).",
    )
    b, ppl = (float(x) for x in result)
    expect(
        abs(b - 2.0) < 1e-6,
        f"A model that gives every true token probability 1/4 spends log2(4) = 2 bits per "
        f"token; yours says {b:.4f}. Use log base 2, and average over tokens.",
    )
    expect(
        abs(ppl - 4.0) < 1e-5,
        f"Its perplexity is 2 ** 2 = 4 (as unsure as a fair 4-way choice); yours says {ppl:.4f}.",
    )
    p = torch.tensor([0.5, 0.125, 1.0, 0.25])  # -log2: 1, 3, 0, 2 -> mean 1.5 bits
    b, ppl = (float(x) for x in call(fn, p))
    expect(
        abs(b - 1.5) < 1e-6 and abs(ppl - 2**1.5) < 1e-5,
        f"For probabilities [1/2, 1/8, 1, 1/4] the mean of -log2 p is 1.5 bits and the perplexity 2 ** 1.5 = "
        f"{2**1.5:.4f}; yours gave ({b:.4f}, {ppl:.4f}). Average the bits first, then exponentiate.",
    )
    passed("bits per token and perplexity agree on both examples.")


def check_context_windows(fn: Callable[[Tensor, int, int], Tensor]) -> None:
    """``fn(tokens (B, T), context, pad_id) -> (B, T, context)``: the tokens ending at each position."""
    tokens = torch.tensor([[5, 6, 7, 8], [1, 2, 3, 4]])
    got = _as_tensor(call(fn, tokens, 3, 0), "context_windows")
    expect(
        got.shape == (2, 4, 3),
        f"Expected shape (B, T, context) = (2, 4, 3); got {tuple(got.shape)}.",
    )
    expected = torch.tensor(
        [[[0, 0, 5], [0, 5, 6], [5, 6, 7], [6, 7, 8]], [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4]]]
    )
    expect(
        torch.equal(got, expected),
        f"The window at position t holds tokens t - context + 1 ... t, padded on the left with pad_id. "
        f"For [5, 6, 7, 8] with context 3 that is {expected[0].tolist()}; yours gave {got[0].tolist()}. "
        f"A window must never include the token at t + 1: that is the one to predict.",
    )
    passed("each window ends at its own position and is padded on the left.")


# ---------------------------------------------------------------- 03b


def check_causal_attention(fn: Callable[[Tensor, Tensor, Tensor], Tensor]) -> None:
    """``fn(q, k, v)`` with shapes ``(B, H, T, d)``: softmax(q k^T / sqrt(d) + causal mask) v."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 4, generator=g) for _ in range(3))
    got = _as_tensor(call(fn, q, k, v), "causal_attention")
    expect(
        got.shape == (2, 3, 5, 4),
        f"Expected the output shape (B, H, T, d) = (2, 3, 5, 4); got {tuple(got.shape)}.",
    )
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    no_mask = F.scaled_dot_product_attention(q, k, v)
    unscaled = F.scaled_dot_product_attention(q * math.sqrt(4), k, v, is_causal=True)
    if torch.allclose(got, no_mask, atol=1e-5):
        raise_hint = "Your attention has no causal mask: position t can see the tokens after it."
    elif torch.allclose(got, unscaled, atol=1e-5):
        raise_hint = "Divide the scores by sqrt(d), the head size, before the softmax."
    else:
        raise_hint = (
            "Compare with torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True). "
            "Mask with -inf where key position > query position (torch.triu(..., diagonal=1)), "
            "then softmax over the last dimension (the keys)."
        )
    expect(torch.allclose(got, expected, atol=1e-5), raise_hint)
    passed("matches torch's scaled_dot_product_attention with is_causal=True.")


def check_top_k_filter(fn: Callable[[Tensor, int], Tensor]) -> None:
    """``fn(logits (B, V), k)``: logits outside each row's k largest set to -inf."""
    from genai_lib.sample import filter_logits

    logits = torch.tensor([[0.1, 2.0, -1.0, 0.5, 3.0], [1.0, 0.0, 4.0, 2.0, -3.0]])
    for k in (1, 2, 5):
        got = _as_tensor(call(fn, logits, k), "top_k_filter")
        expected = filter_logits(logits, top_k=k)
        expect(
            got.shape == logits.shape,
            f"Keep the shape (B, V) = {tuple(logits.shape)}; got {tuple(got.shape)}.",
        )
        expect(
            torch.equal(torch.isinf(got), torch.isinf(expected)),
            f"With k = {k}, each row keeps its own {k} largest logits (-inf elsewhere). Expected kept positions "
            f"{(~torch.isinf(expected)).tolist()}; yours {(~torch.isinf(got)).tolist()}.",
        )
        kept = ~torch.isinf(expected)
        expect(
            torch.equal(got[kept], logits[kept]),
            "The kept logits must keep their values: only the others change.",
        )
    passed("each row keeps its k largest logits, unchanged.")


def check_bpe_merge(fn: Callable[[list[int], tuple[int, int], int], list[int]]) -> None:
    """``fn(ids, pair, new_id)``: replace non-overlapping occurrences of ``pair``, left to right."""
    cases = [
        (([1, 2, 3, 1, 2], (1, 2), 9), [9, 3, 9]),
        (([1, 1, 1], (1, 1), 9), [9, 1]),  # overlapping: the leftmost pair wins
        (([1, 1, 1, 1], (1, 1), 9), [9, 9]),
        (([3, 4], (1, 2), 9), [3, 4]),
        (([], (1, 2), 9), []),
    ]
    for (ids, pair, new_id), expected in cases:
        got = call(fn, list(ids), pair, new_id)
        expect(
            list(got) == expected,
            f"merge({ids}, {pair}, {new_id}) should give {expected}; yours gave {got}. "
            f"Scan left to right; after a merge, skip both tokens of the pair.",
        )
    passed("merges are applied left to right without overlap.")
