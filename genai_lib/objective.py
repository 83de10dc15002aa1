"""An objective: one thing to minimise, as a module, and one optimizer update of it.

An :class:`Objective` is an ``nn.Module`` whose ``forward(batch)`` returns the
loss. That is what makes data parallelism and ``torch.compile`` right for
every loss, whatever it calls: the loop wraps the *objective* in
DistributedDataParallel and ``torch.compile``, so a VAE loss that calls
``model.encode`` and ``model.decode``, or a GAN loss that calls two networks,
runs inside the wrapper as a whole. (Wrapping the model alone covers only
calls to ``model(...)``; a loss that calls ``model.encode`` would leave each
process training its own copy, silently.)

:class:`ObjectiveStep` is one optimizer update of one objective, from the
micro-batches of a step:

    zero the gradients -> for each micro-batch: forward under autocast,
    backward (scaled in fp16; DDP averages over processes in the last one)
    -> unscale, clip the gradient norm -> optimizer step(s) -> schedule step(s)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import torch
from torch import Tensor, nn

from genai_lib import distributed
from genai_lib.precision import autocast

Batch = Any  # a tensor, or a tuple/list/dict of tensors
LossOutput = Tensor | dict[str, Tensor]
LossFn = Callable[[Batch], LossOutput]


class Objective(nn.Module):
    """One thing to minimise: ``model``'s parameters, updated by ``optimizer``, to lower ``loss_fn``.

    ``loss_fn(batch)`` returns a scalar loss, or a dict with a ``"loss"`` entry
    and any other scalars to log (``{"loss": ..., "kl": ..., "recon": ...}``).
    Calling the objective calls ``loss_fn``; a subclass may override
    :meth:`forward` instead of passing ``loss_fn``.

    ``optimizer``: one optimizer, a list of them (Muon for the matrices and
    AdamW for the rest, say), or ``None`` for AdamW with the learning rate
    and weight decay given to :func:`~genai_lib.train.fit`. ``every=k`` steps
    this objective only on every k-th step (the generator of a WGAN, which
    steps once after five critic steps); its learning-rate schedule still
    follows the global step.
    """

    def __init__(
        self,
        name: str,
        model: nn.Module,
        loss_fn: LossFn | None = None,
        optimizer: torch.optim.Optimizer | Sequence[torch.optim.Optimizer] | None = None,
        every: int = 1,
    ):
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be at least 1; got {every}.")
        self.name, self.model, self.loss_fn, self.optimizer, self.every = (
            name,
            model,
            loss_fn,
            optimizer,
            every,
        )

    def forward(self, batch: Batch) -> LossOutput:
        if self.loss_fn is None:
            raise NotImplementedError(
                f"Objective '{self.name}' has no loss_fn; pass one, or override forward()."
            )
        return self.loss_fn(batch)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, every={self.every}"


def wrap(
    objective: Objective,
    device: torch.device,
    process: distributed.Process,
    compile: bool | str | Callable,
) -> nn.Module:
    """The objective as the loop calls it: in DDP over the processes, and/or compiled; or itself."""
    wrapped: nn.Module = objective
    if process.distributed and any(p.requires_grad for p in objective.parameters()):
        wrapped = distributed.wrap(objective, device)
    if compile:
        # or another backend, by name or function
        backend = "inductor" if compile is True else compile
        wrapped = torch.compile(wrapped, backend=backend)  # compiles lazily, at the first call
    return wrapped


class ObjectiveStep:
    """Updates one objective: its wrapped module, optimizers, learning-rate schedules and gradient scaler."""

    def __init__(
        self,
        objective: Objective,
        optimizers: list[torch.optim.Optimizer],
        schedulers: list[torch.optim.lr_scheduler.LRScheduler],
        scaler: torch.amp.GradScaler,
        *,
        device: torch.device,
        process: distributed.Process,
        precision: str,
        grad_clip: float | None,
        compile: bool | str | Callable = False,
    ):
        self.objective, self.optimizers, self.schedulers, self.scaler = (
            objective,
            optimizers,
            schedulers,
            scaler,
        )
        self.device, self.process, self.precision, self.grad_clip = (
            device,
            process,
            precision,
            grad_clip,
        )
        self.compile, self.first_call = compile, True
        if process.distributed:
            _check_optimizers_cover_only(objective, optimizers)
        self.module = wrap(objective, device, process, compile)

    def due(self, step: int) -> bool:
        """Whether this objective steps at 0-based ``step``: every k-th, after k - 1 steps of the others."""
        return (step + 1) % self.objective.every == 0

    def __call__(self, micro_batches: list[Batch]) -> dict[str, Tensor]:
        """One update from the gradients of all micro-batches; the metrics, averaged over them (not yet synced)."""
        try:
            metrics = self._update(micro_batches)
        except Exception as err:
            if not (self.compile and self.first_call):
                raise
            _warn_compile_failed(err, self.device, self.compile)  # then train on without compiling
            self.compile, self.module = (
                False,
                wrap(self.objective, self.device, self.process, compile=False),
            )
            metrics = self._update(micro_batches)
        self.first_call = False
        metrics["lr"] = torch.tensor(self.optimizers[0].param_groups[0]["lr"])
        for schedule in self.schedulers:
            schedule.step()
        return metrics

    def _update(self, micro_batches: list[Batch]) -> dict[str, Tensor]:
        # Each micro-batch's loss is divided by their number k before backward, so the summed gradients
        # are those of the mean loss over the k micro-batches: the gradient of one batch k times larger.
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)
        ddp = _find_ddp(self.module)
        sums: dict[str, Tensor] = {}
        for j, batch in enumerate(micro_batches):
            last = j == len(micro_batches) - 1
            # DDP averages once, in the last backward
            with nullcontext() if last or ddp is None else ddp.no_sync():
                with autocast(self.device, self.precision):
                    out = self._checked(self.module(batch))
                self.scaler.scale(out["loss"] / len(micro_batches)).backward()
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + v.detach().float()
        metrics = {k: v / len(micro_batches) for k, v in sums.items()}
        if self.grad_clip is not None:
            for opt in self.optimizers:
                self.scaler.unscale_(opt)  # clip the true gradients, not the scaled ones
            params = [p for opt in self.optimizers for g in opt.param_groups for p in g["params"]]
            metrics["grad_norm"] = torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
        for opt in self.optimizers:
            self.scaler.step(opt)
        self.scaler.update()
        return metrics

    def _checked(self, out: LossOutput) -> dict[str, Tensor]:
        name = self.objective.name
        if isinstance(out, Tensor):
            out = {"loss": out}
        if not isinstance(out, dict) or "loss" not in out:
            shown = list(out) if isinstance(out, dict) else type(out).__name__
            raise ValueError(
                f"The loss function of '{name}' must return a scalar tensor or a dict with a 'loss' "
                f"entry; it returned {shown}."
            )
        if out["loss"].dim() != 0:
            raise ValueError(
                f"The loss of '{name}' must be a scalar; it has shape {tuple(out['loss'].shape)}. "
                f"Did you forget a .mean()?"
            )
        if not out["loss"].requires_grad:  # a flag on the tensor: reading it costs no GPU sync
            raise ValueError(
                f"The loss of '{name}' does not depend on any trainable parameter, so there is no "
                f"gradient to step with. Likely causes: a merged LoRA model (call unmerge_lora(model) "
                f"first), a .detach() or .item() in the loss, or a loss computed under torch.no_grad()."
            )
        return out


def _check_optimizers_cover_only(
    objective: Objective, optimizers: list[torch.optim.Optimizer]
) -> None:
    """Under DDP, only the objective's own parameters have their gradients averaged over processes."""
    own = {id(p) for p in objective.parameters()}
    outside = sum(
        1 for opt in optimizers for g in opt.param_groups for p in g["params"] if id(p) not in own
    )
    if outside:
        raise ValueError(
            f"The optimizer of objective '{objective.name}' holds {outside} parameter tensor(s) that "
            f"are not in its model. Under torchrun their gradients would not be averaged over the "
            f"processes, and the copies would drift apart. Give the objective a model that holds "
            f"every parameter its optimizer updates (an nn.ModuleDict of several, say)."
        )


def _find_ddp(wrapper: nn.Module) -> nn.parallel.DistributedDataParallel | None:
    """The DDP object inside a (possibly compiled) wrapper, or None."""
    inner = getattr(wrapper, "_orig_mod", wrapper)  # torch.compile's wrapper keeps the original
    return inner if isinstance(inner, nn.parallel.DistributedDataParallel) else None


def _warn_compile_failed(
    err: Exception, device: torch.device, compile: bool | str | Callable
) -> None:
    root = err
    # the backend's own error, wrapped
    while getattr(root, "inner_exception", None) or root.__cause__:
        root = getattr(root, "inner_exception", None) or root.__cause__
    reason = f"{type(root).__name__}: {(str(root).strip().splitlines() or [''])[0][:300]}"
    if root is not err:
        reason = f"{type(err).__name__}, because {reason}"
    hint = (
        " On a CPU, torch.compile's default backend (Inductor) writes C++ and needs a C++ compiler "
        "(g++ or clang on Linux and macOS, the MSVC build tools on Windows)."
        if device.type == "cpu" and compile in (True, "inductor")
        else ""
    )
    # the line that called fit
    warnings.warn(
        f"torch.compile failed on the first step ({reason}). "
        f"Training continues without it: the same results, only slower.{hint} "
        f"Pass compile=False to skip the attempt.",
        stacklevel=5,
    )
