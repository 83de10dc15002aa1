"""Byte-level byte-pair encoding (BPE), from scratch.

A text is first turned into its UTF-8 bytes, so token ids 0-255 cover every
possible text: nothing is ever "unknown". Training then repeats one step:
find the most frequent pair of adjacent tokens and give it a new id (a
*merge*), until the vocabulary has the size asked for. Encoding replays the
merges in the order they were learned; decoding joins the bytes of each token.

As in GPT-2, the text is first cut into chunks (a word with its leading
space, a number, a run of punctuation, a run of spaces) and merges never cross
a chunk boundary, so tokens stay word-like: " the" can become one token, but
"e. T" cannot.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import torch

# A word (letters, with one leading space), a number, punctuation, underscores, or whitespace.
# Every character matches one of the alternatives, so the chunks always join back into the text.
CHUNK_PATTERN = re.compile(r" ?[^\W\d_]+| ?\d+| ?[^\w\s]+|_+|\s+(?!\S)|\s+")


def split_chunks(text: str) -> list[str]:
    """Cut ``text`` into the chunks that merges stay within. ``"".join(chunks) == text``."""
    return CHUNK_PATTERN.findall(text)


def _merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every non-overlapping occurrence of ``pair`` in ``ids``, left to right, by ``new_id``."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


class BPETokenizer:
    """Byte-level BPE: ids 0-255 are the bytes, and id ``256 + i`` is the i-th merge.

    >>> tok = BPETokenizer.train("low lower lowest " * 50, vocab_size=260)
    >>> tok.decode(tok.encode("slower, ÿ!")) == "slower, ÿ!"   # any text round-trips
    True
    """

    def __init__(self, merges: Sequence[tuple[int, int]]):
        self.merges: list[tuple[int, int]] = [tuple(p) for p in merges]
        self.token_bytes: list[bytes] = [bytes([b]) for b in range(256)]
        for new_id, (a, b) in enumerate(self.merges, start=256):
            if not (0 <= a < new_id and 0 <= b < new_id):
                raise ValueError(
                    f"Merge {new_id - 256} = ({a}, {b}) refers to a token that does not exist yet."
                )
            self.token_bytes.append(self.token_bytes[a] + self.token_bytes[b])
        self._rank = {pair: i for i, pair in enumerate(self.merges)}
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def train(cls, text: str, vocab_size: int) -> BPETokenizer:
        """Learn ``vocab_size - 256`` merges from ``text`` (fewer if no pair occurs twice)."""
        if vocab_size < 256:
            raise ValueError(
                f"A byte-level BPE has at least the 256 byte tokens; vocab_size={vocab_size}."
            )
        # Each distinct chunk is worked on once and weighted by how often it occurs.
        chunk_counts = Counter(split_chunks(text))
        words = [list(chunk.encode("utf-8")) for chunk in chunk_counts]
        counts = list(chunk_counts.values())
        merges: list[tuple[int, int]] = []
        for new_id in range(256, vocab_size):
            pair_counts: Counter[tuple[int, int]] = Counter()
            for ids, n in zip(words, counts):
                for pair in zip(ids, ids[1:]):
                    pair_counts[pair] += n
            if not pair_counts:
                break
            # the most frequent pair; ties go to the smaller ids, so training is deterministic
            best = min(pair_counts, key=lambda p: (-pair_counts[p], p))
            if pair_counts[best] < 2:
                break
            merges.append(best)
            words = [_merge(ids, best, new_id) if len(ids) > 1 else ids for ids in words]
        return cls(merges)

    @property
    def vocab_size(self) -> int:
        return 256 + len(self.merges)

    def _encode_chunk(self, chunk: str) -> list[int]:
        if chunk in self._cache:
            return self._cache[chunk]
        ids = list(chunk.encode("utf-8"))
        while len(ids) > 1:
            # apply the earliest-learned merge present: the order training learned them in
            pair = min(zip(ids, ids[1:]), key=lambda p: self._rank.get(p, len(self._rank)))
            if pair not in self._rank:
                break
            ids = _merge(ids, pair, 256 + self._rank[pair])
        if len(self._cache) < 100_000:
            self._cache[chunk] = ids
        return ids

    def encode(self, text: str) -> list[int]:
        """``text`` -> token ids. Works for any text: unknown characters fall back to their bytes."""
        if not isinstance(text, str):
            raise TypeError(
                f"encode takes a str; got {type(text).__name__}. Encode one text at a time "
                f"(bytes: .decode('utf-8') first)."
            )
        return [i for chunk in split_chunks(text) for i in self._encode_chunk(chunk)]

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Token ids -> text. ``decode(encode(s)) == s`` for every string ``s``.

        A slice of the ids may end in the middle of a multi-byte character;
        the broken character is shown as U+FFFD ("�") rather than raising.
        """
        if isinstance(ids, torch.Tensor):
            if ids.dim() != 1:
                raise ValueError(f"decode takes a 1-D tensor of ids, got shape {tuple(ids.shape)}.")
            ids = ids.tolist()
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(
                f"Token id {bad[0]} is not in [0, {self.vocab_size}), the vocabulary's ids."
            )
        return b"".join(self.token_bytes[i] for i in ids).decode("utf-8", errors="replace")

    def token_str(self, token_id: int) -> str:
        """How one token reads, for display: its bytes as text (broken UTF-8 shown as "�")."""
        if not 0 <= token_id < self.vocab_size:  # a negative id would index from the end
            raise ValueError(
                f"Token id {token_id} is not in [0, {self.vocab_size}), the vocabulary's ids."
            )
        return self.token_bytes[token_id].decode("utf-8", errors="replace")

    def to_dict(self) -> dict[str, object]:
        """A JSON-friendly description, to save next to a model's weights."""
        return {"type": "bpe", "merges": [list(p) for p in self.merges]}

    @classmethod
    def from_dict(cls, state: dict[str, object]) -> BPETokenizer:
        if state.get("type") != "bpe":
            raise ValueError(
                f"Not a saved BPETokenizer: type is {state.get('type')!r}, expected 'bpe'."
            )
        return cls([tuple(p) for p in state["merges"]])  # type: ignore[union-attr]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BPETokenizer) and self.merges == other.merges

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size})"
