"""A recurrent language model: an LSTM reads the tokens one by one and predicts the next.

Same interface as the other language models: ``(B, T) -> (B, T, vocab_size)``.
An LSTM has no fixed context in principle; ``block_size`` is the length it is
trained on, and :func:`genai_lib.sample.generate` keeps that many latest tokens.
"""

from __future__ import annotations

from torch import Tensor, nn

from genai_lib.models.ngram import _check_tokens


class LSTMLM(nn.Module):
    """Embedding -> ``num_layers`` LSTM layers -> a linear layer to logits."""

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 64,
        hidden: int = 256,
        num_layers: int = 1,
        block_size: int = 64,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.vocab_size, self.block_size = vocab_size, block_size
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(
            embed_dim,
            hidden,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.out = nn.Linear(hidden, vocab_size)

    def forward(self, tokens: Tensor) -> Tensor:
        _check_tokens(tokens, self.vocab_size, "LSTMLM")
        states, _ = self.lstm(self.embedding(tokens))  # (B, T, hidden): the state after each token
        return self.out(states)
