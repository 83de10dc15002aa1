"""Datasets as tensors and strings, offline first.

- images: :func:`load_digits` (bundled, 8x8), :func:`load_mnist` (MNIST or
  Fashion-MNIST, 28x28, downloaded on request), :func:`read_idx`.
- text: :func:`load_text` (``"pydoc"`` bundled, ``"tinyshakespeare"``
  downloaded on request), :class:`CharTokenizer`, :class:`BPETokenizer`
  (byte-level BPE), :class:`TokenWindows` (training batches of a language model).
- batches: :class:`StepBatches`, the contract the training loop reads data
  through (the batch of step s), and :class:`EpochBatches` (shuffled epochs of tensors).
- downloads: :func:`fetch`, checked by SHA-256 and written atomically; files copied
  in by hand are checked too (:mod:`genai_lib.data.verify`).
- 2-D toys: :func:`eight_gaussians` (a ring of 8 modes, for GANs),
  :func:`ring_centres`, :func:`mode_coverage`.

Where files are looked for and saved: see :mod:`genai_lib.data.sources`.
"""

from genai_lib.data.batches import EpochBatches, StepBatches
from genai_lib.data.bpe import BPETokenizer
from genai_lib.data.download import DownloadError, fetch
from genai_lib.data.images import (
    MNIST_KINDS,
    ImageData,
    binarize,
    load_digits,
    load_mnist,
    mnist_t10k_split,
    read_idx,
)
from genai_lib.data.text import (
    TEXT_NAMES,
    CharTokenizer,
    TokenWindows,
    UnknownCharacterError,
    clean_to_ascii,
    load_text,
    split_train_val,
    tokenizer_from_dict,
)
from genai_lib.data.toy import eight_gaussians, mode_coverage, ring_centres
from genai_lib.data.verify import DataFileError

__all__ = [
    "BPETokenizer",
    "MNIST_KINDS",
    "TEXT_NAMES",
    "CharTokenizer",
    "DataFileError",
    "DownloadError",
    "EpochBatches",
    "ImageData",
    "UnknownCharacterError",
    "binarize",
    "clean_to_ascii",
    "eight_gaussians",
    "fetch",
    "load_digits",
    "load_mnist",
    "mnist_t10k_split",
    "load_text",
    "mode_coverage",
    "read_idx",
    "ring_centres",
    "split_train_val",
    "StepBatches",
    "TokenWindows",
    "tokenizer_from_dict",
]
