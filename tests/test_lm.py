"""genai_lib.lm's baselines: the entropy of token frequencies, and the unigram floor it gives held-out text.

Everything here is exact arithmetic on small tensors (float64 inside the
library), so the tolerances are rounding-level: 1e-9 bits.
"""

from __future__ import annotations

import math

import torch

from genai_lib.lm import bits, unigram_entropy_bits


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
