"""Datasets as tensors and strings, offline first.

- images: :func:`load_digits` (bundled, 8x8), :func:`load_mnist` (MNIST or
  Fashion-MNIST, 28x28, downloaded on request), :func:`read_idx`.
- text: :func:`load_text` (``"pydoc"`` bundled, ``"tinyshakespeare"``
  downloaded on request), :class:`CharTokenizer`.
- downloads: :func:`fetch`, checked by SHA-256 and written atomically.

Where files are looked for and saved: see :mod:`genai_lib.data.sources`.
"""
from genai_lib.data.download import DownloadError, fetch
from genai_lib.data.images import MNIST_KINDS, ImageData, binarize, load_digits, load_mnist, read_idx
from genai_lib.data.text import (
    TEXT_NAMES,
    CharTokenizer,
    UnknownCharacterError,
    clean_to_ascii,
    load_text,
    split_train_val,
)

__all__ = [
    "MNIST_KINDS",
    "TEXT_NAMES",
    "CharTokenizer",
    "DownloadError",
    "ImageData",
    "UnknownCharacterError",
    "binarize",
    "clean_to_ascii",
    "fetch",
    "load_digits",
    "load_mnist",
    "load_text",
    "read_idx",
    "split_train_val",
]
