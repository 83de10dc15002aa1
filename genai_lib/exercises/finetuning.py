"""Checkers for chapter 04 (fine-tuning: low-rank updates, LoRA on an embedding, prompt masking)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from genai_lib.data.instructions import IGNORE, encode_examples
from genai_lib.exercises import ExerciseError, call, expect, passed


def check_best_low_rank(fn: Callable[[Tensor, int], Tensor]) -> None:
    """``fn(delta (out, in), r) -> (out, in)``: the matrix of rank at most ``r`` closest to ``delta``.

    Closest in the Frobenius norm: by the Eckart-Young theorem, the truncated SVD, which keeps the
    ``r`` largest singular values and their singular vectors.
    """
    g = torch.Generator().manual_seed(0)
    U, _ = torch.linalg.qr(torch.randn(7, 7, generator=g, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
    s = torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0, 0.5], dtype=torch.float64)
    delta = (U[:, :6] * s) @ V.T  # singular values 5, 4, 3, 2, 1, 0.5: all different
    for r in (2, 3):
        got = call(fn, delta.float().clone(), r)
        expect(
            isinstance(got, Tensor),
            f"Return one matrix of delta's shape (7, 6), not the factors; got {type(got).__name__}.",
        )
        expect(
            tuple(got.shape) == (7, 6),
            f"The result has delta's shape (7, 6); yours has {tuple(got.shape)}. Multiply the "
            f"factors back together: U[:, :r] * S[:r] @ Vh[:r].",
        )
        got = got.detach().double()
        best = (U[:, :r] * s[:r]) @ V[:, :r].T
        if torch.allclose(got, best, atol=1e-4):
            continue
        rank = int(torch.linalg.matrix_rank(got, atol=1e-4))
        smallest = (U[:, 6 - r : 6] * s[6 - r :]) @ V[:, 6 - r :].T
        expect(
            not torch.allclose(got, smallest, atol=1e-4),
            f"With r = {r} you keep the {r} smallest singular values. torch.linalg.svd returns them "
            f"largest first, so the best rank-r matrix uses the first r: U[:, :r], S[:r], Vh[:r].",
        )
        expect(
            not torch.allclose(got, U[:, :r] @ V[:, :r].T, atol=1e-4),
            "The singular values are missing: U[:, :r] @ Vh[:r] has the right directions but every "
            "direction at length 1. Scale them by S[:r]: (U[:, :r] * S[:r]) @ Vh[:r].",
        )
        expect(
            rank == r,
            f"With r = {r} the result should have rank {r}; yours has rank {rank}. Keep exactly r "
            f"singular values (slices [:r], not [:r + 1] or [:r - 1]).",
        )
        error, best_error = (delta - got).norm().item(), (delta - best).norm().item()
        raise ExerciseError(
            f"With r = {r} your matrix has rank {r} but is not the closest one: ||delta - yours|| = "
            f"{error:.3f}, and the best rank-{r} matrix is {best_error:.3f} away (the square root "
            f"of the sum of the dropped singular values squared). Use torch.linalg.svd(delta, "
            f"full_matrices=False) and keep the r largest singular values."
        )
    passed(
        "the truncated SVD is the closest rank-r matrix (Eckart-Young): what is lost is exactly "
        "the dropped singular values."
    )


def _lora_embedding(ids: Tensor, weight: Tensor, A: Tensor, B: Tensor, alpha: float) -> Tensor:
    one_hot = nn.functional.one_hot(ids, weight.shape[0]).to(weight.dtype)
    return one_hot @ (weight + (alpha / A.shape[0]) * (B @ A).T)  # a linear layer on one-hot ids


def check_lora_embedding(fn: Callable[[Tensor, Tensor, Tensor, Tensor, float], Tensor]) -> None:
    """``fn(ids (any shape, int64), weight (V, d), A (r, V), B (d, r), alpha) -> (*ids.shape, d)``.

    LoRA on an embedding table: ``weight[ids] + (alpha / r) (B A)^T[ids]``, the embedding seen as a
    linear layer applied to one-hot vectors of the ids.
    """
    g = torch.Generator().manual_seed(0)
    V, d, r, alpha = 7, 5, 2, 6.0
    weight = torch.randn(V, d, generator=g)
    A, B = torch.randn(r, V, generator=g), torch.randn(d, r, generator=g)
    ids = torch.tensor([[6, 0, 3], [3, 5, 1]])

    def run(b: Tensor, a: Tensor = A) -> Tensor:
        try:
            got = call(fn, ids.clone(), weight.clone(), a, b, alpha)
        except (RuntimeError, IndexError) as err:
            raise ExerciseError(
                f"Your function raised: {str(err).splitlines()[0]}\nThe ids are integers, not "
                f"vectors: an embedding is a linear layer applied to one-hot vectors, so where a "
                f"linear layer computes x @ A.T, the embedding looks up columns of A: A[:, ids].T "
                f"(shape (*ids.shape, r)), then multiplies by B.T."
            ) from None
        expect(isinstance(got, Tensor), f"Return a tensor; got {type(got).__name__}.")
        expect(
            tuple(got.shape) == (2, 3, d),
            f"ids of shape (2, 3) give embeddings of shape (2, 3, d) = (2, 3, {d}); yours have "
            f"shape {tuple(got.shape)}. Keep the ids' shape and add the last dimension d.",
        )
        return got

    start = run(torch.zeros(d, r))
    expect(
        torch.allclose(start, weight[ids]),
        "With B = 0 (how LoRA starts) the result must be the base embedding weight[ids] exactly: "
        "add the base lookup to the low-rank update.",
    )
    A_, B_ = A.clone().requires_grad_(True), B.clone().requires_grad_(True)
    got = run(B_, A_)
    expected = _lora_embedding(ids, weight, A, B, alpha)
    if not torch.allclose(got.detach(), expected, atol=1e-5):
        update = got.detach() - weight[ids]
        true_update = expected - weight[ids]
        expect(
            not torch.allclose(update, true_update * r, atol=1e-5),
            "The update is scaled by alpha; LoRA scales it by alpha / r (here 6 / 2 = 3).",
        )
        expect(
            not torch.allclose(update, true_update / (alpha / r), atol=1e-5),
            "The update is not scaled: LoRA multiplies B A by alpha / r (here 6 / 2 = 3).",
        )
        raise ExerciseError(
            f"Expected weight[ids] + (alpha / r) (A[:, ids].T @ B.T); for ids[0, 0] = 6 that is "
            f"{[round(v, 4) for v in expected[0, 0].tolist()]}, yours is "
            f"{[round(v, 4) for v in got[0, 0].tolist()]}."
        )
    if got.requires_grad:
        got.sum().backward()
    expect(
        A_.grad is not None and B_.grad is not None and bool(B_.grad.abs().sum() > 0),
        "No gradient reaches A and B: compute the update with tensor operations on A and B "
        "themselves (no .detach(), no torch.no_grad()), or LoRA cannot train.",
    )
    passed(
        "an embedding is a linear layer on one-hot ids, so its LoRA update is a lookup in "
        "(alpha / r) (B A)^T: r (V + d) numbers train instead of V d."
    )


def check_prompt_masking(
    fn: Callable[[list[int], list[int], int, int], tuple[Tensor, Tensor]],
) -> None:
    """``fn(prompt_ids, response_ids, block_size, pad_id) -> (inputs, targets)``, one row each of ``block_size``."""
    prompt, response = [7, 8, 9], [4, 5, 1]
    result = call(fn, prompt, response, 8, 0)
    expect(isinstance(result, tuple) and len(result) == 2, "Return two tensors: (inputs, targets).")
    inputs, targets = (torch.as_tensor(t) for t in result)
    expect(
        inputs.shape == (8,) and targets.shape == (8,),
        f"Both should have block_size = 8 positions; got {tuple(inputs.shape)} and {tuple(targets.shape)}.",
    )
    expected_inputs, expected_targets = (
        t[0] for t in encode_examples([("abc", "xyz")], _ids, 8, 0)
    )
    expect(
        inputs.tolist() == expected_inputs.tolist(),
        f"inputs are the prompt and the response without the last token, then padding: "
        f"{expected_inputs.tolist()}; yours {inputs.tolist()}.",
    )
    expect(
        targets[1].item() == IGNORE,
        f"Position 1 reads prompt token 8 and its target is prompt token 9: the model is not graded on the "
        f"prompt, so that target is IGNORE ({IGNORE}). Yours is {targets[1].item()}.",
    )
    expect(
        targets[2].item() == 4,
        f"Position 2 reads the last prompt token and must predict the first response token (4); yours says "
        f"{targets[2].item()}. Masking one position too many is the classic off-by-one here.",
    )
    expect(
        targets[5].item() == IGNORE,
        f"Positions after the response only predict padding, which is never graded: IGNORE ({IGNORE}). "
        f"Yours is {targets[5].item()}.",
    )
    expect(
        targets.tolist() == expected_targets.tolist(),
        f"Expected targets {expected_targets.tolist()}; yours {targets.tolist()}.",
    )
    passed("only the response tokens (and the newline that ends it) are graded.")


def _ids(text: str) -> list[int]:
    return {"abc": [7, 8, 9], "xyz": [4, 5, 1]}[text]
