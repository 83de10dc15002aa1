"""Pictures: image grids and training curves.

Each function returns the matplotlib ``Figure`` it drew, so a notebook shows it
and a script can save it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import Tensor

from genai_lib.train import History


def make_grid(images: Tensor, nrow: int = 8, padding: int = 1, pad_value: float = 1.0) -> Tensor:
    """Tile a batch of images ``(N, C, H, W)`` into one image ``(C, H', W')``.

    Missing cells of the last row are filled with ``pad_value``, like the padding.
    """
    if images.dim() == 3:  # (N, H, W): one channel
        images = images.unsqueeze(1)
    if images.dim() != 4:
        raise ValueError(
            f"make_grid expects images of shape (N, C, H, W); got {tuple(images.shape)}."
        )
    n, c, h, w = images.shape
    ncol = min(nrow, n)
    nrows = -(-n // ncol)
    grid = torch.full(
        (c, nrows * (h + padding) + padding, ncol * (w + padding) + padding), float(pad_value)
    )
    for i, img in enumerate(images.detach().float().cpu()):
        r, col = divmod(i, ncol)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top : top + h, left : left + w] = img
    return grid


def range_warning(
    images: Tensor, value_range: tuple[float, float] = (0.0, 1.0), who: str = "show_images"
) -> str | None:
    """Why ``images`` do not look like values in ``value_range``, or ``None`` when they do.

    Two mistakes are named: 0..255 images (far above the range), and tanh
    outputs in [-1, 1] drawn as [0, 1] (down to about one range's width below
    it, and nothing above it). Values a little outside on both sides, such as noisy
    diffusion frames, are normal: they are clamped without a word.
    """
    values = images.detach().float()
    lo, hi = value_range
    span = hi - lo
    if not values.numel() or not span > 0:
        return None
    a, b = values.min().item(), values.max().item()
    seen = f"{who}: values range over [{a:.3g}, {b:.3g}] but value_range is ({lo:g}, {hi:g})"
    if b > hi + 4 * span:
        return f"{seen}. 0..255 images? Divide them by 255 (or pass value_range=(0, 255))."
    # tanh outputs reach about -1 (a digit's background); noise rarely lands in that narrow band
    if lo - 1.01 * span <= a <= lo - 0.9 * span and b <= hi + 0.01 * span:
        return (
            f"{seen}. Tanh outputs in [{lo - span:g}, {hi:g}]? Pass value_range=({lo - span:g}, "
            f"{hi:g}), or map them with (x + 1) / 2."
        )
    return None


def show_images(
    images: Tensor,
    nrow: int = 8,
    title: str | None = None,
    size: float = 0.6,
    value_range: tuple[float, float] = (0.0, 1.0),
    ax: plt.Axes | None = None,
) -> Figure:
    """Show a batch of images ``(N, C, H, W)`` as a grid, ``nrow`` per row.

    ``value_range`` is the range of pixel values: ``(0, 1)`` for probabilities
    of ink, ``(-1, 1)`` for tanh outputs. Grey images are drawn as dark ink on
    white (the low end of the range is white), separated by thin grey lines.
    Values outside the range are clamped; a warning says so when they look
    like another range (0..255 images, tanh outputs), see :func:`range_warning`.
    """
    message = range_warning(images, value_range)
    if message:
        warnings.warn(message, stacklevel=2)
    lo, hi = value_range
    scaled = ((images.detach().float().cpu() - lo) / (hi - lo)).clamp(0, 1)
    grid = make_grid(scaled, nrow=nrow, pad_value=0.25)
    if ax is None:
        rows, cols = grid.shape[1] / images.shape[-2], grid.shape[2] / images.shape[-1]
        fig, ax = plt.subplots(figsize=(max(2.0, cols * size), max(1.0, rows * size)))
    else:
        fig = ax.figure
    if grid.shape[0] == 1:
        ax.imshow(grid[0], cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(grid.permute(1, 2, 0), interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


def plot_history(
    history: History,
    keys: Sequence[str] = ("loss",),
    val_keys: Sequence[str] = (),
    ylabel: str = "loss",
    title: str | None = None,
    logy: bool = False,
    label: str = "",
    ax: plt.Axes | None = None,
) -> Figure:
    """Training curves from a :class:`~genai_lib.train.History`.

    ``keys`` are training metrics (solid lines), ``val_keys`` evaluation
    metrics (markers). Label the axis with its unit: ``ylabel="nats per image"``;
    ``label`` prefixes the legend entries (handy when several runs share axes).
    """
    prefix = f"{label}, " if label else ""
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.5))
    else:
        fig = ax.figure
    for key in keys:
        steps, values = history.get(key, "train")
        ax.plot(steps, values, label=f"{prefix}train {key}")
    for key in val_keys:
        steps, values = history.get(key, "val")
        ax.plot(steps, values, "o-", label=f"{prefix}validation {key}")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def show_captioned(
    images: Tensor,
    captions: Sequence[str],
    ncol: int = 6,
    size: float = 1.5,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> Figure:
    """Images ``(N, C, H, W)`` each with its caption underneath, ``ncol`` per row (grey as dark ink on white)."""
    if len(captions) != len(images):
        raise ValueError(f"One caption per image: {len(images)} images, {len(captions)} captions.")
    message = range_warning(images, value_range)
    if message:
        warnings.warn(message, stacklevel=2)
    lo, hi = value_range
    scaled = ((images.detach().float().cpu() - lo) / (hi - lo)).clamp(0, 1)
    nrow = -(-len(images) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(ncol * size, nrow * (size + 0.35)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption in zip(axes.flat, scaled, captions):
        if image.shape[0] == 1:
            ax.imshow(image[0], cmap="gray_r", vmin=0, vmax=1)
        else:
            ax.imshow(image.permute(1, 2, 0))
        ax.set_title(caption, fontsize=8, wrap=True)
    fig.tight_layout()
    return fig
