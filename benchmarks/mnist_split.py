"""The benchmarks' MNIST split: the 10,000-image test set, every fifth image held out.

The first 5,000 test images are easier than the last 5,000, so a contiguous cut
would make the held-out set unrepresentative; index % 5 == 4 (2,000 images) is
held out and the other 8,000 train.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genai_lib.data import ImageData, read_idx


def mnist_t10k_split(folder: Path) -> ImageData:
    """MNIST t10k from ``folder`` (IDX files, gzipped or not) as 8,000 train / 2,000 held-out images."""
    def first(*names: str) -> Path:
        return next(folder / n for n in names if (folder / n).exists())
    images = read_idx(first("t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte"))
    labels = read_idx(first("t10k-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte"))
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    held = torch.arange(len(x)) % 5 == 4
    return ImageData("mnist-t10k-8k", x[~held], y[~held], x[held], y[held], [str(d) for d in range(10)])
