"""Two-dimensional toy data for GANs: eight Gaussians on a ring, and how to score samples of it.

The ring is the standard test of mode collapse: eight well-separated modes of
equal weight, so a generator that drops some of them is easy to see and to
count. Points are float32 tensors of shape ``(n, 2)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

N_MODES = 8


def ring_centres(radius: float = 2.0) -> Tensor:
    """The 8 mode centres, evenly spaced on a circle of ``radius``, the first at angle 0: ``(8, 2)``."""
    angles = torch.arange(N_MODES, dtype=torch.float64) * (2 * math.pi / N_MODES)
    return (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


def eight_gaussians(n: int, radius: float = 2.0, std: float = 0.02, seed: int = 0) -> Tensor:
    """``n`` points ``(n, 2)`` from an equal-weight mixture of 8 Gaussians N(centre_k, std² I) on a ring.

    The same ``seed`` gives the same points.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1; got {n}.")
    g = torch.Generator().manual_seed(seed)
    modes = torch.randint(N_MODES, (n,), generator=g)
    return ring_centres(radius)[modes] + std * torch.randn(n, 2, generator=g)


def mode_coverage(
    samples: Tensor, centres: Tensor, std: float, min_share: float = 0.1
) -> dict[str, float | int]:
    """How well ``samples (N, 2)`` cover the mixture with modes at ``centres (K, 2)`` and spread ``std``.

    Each sample is assigned to its nearest centre, and it is *good* when it lies
    within 3 ``std`` of it (for a 2-D Gaussian, 1 - exp(-9/2) = 98.9% of its own
    samples do). Returns a dict:

    - ``"modes_covered"``: how many modes receive good samples at least ``min_share``
      of their fair share, that is at least ``min_share / K`` of all samples
      (1.25% for the default 0.1 and 8 modes; the same rule as
      :func:`genai_lib.metrics.class_coverage`);
    - ``"high_quality"``: the share of samples that are good, in [0, 1];
    - ``"counts"``: the number of good samples at each mode, a list of K ints.
    """
    samples, centres = (
        torch.as_tensor(samples, dtype=torch.float32),
        torch.as_tensor(centres, dtype=torch.float32),
    )
    if samples.dim() != 2 or samples.shape[1] != centres.shape[1]:
        raise ValueError(
            f"samples must have shape (N, {centres.shape[1]}); got {tuple(samples.shape)}."
        )
    if len(samples) == 0:
        raise ValueError("mode_coverage needs at least one sample; got 0.")
    distances = torch.cdist(samples, centres)  # (N, K)
    nearest_distance, nearest = distances.min(dim=1)
    good = nearest_distance <= 3 * std
    counts = torch.bincount(nearest[good], minlength=len(centres))
    n, k = len(samples), len(centres)
    covered = int((counts >= min_share * n / k).sum())
    return {
        "modes_covered": covered,
        "high_quality": good.float().mean().item(),
        "counts": counts.tolist(),
    }
