"""LoRA (Hu et al., 2021): fine-tune a frozen weight matrix through a low-rank update.

A pretrained linear layer computes ``y = W x + b`` with ``W`` of shape
``(out, in)``. LoRA keeps ``W`` frozen and learns two small matrices,
``A`` ``(r, in)`` and ``B`` ``(out, r)``, with ``r`` much smaller than both:

    y = W x + b + (alpha / r) * B A x

``B`` starts at zero, so training starts from exactly the pretrained model.
Only ``r * (in + out)`` numbers per layer are trained instead of
``in * out``. After training, ``B A`` can be added into ``W`` (*merge*): the
model is then as fast as the original, with no extra layer at all.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable

import torch
from torch import Tensor, nn

DEFAULT_TARGETS = ("attn.qkv", "attn.proj", "mlp.up", "mlp.proj")  # the GPT's projections


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update ``(alpha / r) B A``."""

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16.0, dropout: float = 0.0):
        super().__init__()
        if r < 1:
            raise ValueError(f"LoRA rank r must be at least 1; got {r}.")
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.r, self.alpha, self.scaling = r, alpha, alpha / r
        # the base's device and dtype: a float64 or bfloat16 model gets adapters it can multiply with
        like = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, **like))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, **like))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as nn.Linear initialises its weight
        self.dropout = nn.Dropout(dropout)
        self.merged = False

    def delta_weight(self) -> Tensor:
        """The update LoRA adds to the base weight: ``(alpha / r) B A``, shape ``(out, in)``."""
        return self.scaling * (self.lora_B @ self.lora_A)

    def forward(self, x: Tensor) -> Tensor:
        y = self.base(x)
        if self.merged:  # the update is inside base.weight already
            return y
        return y + self.scaling * (self.dropout(x) @ self.lora_A.T @ self.lora_B.T)

    @torch.no_grad()
    def merge(self) -> None:
        """Add the update into the base weight, so the layer is one plain matrix product."""
        if not self.merged:
            self.base.weight += self.delta_weight()
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take the update out of the base weight again (to keep training the adapter)."""
        if self.merged:
            self.base.weight -= self.delta_weight()
            self.merged = False

    # Whether the update is inside base.weight is part of the layer's state: a merged layer's
    # state_dict holds W + (alpha / r) B A, and loading it into an unmerged layer would add B A twice.
    def get_extra_state(self) -> Tensor:
        return torch.tensor(self.merged)

    def set_extra_state(self, state: Tensor) -> None:
        self.merged = bool(state)

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}, merged={self.merged}"


def inject_lora(
    model: nn.Module,
    r: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.0,
    targets: Iterable[str] = DEFAULT_TARGETS,
) -> list[LoRALinear]:
    """Freeze ``model`` and wrap every ``nn.Linear`` whose name ends with one of ``targets`` in a :class:`LoRALinear`.

    After this only the LoRA matrices are trainable. Returns the new layers.
    Raises ``ValueError``, and leaves the model as it was, if no layer
    matches (a misspelt target would otherwise train nothing) or if the
    model has LoRA layers already (a re-run cell).
    """
    targets = tuple(targets)
    existing = lora_layers(model)
    if existing:
        raise ValueError(
            f"This model already has LoRA adapters ({len(existing)} layers): inject once, or start "
            f"again from the base model (genai_lib.finetune.prepare copies it)."
        )
    matches = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and name.endswith(targets)
    ]
    if not matches:
        raise ValueError(f"No nn.Linear in the model matches the LoRA targets {targets}.")
    for p in model.parameters():  # only now: a refused call must not leave the model frozen
        p.requires_grad_(False)
    layers = []
    for name, module in matches:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        layer = LoRALinear(module, r=r, alpha=alpha, dropout=dropout)
        setattr(parent, child, layer)
        layers.append(layer)
    return layers


def lora_layers(model: nn.Module) -> list[LoRALinear]:
    return [m for m in model.modules() if isinstance(m, LoRALinear)]


def merge_lora(model: nn.Module) -> None:
    """Merge every LoRA layer of ``model`` (see :meth:`LoRALinear.merge`)."""
    for layer in lora_layers(model):
        layer.merge()


def unmerge_lora(model: nn.Module) -> None:
    """Undo :func:`merge_lora`."""
    for layer in lora_layers(model):
        layer.unmerge()


def without_lora(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every LoRA layer merged and replaced by its plain ``nn.Linear``.

    The copy computes what the model computes, and has the base model's
    layout, so it loads into the base class. ``model`` itself is untouched.
    """
    plain = copy.deepcopy(model)
    for name, module in list(plain.named_modules()):
        if isinstance(module, LoRALinear):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            parent = plain.get_submodule(parent_name) if parent_name else plain
            setattr(parent, child, module.base)
    return plain


def trainable_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts; tied weights count once."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
