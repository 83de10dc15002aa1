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
  :func:`muon_with_adamw` splits a model's parameters accordingly.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn


def lr_factor(step: int, *, total_steps: int, warmup_steps: int = 0,
              min_lr_ratio: float = 0.1, schedule: str = "cosine") -> float:
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
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def adamw(params: Any, lr: float, betas: tuple[float, float] = (0.9, 0.999), weight_decay: float = 0.0,
          device: torch.device | None = None) -> torch.optim.AdamW:
    """AdamW, with the fused implementation on CPUs and CUDA GPUs (one kernel for all parameters).

    Same update as the default implementation; on a laptop CPU it takes about
    0.5 ms per step for a 1M-parameter model instead of about 2 ms.
    """
    fused = device is not None and device.type in ("cpu", "cuda")
    return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay, fused=fused or None)


# Coefficients of the quintic iteration X <- aX + b(XX^T)X + c(XX^T)^2 X, chosen (Jordan et al.)
# to push all singular values of X towards 1 quickly; they land in about [0.7, 1.2], which is enough.
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def orthogonalize(matrix: Tensor, steps: int = 5) -> Tensor:
    """An approximately semi-orthogonal matrix with the singular vectors of ``matrix``.

    ``matrix``: ``(m, n)``, or a stack ``(k, m, n)`` orthogonalised one by one (in one batched pass).
    """
    a, b, c = NS_COEFFICIENTS
    x = matrix / (matrix.norm(dim=(-2, -1), keepdim=True) + 1e-7)  # singular values now at most 1
    transposed = x.shape[-2] > x.shape[-1]
    if transposed:  # work with the smaller Gram matrix
        x = x.mT
    for _ in range(steps):
        gram = x @ x.mT
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.mT if transposed else x


class MuonWithAdamW(torch.optim.Optimizer):
    """Muon for the param groups marked ``muon=True``, AdamW for the others, in one optimizer.

    Muon groups take ``lr`` (about 0.02), ``momentum`` (0.95, Nesterov) and
    ``weight_decay``; AdamW groups take ``lr``, ``betas``, ``eps`` and
    ``weight_decay``. A learning-rate scheduler scales every group alike.
    """

    def __init__(self, param_groups: list[dict]):
        defaults = dict(lr=1e-3, momentum=0.95, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0, muon=False)
        super().__init__(param_groups, defaults)

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if group["weight_decay"]:
                for p in params:
                    p.mul_(1 - group["lr"] * group["weight_decay"])  # decoupled weight decay
            if group["muon"]:
                self._muon_update(params, group)
            else:
                for p in params:
                    self._adamw_update(p, group)

    def _muon_update(self, params: list[Tensor], group: dict) -> None:
        # Matrices of the same shape are orthogonalised together, as one batch: far fewer small products.
        by_shape: dict[tuple[int, ...], list[Tensor]] = {}
        for p in params:
            by_shape.setdefault(tuple(p.shape), []).append(p)
        for shape, same in by_shape.items():
            directions = []
            for p in same:
                buf = self.state[p].setdefault("momentum", torch.zeros_like(p))
                buf.mul_(group["momentum"]).add_(p.grad)
                directions.append(p.grad.add(buf, alpha=group["momentum"]))  # Nesterov: one momentum step ahead
            updates = orthogonalize(torch.stack(directions))
            # an orthogonal (m x n) matrix has entries of size ~1/sqrt(n); rescale tall matrices to match
            scale = max(1.0, shape[0] / shape[1]) ** 0.5
            for p, update in zip(same, updates):
                p.add_(update, alpha=-group["lr"] * scale)

    def _adamw_update(self, p: Tensor, group: dict) -> None:
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        state["step"] += 1
        beta1, beta2 = group["betas"]
        state["exp_avg"].lerp_(p.grad, 1 - beta1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
        bias1, bias2 = 1 - beta1 ** state["step"], 1 - beta2 ** state["step"]
        denom = (state["exp_avg_sq"] / bias2).sqrt_().add_(group["eps"])
        p.addcdiv_(state["exp_avg"], denom, value=-group["lr"] / bias1)


def muon_with_adamw(model: nn.Module, muon_lr: float = 0.02, adamw_lr: float = 3e-3,
                    betas: tuple[float, float] = (0.9, 0.95), weight_decay: float = 0.0) -> MuonWithAdamW:
    """One optimizer for a language model: Muon on the 2-D weights inside its blocks, AdamW elsewhere.

    "Inside its blocks" means parameters whose name contains ``blocks.``
    (as in :class:`genai_lib.models.GPT`); the embeddings and the tied output
    layer, as well as every 1-D parameter, go to AdamW.
    """
    muon, other = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (muon if p.dim() == 2 and "blocks." in name else other).append(p)
    if not muon:
        raise ValueError("muon_with_adamw found no 2-D weights under 'blocks.'; use AdamW for this model.")
    return MuonWithAdamW([
        {"params": muon, "lr": muon_lr, "muon": True, "weight_decay": weight_decay},
        {"params": other, "lr": adamw_lr, "betas": betas, "muon": False, "weight_decay": 0.0},
    ])
