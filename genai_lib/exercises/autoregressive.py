"""Checkers for chapter 03 (autoregressive text models: 03a from counts to an LSTM, 03b the GPT)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from genai_lib.exercises import call, expect, passed


def _as_tensor(value: object, what: str) -> Tensor:
    expect(
        isinstance(value, Tensor),
        f"{what} should return a torch tensor; got {type(value).__name__}.",
    )
    return value  # type: ignore[return-value]


# ---------------------------------------------------------------- 03a


def check_interpolated_bigram(fn: Callable[[Tensor, float], Tensor]) -> None:
    """``fn(counts, lam)``: ``lam * counts / row total + (1 - lam) * u``, ``(V, V) -> (V, V)``.

    ``u`` is the unigram distribution of the *next* token (the column sums of ``counts``,
    normalised); a row with no counts at all is ``u`` itself.
    """
    counts = torch.tensor([[3.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 5.0]])
    u = torch.tensor([0.4, 0.1, 0.5])  # column sums [4, 1, 5] / 10
    got = _as_tensor(call(fn, counts.clone(), 0.5), "interpolated_bigram")
    expect(
        got.shape == (3, 3),
        f"Expected a (3, 3) table of probabilities; got shape {tuple(got.shape)}.",
    )
    expect(
        bool(torch.isfinite(got).all()),
        "Row 1 of the test counts is empty (that character was never followed by anything), so "
        "counts / row total is 0/0 = nan there. Give such a row the unigram distribution u alone "
        f"(torch.where on the row totals). Yours gave {got[1].tolist()}.",
    )
    expect(
        torch.allclose(got.sum(1), torch.ones(3), atol=1e-5),
        "Each row is a distribution over the next token and must sum to 1; yours sum to "
        f"{got.sum(1).tolist()}. (An empty row must be u, not (1 - lam) * u.)",
    )
    at_one = _as_tensor(call(fn, counts.clone(), 1.0), "interpolated_bigram")
    count_rows = torch.tensor([[0.75, 0.25, 0.0], [1 / 6, 0.0, 5 / 6]])
    expect(
        torch.allclose(at_one[[0, 2]], count_rows, atol=1e-5),
        "With lam = 1 the seen rows must be the count model, counts / row total "
        f"({count_rows[0].tolist()} for the row [3, 1, 0]); yours gave {at_one[0].tolist()}. "
        "lam weights the bigram and 1 - lam the unigram.",
    )
    at_zero = _as_tensor(call(fn, counts.clone(), 0.0), "interpolated_bigram")
    by_rows = torch.tensor([0.4, 0.0, 0.6])  # row sums / total: how often a token comes first
    if torch.allclose(at_zero[0], by_rows, atol=1e-5):
        hint = (
            "u_b is how often b comes *next*: sum the counts over the rows (counts.sum(0), the "
            "column sums), then normalise. You summed along the rows, which counts how often "
            "each token comes first."
        )
    else:
        hint = "With lam = 0 every row must be the unigram u = column sums / total count."
    expect(
        torch.allclose(at_zero, u.expand(3, 3), atol=1e-5),
        f"{hint} Expected every row to be {u.tolist()}; yours gave {at_zero.tolist()}.",
    )
    expected = 0.5 * torch.tensor([0.75, 0.25, 0.0]) + 0.5 * u
    expect(
        torch.allclose(got[0], expected, atol=1e-5),
        "Mix the two distributions, not the counts: lam * (counts / row total) + (1 - lam) * u. "
        f"For the row [3, 1, 0] and lam = 0.5 that is {expected.tolist()}; yours gave "
        f"{got[0].tolist()}.",
    )
    passed("rows sum to 1, lam = 1 is the count model, lam = 0 the unigram, and an empty row is u.")


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


def check_top_p_probs(fn: Callable[[Tensor, float], Tensor]) -> None:
    """``fn(logits (B, V), p) -> (B, V)``: the nucleus distribution that top-p sampling draws from."""
    from genai_lib.sample import next_token_probs

    probs = torch.tensor([[0.05, 0.5, 0.15, 0.3], [0.3, 0.1, 0.2, 0.4]])  # no ties
    logits = probs.log()
    for p in (0.45, 0.75, 1.0):
        got = _as_tensor(call(fn, logits.clone(), p), "top_p_probs")
        expected = next_token_probs(logits, top_p=p)
        expect(
            got.shape == logits.shape,
            f"Keep the shape (B, V) = {tuple(logits.shape)}; got {tuple(got.shape)}.",
        )
        kept, should_keep = got > 0, expected > 0
        crossing = (
            f"With p = {p} and the probabilities {probs.tolist()}, keep {should_keep.tolist()}; "
            f"yours kept {kept.tolist()}. The token whose probability carries the total across p "
            "is kept too: keep a token while the mass of the tokens ranked *above* it is still "
            "below p (cumsum - probs < p), so at least one token always stays."
        )
        expect(bool(kept.any(-1).all()), crossing)
        expect(
            bool(torch.isfinite(got).all() and (got >= 0).all()),
            f"Return probabilities: 0 for a dropped token (not a -inf logit), no nan. With "
            f"p = {p} yours gave {got.tolist()}.",
        )
        if not torch.equal(kept, should_keep):
            # a kept token less likely than a dropped one in the same row: the wrong end was kept
            lowest_kept = torch.where(kept, probs, torch.ones_like(probs)).min(-1).values
            highest_dropped = torch.where(kept, torch.zeros_like(probs), probs).max(-1).values
            expect(
                not bool((lowest_kept < highest_dropped).any()),
                f"Keep the *most* likely tokens: sort the probabilities in descending order "
                f"before the running sum. With p = {p} you kept {kept.tolist()}, dropping a more "
                f"likely token than one you kept.",
            )
            expect(not bool((kept & ~should_keep).any()), crossing)
            expect(
                False,
                f"Keep the *smallest* set of most likely tokens whose total reaches p: with "
                f"p = {p}, keep {should_keep.tolist()}; yours kept {kept.tolist()}.",
            )
        expect(
            torch.allclose(got.sum(-1), torch.ones(2), atol=1e-5),
            f"Renormalise: divide the kept probabilities by their total, so that each row sums to "
            f"1 again. With p = {p} your rows sum to {got.sum(-1).tolist()}.",
        )
        expect(
            torch.allclose(got, expected, atol=1e-5),
            "The kept tokens keep their relative probabilities: softmax of the logits, 0 outside "
            f"the nucleus, divided by the kept mass. With p = {p}, expected {expected.tolist()}; "
            f"yours {got.tolist()}.",
        )
    passed(
        "each row keeps the smallest set of most likely tokens that reaches p, the token that "
        "crosses p included, and sums to 1."
    )


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
