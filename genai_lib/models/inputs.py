"""Checks on what a network is given, shared by the networks that take images."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def check_dtype(name: str, x: Tensor, module: nn.Module) -> None:
    """Refuse an input whose dtype is not the weights': torch's own error names neither the input nor the fix.

    Integer and bool inputs are refused always (raw 0..255 images are uint8);
    another float dtype only outside autocast, which casts it itself. The check
    reads dtypes, never values, so it costs nothing on a GPU.
    """
    weights = next(module.parameters(), None)
    if weights is None or x.dtype == weights.dtype:
        return
    if not x.is_floating_point():
        raise ValueError(
            f"{name} takes float inputs; got {x.dtype}. Images stored as integers are usually "
            f"0..255: divide them by 255 with x.float() / 255 (for 0/1 images, x.float())."
        )
    if not torch.is_autocast_enabled(x.device.type):
        fix = "x.float()" if weights.dtype == torch.float32 else f"x.to({weights.dtype})"
        raise ValueError(
            f"{name}'s weights are {weights.dtype} but its input is {x.dtype}: use {fix}. "
            f"(numpy arrays are float64 by default, and torch.from_numpy keeps that.)"
        )


def class_labels(
    labels: Tensor | int | list[int] | None, n: int, device: torch.device
) -> Tensor | None:
    """``labels`` for ``n`` samples as an int64 tensor ``(n,)`` on ``device``: an int means n of that class.

    A list, a numpy array or a tensor of ``n`` integers is taken as is; ``None`` stays ``None``.
    """
    if labels is None:
        return None
    labels = torch.as_tensor(labels)
    if labels.dim() == 0:
        labels = labels.expand(n)
    if labels.shape != (n,) or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(
            f"labels must be an int, or integers of shape ({n},) (one per sample); "
            f"got {labels.dtype} of shape {tuple(labels.shape)}."
        )
    return labels.long().to(device)
