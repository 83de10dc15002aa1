"""Checkers for chapter 06 (scaling up: accumulated gradients, gradients from ranks of unequal size, bf16 rounding)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from genai_lib.exercises import ExerciseError, call, expect, passed

Batch = tuple[Tensor, Tensor]


def _model_and_batches() -> tuple[nn.Module, list[Batch]]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(12, 3, generator=g), torch.randn(12, 1, generator=g)
    return model, [(x[i : i + 4], y[i : i + 4]) for i in range(0, 12, 4)]


def _mse(model: nn.Module) -> Callable[[Batch], Tensor]:
    return lambda batch: ((model(batch[0]) - batch[1]) ** 2).mean()


def _gradients(model: nn.Module, loss: Tensor) -> list[Tensor]:
    model.zero_grad()
    loss.backward()
    return [p.grad.clone() for p in model.parameters()]


def _same(a: Sequence[Tensor], b: Sequence[Tensor]) -> bool:
    return len(a) == len(b) and all(
        x.shape == y.shape and torch.allclose(x, y, rtol=1e-5, atol=1e-7) for x, y in zip(a, b)
    )


def check_accumulated_gradients(
    fn: Callable[[nn.Module, Callable[[Batch], Tensor], list[Batch]], list[Tensor]],
) -> None:
    """``fn(model, loss_fn, micro_batches) -> [gradient of each parameter]``: that of the mean loss over all rows."""
    model, batches = _model_and_batches()
    loss_fn = _mse(model)
    whole = (torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches]))
    expected = _gradients(model, loss_fn(whole))
    last_only = _gradients(model, loss_fn(batches[-1]) / len(batches))
    model.zero_grad()
    got = call(fn, model, loss_fn, batches)
    expect(
        isinstance(got, (list, tuple)) and all(isinstance(g, Tensor) for g in got),
        "Return a list of tensors: the .grad of each parameter, in model.parameters() order.",
    )
    got = [g.detach() for g in got]
    expect(
        len(got) == len(expected),
        f"There are {len(expected)} parameters; you returned {len(got)} gradients.",
    )
    if _same(got, expected):
        passed(
            f"{len(batches)} micro-batches, each loss divided by {len(batches)}, add up to the gradient "
            f"of one batch of {len(whole[0])} rows."
        )
        return
    k = len(batches)
    if _same(got, [k * e for e in expected]):
        raise ExerciseError(
            f"Your gradients are {k} times too large: divide each micro-batch's loss by the number "
            f"of micro-batches ({k}), so that their sum is the mean over all rows."
        )
    if _same(got, last_only) or _same(got, [k * g for g in last_only]):
        raise ExerciseError(
            "You returned the last micro-batch's gradient only. Zero the gradients once, before the "
            "loop: backward() adds into .grad, and that sum is the point."
        )
    raise ExerciseError(
        "Not the gradient of the whole batch. Zero the gradients once, then for each micro-batch "
        "call (loss_fn(batch) / k).backward(), and return [p.grad for p in model.parameters()]."
    )


def check_combine_rank_gradients(fn: Callable[[list[Tensor], list[int]], Tensor]) -> None:
    """``fn(grads, counts) -> gradient``: the gradient of the mean loss over all examples of all ranks.

    ``grads[r]`` is rank r's gradient of its own mean loss over ``counts[r]`` examples.
    """
    torch.manual_seed(0)
    per_example = torch.randn(16, 5)  # the gradient of each example's loss
    for counts in ([4, 4, 4, 4], [3, 5, 8]):
        parts = per_example[: sum(counts)].split(counts)
        grads = [p.mean(dim=0) for p in parts]
        expected = per_example[: sum(counts)].mean(dim=0)
        got = call(fn, [g.clone() for g in grads], list(counts))
        expect(
            isinstance(got, Tensor) and got.shape == expected.shape,
            f"Return one tensor of the gradients' shape {tuple(expected.shape)}; got "
            f"{tuple(got.shape) if isinstance(got, Tensor) else type(got).__name__}.",
        )
        if torch.allclose(got, expected, atol=1e-6):
            continue
        if torch.allclose(got, torch.stack(grads).mean(dim=0), atol=1e-6):
            raise ExerciseError(
                f"With counts {counts} you returned the plain mean of the ranks' gradients: what "
                f"DDP's all-reduce computes. It is the whole batch's gradient only when every rank "
                f"has as many examples. Weight each rank's gradient by its count, then divide by "
                f"the total."
            )
        raise ExerciseError(
            f"With counts {counts}: not the mean over all examples. Each rank's gradient is a mean "
            f"over its counts[r] examples; multiply back to sums, add them, divide by the total."
        )
    passed(
        "the mean over all examples: each rank weighted by its share. With equal shares that is the plain "
        "mean DDP computes."
    )


def check_bf16_round(fn: Callable[[Tensor], Tensor]) -> None:
    """``fn(x float32) -> float32``: each value rounded to the nearest bfloat16 (ties to even), by bit arithmetic."""
    g = torch.Generator().manual_seed(0)
    spread = torch.randn(1000, generator=g) * torch.logspace(-20, 20, 1000)
    ones = torch.tensor([1.0, -1.0, 0.0, 3.0e38, 1e-38])
    # values exactly half-way between two bf16 neighbours, where ties-to-even decides
    ties = torch.tensor([1 + 2**-8, 1 + 3 * 2**-8, -(1 + 2**-8), 2 + 2**-7])
    x = torch.cat([spread, ones, ties]).float()
    expected = x.to(torch.bfloat16).float()
    got = call(fn, x.clone())
    expect(
        isinstance(got, Tensor) and got.shape == x.shape,
        f"Return a tensor of the input's shape {tuple(x.shape)}.",
    )
    expect(
        got.dtype == torch.float32,
        f"Return float32 values (bits.view(torch.float32)); got {got.dtype}.",
    )
    if torch.equal(got, expected):
        passed(
            "bit for bit the same as x.to(torch.bfloat16): the top 16 bits of a float32, rounded to nearest, "
            "ties to even."
        )
        return
    truncated = (x.view(torch.int32) & -65536).view(torch.float32)
    if torch.equal(got, truncated):
        raise ExerciseError(
            "You cut the low 16 bits off: that rounds toward zero. Round to nearest first: add "
            "0x7FFF, plus the lowest bit you keep ((bits >> 16) & 1), then cut."
        )
    wrong = (got != expected).nonzero().flatten()
    i = int(wrong[0])
    hint = (
        " It is a tie: half-way between two bf16 values, it goes to the one whose last kept bit is 0."
        if i >= len(spread) + len(ones)
        else ""
    )
    raise ExerciseError(
        f"{len(wrong)} of {len(x)} values differ; e.g. {x[i].item()!r} should round to "
        f"{expected[i].item()!r}, yours gives {got[i].item()!r}.{hint}"
    )
