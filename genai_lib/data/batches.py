"""Training batches as a function of the step: the one contract the training loop reads data through.

``fit`` never iterates over a data loader. It asks for "the batch of step s",
so a resumed run can ask for exactly the batches the uninterrupted run would
have seen, and nothing about the data has to be saved in a checkpoint.

To scale up, one optimizer step may be split into k *parts*: micro-batches
whose gradients are added up (gradient accumulation), or the shares of the
processes of a data-parallel run. ``batches.with_parts(k)`` returns the same
batches, each step's drawn k times larger and handed out in k parts, so that
index ``s * k + j`` is part j of step s, and the k parts together are the rows
one batch of ``k * batch_size`` would hold: the update does not depend on k.

:class:`StepBatches` is that contract, as a ``typing.Protocol``. :class:`DrawnBatches`
implements the part-cutting once; a data source only says which rows a step
draws (:meth:`~DrawnBatches.draw`) and how to gather them (:meth:`~DrawnBatches.take`).
The two sources of the course: :class:`EpochBatches` (shuffled epochs of
tensors held in memory) and :class:`~genai_lib.data.TokenWindows` (random
windows of a token sequence).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

Batch = Any  # a tensor, or a tuple/list/dict of tensors


@runtime_checkable
class StepBatches(Protocol):
    """What :func:`genai_lib.train.fit` reads data through.

    - ``batches(index)``: the batch at ``index`` (the step, when there is one part per step);
    - ``batches.batch_size``: rows per part;
    - ``batches.with_parts(k)``: the same batches, each step's cut into k parts of ``batch_size``.
    """

    batch_size: int

    def __call__(self, index: int) -> Batch: ...

    def with_parts(self, parts: int) -> StepBatches: ...


class DrawnBatches:
    """A :class:`StepBatches` from two methods: which rows step s draws, and how to gather rows.

    Subclasses implement ``draw(step, n) -> index tensor (n,)``, a function of
    the step alone, and ``take(rows) -> batch``.
    """

    def __init__(self, batch_size: int, parts: int = 1):
        if batch_size < 1 or parts < 1:
            raise ValueError(
                f"batch_size and parts must be at least 1; got {batch_size} and {parts}."
            )
        self.batch_size, self.parts = batch_size, parts

    def draw(self, step: int, n: int) -> Tensor:
        raise NotImplementedError

    def take(self, rows: Tensor) -> Batch:
        raise NotImplementedError

    def with_parts(self, parts: int) -> DrawnBatches:
        """The same batches, each step's drawn ``parts`` times larger and handed out in parts."""
        if parts < 1:
            raise ValueError(f"parts must be at least 1; got {parts}.")
        other = copy.copy(self)
        other.parts = parts
        return other

    def __call__(self, index: int) -> Batch:
        step, part = divmod(index, self.parts)
        rows = self.draw(step, self.batch_size * self.parts)
        return self.take(rows[part * self.batch_size : (part + 1) * self.batch_size])


def _as_tensors(data: Any) -> Tensor | list[Tensor]:
    """``data`` as one tensor or a list of column tensors; numpy arrays are converted.

    What cannot be batched is refused with what to pass instead: a dataset
    object, a list of one tensor per example, anything that is not a tensor.
    """
    if isinstance(data, np.ndarray):
        return torch.as_tensor(data)
    if isinstance(data, Tensor):
        return data
    if hasattr(data, "train_images"):  # an ImageData
        raise TypeError(
            f"fit takes tensors, not a {type(data).__name__}: pass data.train_images, or "
            f"(data.train_images, data.train_labels) for images with labels."
        )
    if not isinstance(data, (tuple, list)) or not data:
        raise TypeError(
            f"Data must be a tensor or a tuple of tensors (images and labels, say); got "
            f"{type(data).__name__}."
        )
    columns = [torch.as_tensor(c) if isinstance(c, np.ndarray) else c for c in data]
    odd = [type(c).__name__ for c in columns if not isinstance(c, Tensor)]
    if odd:
        raise TypeError(
            f"Data must be a tensor or a tuple of tensors; this {type(data).__name__} holds a "
            f"{odd[0]}. Convert it with torch.tensor(...), or leave it out of the data."
        )
    if len(columns) > 4 and len({c.shape for c in columns}) == 1:
        # a column per example rather than per field: 40 images give 40 "columns" of one row
        raise TypeError(
            f"Data is a {type(data).__name__} of {len(columns)} Tensors of the same shape: one "
            f"per example? Batch them into one tensor with torch.stack(examples) first. (A tuple "
            f"holds columns, such as (images, labels), each with one row per example.)"
        )
    return columns


class EpochBatches(DrawnBatches):
    """Shuffled mini-batches of in-memory tensors, as a function of the step.

    Epoch ``e`` uses a permutation seeded by ``(seed, e)``, so the batch at any
    step can be recomputed. The last incomplete batch of an epoch is dropped,
    so every batch has ``batch_size`` rows. ``tensors``: one tensor, or a tuple
    of tensors with the same first dimension (images and labels); a batch has
    the same form.
    """

    def __init__(
        self, tensors: Tensor | Sequence[Tensor], batch_size: int, seed: int = 0, parts: int = 1
    ):
        super().__init__(batch_size, parts)
        tensors = _as_tensors(tensors)
        self.single = isinstance(tensors, Tensor)
        self.tensors = [tensors] if self.single else list(tensors)
        n = len(self.tensors[0])
        if any(len(t) != n for t in self.tensors):
            raise ValueError(
                f"All data tensors need the same length; got {[len(t) for t in self.tensors]}."
            )
        if n < batch_size * parts:
            whole = (
                f"batch_size={batch_size}"
                if parts == 1
                else f"One step's batch ({parts} parts of batch_size={batch_size})"
            )
            raise ValueError(f"{whole} is larger than the dataset ({n} rows).")
        self.n, self.seed = n, seed
        self._epoch, self._perm = -1, None

    def with_parts(self, parts: int) -> EpochBatches:
        return EpochBatches(
            self.tensors[0] if self.single else self.tensors, self.batch_size, self.seed, parts
        )

    def to(self, device: torch.device) -> EpochBatches:
        self.tensors = [t.to(device) for t in self.tensors]
        return self

    @property
    def per_epoch(self) -> int:
        """Optimizer steps per epoch."""
        return self.n // (self.batch_size * self.parts)

    def draw(self, step: int, n: int) -> Tensor:
        epoch, i = divmod(step, self.per_epoch)
        if epoch != self._epoch:  # one permutation per epoch, kept while the epoch lasts
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(self.n, generator=g).to(self.tensors[0].device)
            self._epoch = epoch
        return self._perm[i * n : (i + 1) * n]

    def take(self, rows: Tensor) -> Batch:
        taken = [t[rows] for t in self.tensors]
        return taken[0] if self.single else tuple(taken)
