"""Data parallelism with PyTorch's own engine: ``torchrun`` and DistributedDataParallel.

``torchrun --nproc_per_node=N script.py`` starts N copies of the script and
tells each one who it is through environment variables: ``RANK`` (0..N-1),
``LOCAL_RANK`` (its GPU on this machine), ``WORLD_SIZE`` (N) and where to meet
(``MASTER_ADDR``, ``MASTER_PORT``). Each copy, a *rank*, holds a whole model
and trains on its own share of every batch. After each backward pass,
DistributedDataParallel (DDP) averages the gradients over the ranks, so every
rank takes the same optimizer step and the models stay identical: N ranks
with ``batch_size`` b each take the step one process takes with a batch of N*b.

:func:`~genai_lib.train.fit` uses this module when it finds itself launched by
``torchrun``; a plain ``python`` or a notebook is rank 0 of a world of 1, and
nothing here does anything. The backends: gloo on CPUs, NCCL on CUDA GPUs.
"""

from __future__ import annotations

import atexit
import gc
import io
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass(frozen=True)
class Process:
    """Who this process is: its ``rank`` among ``world_size`` processes, and its GPU (``local_rank``)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that logs, shows progress and writes checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    """True when torchrun (or another launcher with its variables) started more than one process."""
    return "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def backend_for(device: torch.device) -> str:
    """NCCL between CUDA GPUs, gloo between CPU processes."""
    return "nccl" if device.type == "cuda" else "gloo"


def init(device: torch.device) -> Process:
    """Join the group of processes torchrun started, once; a world of 1 when there is none.

    ``device`` picks the backend. Each process of a multi-GPU run should train
    on ``cuda:LOCAL_RANK`` (:func:`device_for`). The group is left at exit.
    """
    if dist.is_available() and dist.is_initialized():
        return current()
    if not launched_by_torchrun():
        return Process()
    if device.type == "mps":
        raise RuntimeError(
            "Data parallelism across processes needs CPUs (gloo) or CUDA GPUs (NCCL); "
            "MPS has no backend. Launch with one process, or set device='cpu'."
        )
    dist.init_process_group(backend_for(device))
    atexit.register(shutdown)
    return Process(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def current() -> Process:
    """This process, in the group it has joined (rank 0 of 1 when it has joined none)."""
    if dist.is_available() and dist.is_initialized():
        return Process(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return Process()


def shutdown() -> None:
    """Leave the process group (a no-op outside one).

    DDP wrappers that are garbage but still held in reference cycles are freed
    first, while their process group exists: freed after it, at interpreter
    exit, their threads can abort the process ("terminate called without an
    active exception"), seen once under load.
    """
    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def device_for(device: torch.device, process: Process) -> torch.device:
    """Under torchrun, each process on a multi-GPU machine takes its own GPU: ``cuda:LOCAL_RANK``.

    A single process keeps ``device`` as it is, and the current CUDA device is left alone.
    """
    if process.distributed and device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", process.local_rank)
        torch.cuda.set_device(device)  # NCCL and torch.cuda.* calls then use this GPU
    return device


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``DistributedDataParallel(model)``: same parameters, gradients averaged over the ranks in backward.

    DDP copies rank 0's parameters to every rank here, so all ranks start equal.
    """
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def broadcast_module(module: nn.Module) -> None:
    """Copy rank 0's weights and buffers into ``module`` on every rank (a no-op in a world of 1)."""
    if dist.is_available() and dist.is_initialized():
        with torch.no_grad():
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, src=0)


def mean_over_ranks(values: Tensor) -> Tensor:
    """The element-wise mean of ``values`` over all ranks (``values`` itself in a world of 1)."""
    if not (dist.is_available() and dist.is_initialized()):
        return values
    total = values.clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total / dist.get_world_size()


def gather_objects(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` in a world of 1).

    ``obj`` is anything ``torch.save`` can write and ``torch.load(weights_only=True)``
    can read back: tensors, numbers, strings, lists, tuples and dicts of them.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    # Sent as torch.save bytes: all_gather_object's own pickling of tensors fails to load in torch 2.13
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, buffer.getvalue())
    return [torch.load(io.BytesIO(b), weights_only=True) for b in gathered]


def barrier() -> None:
    """Wait until every rank gets here (a no-op in a world of 1)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
