"""genai_lib.lm's baselines: the entropy of token frequencies, and the unigram floor it gives held-out text.

Everything here is exact arithmetic on small tensors (float64 inside the
library), so the tolerances are rounding-level: 1e-9 bits.
"""

from __future__ import annotations

import math

import pytest
import torch

from genai_lib.data import TokenWindows
from genai_lib.lm import bits, evaluate_lm, train_lm, unigram_entropy_bits
from genai_lib.losses import next_token_loss
from genai_lib.models import GPT, GPTConfig


def cross_entropy_bits(tokens: torch.Tensor, p: torch.Tensor) -> float:
    """The cost of the unigram model ``p`` on ``tokens``: mean -log2 p(token), bits per token."""
    return float(-p[tokens].log2().mean())


def test_entropy_of_known_frequencies():
    """Uniform over 8 used tokens: 3 bits, whatever the vocabulary; one token only: 0 bits."""
    assert abs(unigram_entropy_bits(torch.arange(8).repeat(5), vocab_size=20) - 3.0) < 1e-9
    assert unigram_entropy_bits(torch.full((50,), 4), vocab_size=10) == 0.0
    # frequencies 1/2, 1/4, 1/4: 1.5 bits; a 2-D batch counts the same tokens
    tokens = torch.tensor([[0, 0, 1, 2]])
    assert abs(unigram_entropy_bits(tokens, vocab_size=3) - 1.5) < 1e-9
    assert abs(bits(math.log(2)) - 1.0) < 1e-12


def test_held_out_entropy_is_the_floor_of_every_unigram_model():
    """Gibbs' inequality: on held-out tokens, no unigram model costs less than their own entropy.

    The held-out frequencies reach the floor exactly. The training text's own
    entropy is *not* a floor: here the training text is more varied than the
    held-out text, and a unigram model fitted to the training text costs the
    held-out text less than the training entropy. Taking the training entropy
    as the floor (the error this test guards against) would be violated.
    """
    g = torch.Generator().manual_seed(0)
    vocab = 6
    train = torch.multinomial(torch.tensor([0.3, 0.2, 0.2, 0.1, 0.1, 0.1]), 5000, True, generator=g)
    held_out = torch.multinomial(
        torch.tensor([0.6, 0.2, 0.1, 0.05, 0.03, 0.02]), 2000, True, generator=g
    )

    floor = unigram_entropy_bits(held_out, vocab)
    q = torch.bincount(held_out, minlength=vocab).double() / len(held_out)
    counts = torch.bincount(train, minlength=vocab).double()
    fitted = (counts + 1) / (counts.sum() + vocab)  # the training unigram, add-one
    models = [fitted] + [
        torch.softmax(torch.randn(vocab, generator=g, dtype=torch.float64), 0) for _ in range(200)
    ]
    assert all(cross_entropy_bits(held_out, p) >= floor for p in models)
    assert abs(cross_entropy_bits(held_out, q) - floor) < 1e-9  # equality at p = q

    training_entropy = unigram_entropy_bits(train, vocab)
    assert cross_entropy_bits(held_out, fitted) < training_entropy, "the wrong floor is not a floor"


# ---------------------------------------------------------------- bad inputs


def tiny_gpt() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16))


TOKENS = torch.randint(0, 11, (200,), generator=torch.Generator().manual_seed(0))


def test_int32_token_ids_train_and_evaluate_like_int64():
    model = tiny_gpt()
    expected = evaluate_lm(model, TOKENS)
    assert evaluate_lm(model, TOKENS.int()) == pytest.approx(expected, rel=1e-6)
    history = train_lm(
        model, TOKENS.int(), steps=1, block_size=8, batch_size=2, progress=False, device="cpu"
    )
    assert math.isfinite(history.last("loss"))
    logits = torch.randn(2, 4, 11)
    torch.testing.assert_close(
        next_token_loss(logits, TOKENS[:8].view(2, 4).int()),
        next_token_loss(logits, TOKENS[:8].view(2, 4)),
    )


@pytest.mark.parametrize("kind", ["list", "numpy"])
def test_token_lists_and_numpy_arrays_are_taken_as_tensors(kind):
    as_kind = (lambda t: t.tolist()) if kind == "list" else (lambda t: t.numpy())
    model = tiny_gpt()
    assert evaluate_lm(model, as_kind(TOKENS)) == pytest.approx(evaluate_lm(model, TOKENS))
    assert unigram_entropy_bits(as_kind(TOKENS), 11) == pytest.approx(
        unigram_entropy_bits(TOKENS, 11)
    )
    for got, expected in zip(TokenWindows(as_kind(TOKENS), 8, 2)(0), TokenWindows(TOKENS, 8, 2)(0)):
        assert torch.equal(got, expected)


@pytest.mark.parametrize(
    "call, named",
    [
        (lambda: next_token_loss(torch.randn(2, 4, 11), torch.full((2, 4), -100)), "IGNORE"),
        (lambda: next_token_loss(torch.randn(2, 4, 11), torch.zeros(2, 4)), "integer token ids"),
        (lambda: evaluate_lm(tiny_gpt(), TOKENS, batch_size=0), "batch_size must be at least 1"),
        (lambda: evaluate_lm(tiny_gpt(), TOKENS.float()), "integer token ids"),
        (lambda: TokenWindows(["a", "b"] * 10, 4, 2), "integer token ids"),
    ],
    ids=["all-ignored", "float-targets", "batch-size-0", "float-tokens", "strings"],
)
def test_bad_inputs_are_refused_with_the_fix_named(call, named):
    with pytest.raises((ValueError, TypeError), match=named):
        call()
