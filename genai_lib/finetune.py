"""Four ways to adapt a pretrained GPT to new data, set up so that each trains exactly what it should.

- ``"scratch"``: a new GPT of the same shape, randomly initialised (the baseline);
- ``"full"``:    every weight of the pretrained model;
- ``"frozen"``:  only the last ``frozen_blocks`` blocks, the final norm and the token
  embedding (which is also the output layer: the two are tied);
- ``"lora"``:    rank-r adapters on the four projections of every block
  (:mod:`genai_lib.models.lora`); every pretrained weight frozen.

:func:`prepare` returns a *copy*: the pretrained model is never changed, so one
base serves every method. The training itself is the course's usual loop
(:func:`genai_lib.lm.train_lm` or :func:`genai_lib.train.fit`), which hands the
optimizer only the parameters with ``requires_grad``.
"""

from __future__ import annotations

import copy

from torch import nn

from genai_lib.models.gpt import GPT
from genai_lib.models.lora import inject_lora

METHODS = ("scratch", "full", "frozen", "lora")


def freeze_all_but(model: nn.Module, trainable: list[nn.Module]) -> None:
    """Set ``requires_grad`` so that only the parameters of the ``trainable`` modules train."""
    for p in model.parameters():
        p.requires_grad_(False)
    for module in trainable:
        for p in module.parameters():
            p.requires_grad_(True)


def prepare(
    base: GPT,
    method: str,
    *,
    lora_r: int = 4,
    lora_alpha: float = 8.0,
    lora_dropout: float = 0.0,
    frozen_blocks: int = 1,
) -> GPT:
    """A copy of ``base`` set up for ``method`` (one of :data:`METHODS`), in train mode."""
    if method not in METHODS:
        raise ValueError(f"Unknown fine-tuning method {method!r}; choose one of {METHODS}.")
    if method == "scratch":
        return GPT(base.config).to(base.token_embedding.weight.device).train()
    model = copy.deepcopy(base)
    if method == "frozen":
        if not 1 <= frozen_blocks <= len(model.blocks):
            raise ValueError(
                f"frozen_blocks (the blocks left trainable) must be 1 to {len(model.blocks)}; "
                f"got {frozen_blocks}."
            )
        freeze_all_but(model, [*model.blocks[-frozen_blocks:], model.norm, model.token_embedding])
    elif method == "lora":
        inject_lora(model, r=lora_r, alpha=lora_alpha, dropout=lora_dropout)
    else:
        freeze_all_but(model, [model])
    return model.train()


def training_state_mb(model: nn.Module, optimizer_slots: int = 2) -> float:
    """Memory for the weights, their gradients and the optimizer's state, in MiB (activations not included).

    Every parameter is stored once; each trainable one also needs a gradient
    and ``optimizer_slots`` tensors of its size (AdamW keeps two: the running
    mean and the running mean of squares). This is the part of the memory that
    fine-tuning methods change; the activations depend on the batch instead.
    """
    total = 0
    for p in model.parameters():  # tied weights are yielded once
        total += p.numel() * p.element_size() * (1 + (1 + optimizer_slots) * p.requires_grad)
    return total / 2**20
