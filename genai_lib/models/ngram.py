"""Fixed-context language models: a bigram table and Bengio et al.'s (2003) MLP.

Both follow the interface of every language model in the course:
``forward(tokens) -> logits`` with shapes ``(B, T) -> (B, T, vocab_size)``,
where ``logits[b, t]`` scores the token after ``tokens[b, :t + 1]``, and
``block_size`` says how many of the latest tokens the model looks at.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def _check_tokens(tokens: Tensor, vocab_size: int, model: str) -> None:
    if tokens.dim() != 2 or tokens.dtype not in (torch.long, torch.int):
        raise ValueError(
            f"{model} takes a (batch, time) tensor of integer token ids; "
            f"got shape {tuple(tokens.shape)} and dtype {tokens.dtype}."
        )
    if tokens.numel() and (tokens.min() < 0 or tokens.max() >= vocab_size):
        raise ValueError(
            f"Token ids must be in [0, {vocab_size}); got values from "
            f"{tokens.min().item()} to {tokens.max().item()}."
        )


class BigramLM(nn.Module):
    """p(next | current) as one table of logits: row ``a`` holds the scores of every token after ``a``.

    Trained by gradient descent on the cross-entropy, ``softmax(table[a])``
    converges to the count estimate ``count(a, b) / count(a, .)``: the two are
    the same model, reached two ways.
    """

    block_size = 1

    def __init__(self, vocab_size: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.logits = nn.Embedding(vocab_size, vocab_size)
        nn.init.zeros_(self.logits.weight)  # start from the uniform distribution

    def forward(self, tokens: Tensor) -> Tensor:
        _check_tokens(tokens, self.vocab_size, "BigramLM")
        return self.logits(tokens)


class MLPLM(nn.Module):
    """Bengio et al. (2003): embed the last ``context`` tokens, concatenate, one hidden tanh layer.

    ``(B, T)`` tokens -> windows of the ``context`` tokens ending at each
    position ``(B, T, context)`` -> embeddings ``(B, T, context * embed_dim)``
    -> hidden ``(B, T, hidden)`` -> logits ``(B, T, vocab_size)``. Positions
    before the start of the text are filled with an extra "start" token
    (id ``vocab_size``), which has an embedding of its own.
    """

    def __init__(self, vocab_size: int, context: int = 8, embed_dim: int = 24, hidden: int = 256):
        super().__init__()
        if context < 1:
            raise ValueError(f"context must be at least 1; got {context}.")
        self.vocab_size, self.block_size = vocab_size, context
        self.embedding = nn.Embedding(vocab_size + 1, embed_dim)  # + the start token
        self.hidden = nn.Linear(context * embed_dim, hidden)
        self.out = nn.Linear(hidden, vocab_size)

    def forward(self, tokens: Tensor) -> Tensor:
        _check_tokens(tokens, self.vocab_size, "MLPLM")
        B, T = tokens.shape
        # (B, context - 1 + T)
        padded = F.pad(tokens, (self.block_size - 1, 0), value=self.vocab_size)
        windows = padded.unfold(1, self.block_size, 1)  # (B, T, context)
        x = self.embedding(windows).view(B, T, -1)  # (B, T, context * embed)
        return self.out(torch.tanh(self.hidden(x)))
