"""Optimizers and their learning-rate schedule.

- :func:`adamw` with :func:`decay_groups`: the course's default optimizer,
  with weight decay on the weight matrices only.
- :func:`lr_factor`: linear warmup, then a cosine decay (or a constant rate).
- Muon (Jordan et al., 2024): momentum, then orthogonalise the update of each
  weight matrix. Adam scales each parameter's step by its own gradient
  history; Muon treats a weight matrix as a whole. It takes the momentum of
  the gradient, ``M``, and replaces it by the nearest semi-orthogonal matrix
  (``U V^T`` for ``M = U S V^T``), so that every direction of the update gets
  the same size, the rare directions as much as the dominant ones. That is
  what makes it learn faster per step on the hidden matrices of a
  Transformer. The orthogonalisation is computed with a few Newton-Schulz
  iterations (matrix products only, no SVD). Muon is for 2-D hidden weight
  matrices; embeddings, the output layer, biases and norm gains keep AdamW:
  :func:`muon_with_adamw` splits a model's parameters between PyTorch's
  ``torch.optim.Muon`` and AdamW.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


def lr_factor(
    step: int,
    *,
    total_steps: int,
    warmup_steps: int = 0,
    min_lr_ratio: float = 0.1,
    schedule: str = "cosine",
) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based).

    Linear warmup over ``warmup_steps``, then a cosine decay that reaches
    ``min_lr_ratio`` at ``total_steps`` (``schedule="cosine"``), or a constant
    rate after warmup (``schedule="constant"``).
    """
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    if schedule == "constant":
        return 1.0
    if schedule != "cosine":
        raise ValueError(f"Unknown schedule {schedule!r}; use 'cosine' or 'constant'.")
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))  # 1 -> 0
    return min_lr_ratio + (1.0 - min_lr_ratio) * cosine


def decay_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups: weight decay on matrices (linear, conv, embedding weights) only.

    Biases and normalisation gains are left undecayed: shrinking them towards
    zero does not make the function simpler, it only shifts or rescales it.
    Tied weights appear once, as ``model.parameters()`` lists them once.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def adamw(
    params: Any,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    weight_decay: float = 0.0,
    device: torch.device | None = None,
) -> torch.optim.AdamW:
    """AdamW, with the fused implementation on CPUs and CUDA GPUs (one kernel for all parameters).

    Same update as the default implementation; on a laptop CPU it takes about
    0.5 ms per step for a 1M-parameter model instead of about 2 ms.
    """
    fused = device is not None and device.type in ("cpu", "cuda")
    return torch.optim.AdamW(
        params, lr=lr, betas=betas, weight_decay=weight_decay, fused=fused or None
    )


def muon_with_adamw(
    model: nn.Module,
    muon_lr: float = 0.02,
    adamw_lr: float = 3e-3,
    betas: tuple[float, float] = (0.9, 0.95),
    weight_decay: float = 0.0,
    ns_steps: int = 5,
) -> list[torch.optim.Optimizer]:
    """Two optimizers for a language model: Muon on the 2-D weights inside its blocks, AdamW elsewhere.

    "Inside its blocks" means parameters whose name contains ``blocks.``
    (as in :class:`genai_lib.models.GPT`); the embeddings and the tied output
    layer, as well as every 1-D parameter, go to AdamW (without weight decay).
    Muon is PyTorch's own ``torch.optim.Muon`` (Nesterov momentum 0.95, five
    Newton-Schulz steps by default (``ns_steps``), its learning rate scaled by
    sqrt(max(1, rows / cols))).
    Give both to an :class:`~genai_lib.train.Objective` (or ``train_lm(optimizer=...)``):
    the loop steps, clips and schedules them together.
    """
    muon, other = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (muon if p.dim() == 2 and "blocks." in name else other).append(p)
    if not muon:
        raise ValueError(
            "muon_with_adamw found no 2-D weights under 'blocks.'; use AdamW for this model."
        )
    device = next(model.parameters()).device
    return [
        torch.optim.Muon(
            muon,
            lr=muon_lr,
            momentum=0.95,
            nesterov=True,
            weight_decay=weight_decay,
            ns_steps=ns_steps,
        ),
        adamw(other, lr=adamw_lr, betas=betas, weight_decay=0.0, device=device),
    ]
