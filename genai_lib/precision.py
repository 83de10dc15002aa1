"""Mixed precision: which number format a training step computes in, on which device.

- CUDA with bf16 (Ampere and newer): bf16 autocast, no scaler needed.
- CUDA without bf16 (a T4, say): fp16 autocast with a gradient scaler, which
  multiplies the loss before backward so small gradients do not round to zero
  in fp16, and divides them back before the optimizer step.
- CPU and MPS: fp32. bf16 autocast on a CPU is allowed when asked for, but it
  is slower than fp32 on most laptop CPUs, so it is not the default.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def choose_precision(requested: str, device: torch.device) -> str:
    """Resolve ``"auto"`` to ``"bf16"``, ``"fp16"`` or ``"fp32"`` for ``device`` (others pass through)."""
    if requested not in PRECISIONS:
        raise ValueError(f"Unknown precision {requested!r}; use 'auto', 'fp32', 'bf16' or 'fp16'.")
    if requested != "auto":
        return requested
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def autocast(device: torch.device, precision: str):
    """The autocast context for a resolved precision (a no-op for fp32)."""
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """A gradient scaler that scales in fp16 and does nothing otherwise."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")
