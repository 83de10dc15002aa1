"""Text corpora and a character-level tokenizer.

Two corpora:

- ``"pydoc"`` (the default, offline): the English help text that ships with
  every CPython (``pydoc_data.topics``, what ``help("for")`` prints), about
  450,000 characters, cleaned to plain ASCII. It differs a little between
  Python versions, so compare numbers only on the same Python.
- ``"tinyshakespeare"``: Karpathy's 1.1 MB of Shakespeare, downloaded on request.
- ``"stdlib"`` (offline): Python source code, the top-level modules of the
  standard library of the running Python, cleaned to ASCII; the new domain
  that chapter 04 adapts a pydoc-trained model to.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence

import torch

from genai_lib.data import sources
from genai_lib.data.batches import DrawnBatches
from genai_lib.data.download import fetch

TEXT_NAMES = ("pydoc", "tinyshakespeare", "stdlib")
STDLIB_SKIP = {"this.py", "antigravity.py"}  # this.py is ROT13-scrambled prose, not Python


def load_text(name: str = "pydoc", download: bool = False) -> str:
    """Return a whole corpus as one string.

    Args:
        name: one of :data:`TEXT_NAMES`.
        download: for ``"tinyshakespeare"``, fetch it (about 1 MB) if it is not
            in a data folder yet.

    Raises:
        ValueError: unknown name, or the local file is corrupt.
        FileNotFoundError: tinyshakespeare is missing and ``download`` is False.
    """
    if name == "pydoc":
        return _pydoc_text()
    if name == "tinyshakespeare":
        return _tinyshakespeare(download)
    if name == "stdlib":
        return stdlib_source()
    raise ValueError(
        f"Unknown text {name!r}; the known texts are {', '.join(map(repr, TEXT_NAMES))}."
    )


# ---------------------------------------------------------------- pydoc


# Typographic characters -> their plain ASCII spelling. NFKD (below) handles
# accents (e -> e + a combining accent, which is then dropped) and the ellipsis.
_ASCII_EQUIVALENTS = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",  # curly single quotes
        "\u201c": '"',
        "\u201d": '"',  # curly double quotes
        "\u2013": "-",
        "\u2014": "--",  # en dash, em dash
        "\u2212": "-",  # minus sign
        "\u00a0": " ",  # non-breaking space
        "\t": "    ",
    }
)


def clean_to_ascii(text: str) -> str:
    """Make ``text`` plain ASCII, keeping its layout, so a character vocabulary stays small.

    1. Replace typographic quotes, dashes and spaces by their ASCII spelling,
       and decompose the rest (NFKD: "é" -> "e" + accent, "…" -> "...").
    2. Drop what is still not printable ASCII, except newlines.
    3. Strip spaces at line ends, collapse 3+ newlines into one blank line,
       and end with exactly one newline.
    """
    text = unicodedata.normalize("NFKD", text.translate(_ASCII_EQUIVALENTS))
    text = "".join(ch for ch in text if ch == "\n" or " " <= ch <= "~")
    text = re.sub(r" +\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"


def _pydoc_text() -> str:
    from pydoc_data.topics import topics  # {topic name: help text}

    return clean_to_ascii("\n".join(topics[key] for key in sorted(topics)))


# ---------------------------------------------------------------- stdlib


def stdlib_source(max_chars: int = 1_000_000) -> str:
    """The source of the standard library's top-level modules, in name order, cleaned to ASCII.

    Each file starts with a ``# file: NAME.py`` line. The text stops at the
    end of the file that passes ``max_chars``, so it holds whole files.
    Different Python versions ship different sources: compare figures only
    on the same Python.
    """
    import sysconfig
    from pathlib import Path

    folder = Path(sysconfig.get_paths()["stdlib"])
    files = [f for f in sorted(folder.glob("*.py")) if f.name not in STDLIB_SKIP]
    if not files:
        raise FileNotFoundError(
            f"No standard-library sources in {folder}; this Python ships without them."
        )
    parts, total = [], 0
    for f in files:
        part = f"# file: {f.name}\n" + f.read_text(encoding="utf-8", errors="replace")
        parts.append(part)
        total += len(part)
        if total >= max_chars:
            break
    return clean_to_ascii("\n".join(parts))


# ---------------------------------------------------------------- tinyshakespeare


def _tinyshakespeare(download: bool) -> str:
    remote = sources.TINYSHAKESPEARE
    path = sources.find_local("tinyshakespeare", [remote.name])
    if path is None:
        if not download:
            dest = sources.download_folder("tinyshakespeare")
            looked_in = ", ".join(str(p) for p in sources.local_dirs("tinyshakespeare"))
            raise FileNotFoundError(
                f"{remote.name} not found. Looked in: {looked_in}.\n"
                f"To download it ({sources.describe_size(remote.size)}), run:\n"
                f'    genai_lib.data.load_text("tinyshakespeare", download=True)\n'
                f"Or copy it by hand into {dest}."
            )
        dest = sources.download_folder("tinyshakespeare") / remote.name
        path = fetch(list(remote.urls), dest, remote.sha256, what=remote.name)

    # Check the bytes we read, not just the download: a copy placed by hand
    # (or cut short) would otherwise train silently on the wrong text.
    data = path.read_bytes()
    got = hashlib.sha256(data).hexdigest()
    if got != remote.sha256:
        raise ValueError(
            f"{path} is not the expected {remote.name}: it has {len(data):,} bytes "
            f"(expected {remote.size:,}) and SHA-256 {got} (expected {remote.sha256}). "
            f"It is probably truncated or corrupt. Delete it and run "
            f'genai_lib.data.load_text("tinyshakespeare", download=True) to download it again.'
        )
    return data.decode("utf-8")  # decode the bytes, so "\r\n" is never rewritten


# ---------------------------------------------------------------- tokenizer


class UnknownCharacterError(ValueError):
    """The text holds a character that is not in the tokenizer's vocabulary."""

    def __init__(self, message: str, char: str, position: int) -> None:
        super().__init__(message)
        self.char = char
        self.position = position


class CharTokenizer:
    """One token per character: id ``i`` is the character ``chars[i]``.

    >>> tok = CharTokenizer.from_text("hello")
    >>> tok.chars, tok.encode("hole")
    (['e', 'h', 'l', 'o'], [1, 3, 2, 0])
    """

    def __init__(self, chars: Iterable[str]) -> None:
        self.chars: list[str] = list(chars)
        if any(len(c) != 1 for c in self.chars) or len(set(self.chars)) != len(self.chars):
            raise ValueError("A CharTokenizer's vocabulary must be distinct single characters.")
        self._id_of = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """The vocabulary of ``text``: its distinct characters, sorted by code point."""
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        """``text`` -> a list of ``len(text)`` token ids in ``[0, vocab_size)``."""
        if not isinstance(text, str):
            raise TypeError(
                f"encode takes a str; got {type(text).__name__}. Encode one text at a time "
                f"(bytes: .decode('utf-8') first)."
            )
        try:
            return [self._id_of[c] for c in text]
        except KeyError as err:
            raise self._unknown(text, err.args[0]) from None

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Token ids (a list, or a 1-D integer tensor) -> the text."""
        if isinstance(ids, torch.Tensor):
            if ids.dim() != 1:
                raise ValueError(
                    f"decode takes a 1-D tensor of ids, got shape {tuple(ids.shape)}; "
                    f"decode one row at a time, e.g. tok.decode(batch[0])."
                )
            ids = ids.tolist()
        # -1 would silently index from the end
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(
                f"Token id {bad[0]} is not in [0, {self.vocab_size}), the vocabulary's ids."
            )
        return "".join(self.chars[i] for i in ids)

    def _unknown(self, text: str, char: str) -> UnknownCharacterError:
        position = text.index(char)  # encode stops at the first unknown character
        context = text[max(0, position - 20) : position + 20]
        preview = "".join(self.chars[:40])
        more = f" ... ({self.vocab_size} in all)" if self.vocab_size > 40 else ""
        return UnknownCharacterError(
            f"Character {char!r} (U+{ord(char):04X}) at position {position} is not in the "
            f"tokenizer's vocabulary; it appears in {context!r}. A character tokenizer only "
            f"knows the characters of the text it was built from: replace or remove this one "
            f"(for example with genai_lib.data.clean_to_ascii), or build the tokenizer "
            f"from a text that contains it. The vocabulary is {preview!r}{more}.",
            char,
            position,
        )

    def to_dict(self) -> dict[str, object]:
        """A JSON-friendly description, to save next to a model's weights."""
        return {"type": "char", "chars": "".join(self.chars)}

    @classmethod
    def from_dict(cls, state: dict[str, object]) -> CharTokenizer:
        """The inverse of :meth:`to_dict`."""
        if state.get("type") != "char":
            raise ValueError(
                f"Not a saved CharTokenizer: type is {state.get('type')!r}, expected 'char'."
            )
        return cls(str(state["chars"]))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharTokenizer) and self.chars == other.chars

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


def split_train_val(
    tokens: torch.Tensor, val_fraction: float = 0.1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a 1-D token sequence in two: the first part to train on, the end to validate.

    A contiguous split (not a shuffle), so no validation text leaks into
    training through overlapping windows.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}.")
    n_train = int(len(tokens) * (1 - val_fraction))
    if n_train == 0 or n_train == len(tokens):
        raise ValueError(
            f"{len(tokens)} tokens are too few to split with val_fraction={val_fraction}."
        )
    return tokens[:n_train], tokens[n_train:]


def as_token_ids(tokens: object, what: str = "tokens") -> torch.Tensor:
    """``tokens`` as an integer tensor: a list or a numpy array of ids is converted; anything else is refused.

    ``tok.encode(text)`` returns a list, so a list is the most natural thing to pass.
    """
    if not isinstance(tokens, torch.Tensor):
        try:
            tokens = torch.as_tensor(tokens)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(
                f"{what} must be integer token ids (a tensor, or a list or numpy array of ints); "
                f"got {type(tokens).__name__}. For text, use torch.tensor(tok.encode(text))."
            ) from None
    if tokens.is_floating_point() or tokens.is_complex() or tokens.dtype == torch.bool:
        raise ValueError(f"{what} must be integer token ids; got {tokens.dtype}.")
    return tokens


class TokenWindows(DrawnBatches):
    """Random training windows from a 1-D token sequence, as a function of the step.

    ``windows(step) -> (inputs, targets)``, both ``(batch_size, block_size)``,
    where ``targets`` is ``inputs`` shifted one token to the left: the token
    that follows each position. The start offsets of step ``s`` are drawn
    from a generator seeded by ``(seed, s)``, so any step's batch can be
    recomputed; that is what lets :func:`genai_lib.train.fit` resume exactly.
    ``with_parts(k)`` cuts each step's windows into k parts, as every
    :class:`~genai_lib.data.batches.StepBatches` does.
    """

    def __init__(
        self, tokens: torch.Tensor, block_size: int, batch_size: int, seed: int = 0, parts: int = 1
    ):
        super().__init__(batch_size, parts)
        tokens = as_token_ids(tokens)
        if tokens.dim() != 1:
            raise ValueError(
                f"TokenWindows takes a 1-D token sequence; got shape {tuple(tokens.shape)}."
            )
        if len(tokens) < block_size + 1:
            raise ValueError(
                f"{len(tokens)} tokens are too few for windows of block_size={block_size} "
                f"(a window needs block_size + 1 tokens)."
            )
        self.tokens, self.block_size, self.seed = tokens, block_size, seed
        self._offsets = torch.arange(block_size + 1)

    def draw(self, step: int, n: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        return torch.randint(len(self.tokens) - self.block_size, (n,), generator=g)  # window starts

    def take(self, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self.tokens[starts[:, None] + self._offsets]  # (batch, block_size + 1)
        return rows[:, :-1], rows[:, 1:]


def tokenizer_from_dict(state: dict[str, object]):
    """Rebuild a tokenizer saved with ``tokenizer.to_dict()``: a :class:`CharTokenizer` or a BPE one."""
    from genai_lib.data.bpe import BPETokenizer

    kinds = {"char": CharTokenizer, "bpe": BPETokenizer}
    kind = state.get("type")
    if kind not in kinds:
        raise ValueError(f"Unknown tokenizer type {kind!r}; known: {sorted(kinds)}.")
    return kinds[kind].from_dict(state)
