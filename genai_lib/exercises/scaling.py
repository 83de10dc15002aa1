"""Checkers for chapter 06 (scaling up: fp16 loss scaling, gradients from ranks of unequal size, bf16 rounding)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from genai_lib.exercises import ExerciseError, call, expect, passed


def _same(a: Sequence[Tensor], b: Sequence[Tensor]) -> bool:
    return len(a) == len(b) and all(
        x.shape == y.shape and torch.allclose(x, y, rtol=1e-5, atol=1e-7) for x, y in zip(a, b)
    )


def check_unscale_or_skip(
    fn: Callable[[list[Tensor], float], tuple[list[Tensor] | None, float]],
) -> None:
    """``fn(grads, scale) -> (grads_to_apply or None, new_scale)``: one decision of fp16 loss scaling.

    ``grads`` were computed from ``scale * loss``. All finite: return them divided by ``scale``,
    and the same scale. An inf or a NaN anywhere: return ``None`` (skip the step) and ``scale / 2``.
    """
    g = torch.Generator().manual_seed(0)
    scale = 2.0**16
    true = [torch.randn(3, 4, generator=g) * 1e-3, torch.randn(4, generator=g) * 1e-5]
    scaled = [t * scale for t in true]

    def run(grads: list[Tensor], what: str) -> tuple[object, object]:
        result = call(fn, [t.clone() for t in grads], scale)
        expect(
            isinstance(result, tuple) and len(result) == 2,
            f"With {what}, return two things: (the gradients to apply, or None, and the new "
            f"scale); got {type(result).__name__}.",
        )
        return result

    got, new_scale = run(scaled, "finite gradients")
    expect(
        got is not None,
        "All the gradients are finite, so the step goes ahead: return the unscaled gradients, "
        "not None.",
    )
    expect(
        isinstance(got, (list, tuple))
        and len(got) == 2
        and all(isinstance(t, Tensor) for t in got),
        "Return the gradients as a list of tensors, one per parameter, in the order they came.",
    )
    if _same(list(got), scaled) or _same(list(got), [t * scale for t in scaled]):
        raise ExerciseError(
            "The gradients are still multiplied by the scale (or by its square): they came from "
            "scale * loss, so divide each one by the scale before the optimizer sees it."
        )
    expect(
        _same(list(got), true),
        "With finite gradients, return each gradient divided by the scale: the gradient of the "
        "loss itself.",
    )
    expect(
        new_scale == scale,
        f"After a step with finite gradients keep the scale ({scale:g}); yours is {new_scale}. "
        f"(GradScaler doubles it only after a long run of good steps, 2,000 by default.)",
    )
    for bad, what in ((float("inf"), "an inf"), (float("nan"), "a NaN")):
        broken = [t.clone() for t in scaled]
        broken[1][2] = bad
        got, new_scale = run(broken, f"{what} in a gradient")
        expect(
            got is None,
            f"One gradient holds {what}: the scale was too large and the gradients overflowed. "
            f"Skip the step: return None, so that no update uses them. Test every gradient with "
            f"torch.isfinite(g).all(), which catches inf and NaN alike.",
        )
        expect(
            new_scale == scale / 2,
            f"After an overflow ({what}), halve the scale: {scale / 2:g}; yours is {new_scale}.",
        )
    passed(
        "finite gradients are unscaled and applied; an inf or a NaN skips the step and halves the "
        "scale. This is what GradScaler decides at every fp16 step (plus, after many good steps, "
        "doubling the scale again)."
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
