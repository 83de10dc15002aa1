"""Checkers for chapter 07 (text to image).

A contrastive loss in which captions of the same meaning share the target,
multi-head cross-attention with padding, and guidance towards two prompts at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

from genai_lib.exercises import ExerciseError, call, expect, passed


def _as_tensor(got: object, shape: tuple[int, ...], what: str) -> Tensor:
    if not isinstance(got, Tensor):
        raise ExerciseError(f"{what} should be a tensor; got {type(got).__name__}.")
    expect(
        tuple(got.shape) == tuple(shape),
        f"{what} should have shape {tuple(shape)}; yours has {tuple(got.shape)}.",
    )
    expect(bool(torch.isfinite(got).all()), f"{what} contains NaN or inf.")
    return got.detach().double()


def _close(a: Tensor, b: Tensor) -> bool:
    return torch.allclose(a.double(), b.double(), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- 1. the contrastive loss with shared meanings


def _grouped(
    image: Tensor,
    text: Tensor,
    groups: Tensor,
    temperature: float,
    *,
    scale=None,
    spread=True,
    both=True,
):
    logits = (image @ text.T) * scale if scale is not None else (image @ text.T) / temperature
    same = (groups[:, None] == groups[None, :]).double()
    target = (
        same / same.sum(1, keepdim=True) if spread else torch.eye(len(groups), dtype=torch.double)
    )
    one = F.cross_entropy(logits, target)
    return (one + F.cross_entropy(logits.T, target)) / 2 if both else one


def check_grouped_contrastive_loss(fn: Callable[[Tensor, Tensor, Tensor, float], Tensor]) -> None:
    """``fn(image_vectors (B, D), text_vectors (B, D), groups (B,), temperature) -> loss``, a scalar in nats.

    Both sets of vectors are unit length. ``logits = image @ text.T / temperature``;
    row ``i``'s target spreads evenly over every caption with ``groups[j] ==
    groups[i]``; the loss is the mean of the image->text and text->image cross-entropies.
    """
    g = torch.Generator().manual_seed(0)
    B, D, temperature = 8, 5, 0.2
    image = F.normalize(torch.randn(B, D, generator=g, dtype=torch.double), dim=1)
    text = F.normalize(image + 0.7 * torch.randn(B, D, generator=g, dtype=torch.double), dim=1)
    groups = torch.tensor([0, 1, 1, 2, 3, 3, 3, 4])  # two pairs and a triple share a meaning
    expected = _grouped(image, text, groups, temperature)
    got = call(fn, image.clone(), text.clone(), groups.clone(), temperature)
    if isinstance(got, Tensor) and got.dim() == 1 and got.shape == (B,):
        raise ExerciseError(
            "Your loss has one value per pair; return one number, the mean over the batch (and over both directions)."
        )
    got = _as_tensor(got, (), "The loss")
    if _close(got, expected):
        passed(
            f"{got.item():.4f} nats. Captions that mean the same thing share the target's mass, so the loss no "
            f"longer pushes apart 'a thin seven' and '7, thin'; with every group distinct it is CLIP's loss."
        )
        return
    diagnoses = [
        (
            _grouped(image, text, groups, temperature, scale=temperature),
            "The temperature is on the wrong side: you multiplied the cosines by it. Divide by it: a temperature "
            "below 1 sharpens the softmax (CLIP's 0.07 turns cosines in [-1, 1] into logits in [-14, 14]).",
        ),
        (
            _grouped(image, text, groups, temperature, spread=False),
            "Your targets are the diagonal alone: caption i is the only match of image i. Here pairs with the same "
            "group mean the same thing; spread row i's target evenly over every j with groups[j] == groups[i].",
        ),
        (
            _grouped(image, text, groups, temperature, both=False),
            "Only one direction: you scored captions for each image (image -> text). Add the text -> image loss "
            "(the transposed logits) and average the two.",
        ),
        (
            2 * expected,
            "The two directions are summed: average them, so the loss stays in nats per pair.",
        ),
    ]
    for value, hint in diagnoses:
        if _close(got, value):
            raise ExerciseError(hint)
    raise ExerciseError(
        f"Expected {expected.item():.4f} nats; yours is {got.item():.4f}. Check: logits = image @ text.T / "
        f"temperature; target = same / same.sum(1, keepdim=True); the mean of F.cross_entropy on the logits "
        f"and on their transpose."
    )


# ---------------------------------------------------------------- 2. multi-head cross-attention with padding


def _attend(
    x: Tensor,
    context: Tensor,
    wq,
    wk,
    wv,
    mask,
    heads: int,
    *,
    keys_from_image=False,
    scale=True,
    softmax_dim=-1,
    use_mask=True,
) -> Tensor:
    B, N, _ = x.shape
    q = x @ wq
    k = (x if keys_from_image else context) @ wk
    v = (x if keys_from_image else context) @ wv
    d = q.shape[-1] // heads
    split = lambda t: t.view(B, -1, heads, d).transpose(1, 2)  # noqa: E731
    q, k, v = split(q), split(k), split(v)
    scores = q @ k.transpose(-1, -2) / (math.sqrt(d) if scale else 1.0)  # (B, heads, N, L)
    if use_mask and not keys_from_image:
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    out = (
        scores.softmax(dim=softmax_dim).nan_to_num() @ v
    )  # a softmax over pixels leaves NaN under the mask
    return out.transpose(1, 2).reshape(B, N, heads * d)


def check_cross_attention(fn: Callable[..., Tensor]) -> None:
    """``fn(pixels (B, N, C), words (B, L, C), w_query, w_key, w_value (C, C), mask (B, L), heads) -> (B, N, C)``.

    Queries from the pixels, keys and values from the words; each of ``heads``
    heads uses its own C / heads columns, scores scaled by ``sqrt(C / heads)``,
    softmax over the words, padding (``mask`` False) never attended to.
    """
    g = torch.Generator().manual_seed(0)
    B, N, L, C, heads = 2, 6, 5, 8, 2
    x = torch.randn(B, N, C, generator=g, dtype=torch.double)
    context = torch.randn(
        B, L, C, generator=g, dtype=torch.double
    )  # the same width, so a mix-up still runs
    wq, wk, wv = (
        torch.randn(C, C, generator=g, dtype=torch.double) / math.sqrt(C) for _ in range(3)
    )
    mask = torch.tensor([[True] * L, [True, True, True, False, False]])
    expected = _attend(x, context, wq, wk, wv, mask, heads)
    got = call(
        fn, x.clone(), context.clone(), wq.clone(), wk.clone(), wv.clone(), mask.clone(), heads
    )
    if isinstance(got, Tensor) and got.shape == (B, N, C) and got.isnan().any():
        raise ExerciseError(
            "Your output has NaN: a softmax over nothing but -inf. Masked words have -inf in every pixel's row, "
            "which is fine for a softmax over the words (the last axis); a softmax over the pixels meets a whole "
            "column of -inf for each padding word."
        )
    got = _as_tensor(got, (B, N, C), "The output (one vector per pixel)")
    if _close(got, expected):
        passed(
            "each pixel's query picks, head by head, the words it needs; padding gets no weight. This is the "
            "layer chapter 07's U-Net runs after every residual block."
        )
        return
    diagnoses = [
        (
            _attend(x, context, wq, wk, wv, mask, heads, keys_from_image=True),
            "Your keys and values come from the image: that is self-attention. In cross-attention the pixels ask "
            "(queries) and the words answer (keys and values from the text features).",
        ),
        (
            _attend(x, context, wq, wk, wv, mask, heads, use_mask=False),
            "The padding is attended to: set the scores of masked-out words to -inf before the softmax "
            "(scores.masked_fill(~mask[:, None, None, :], float('-inf'))).",
        ),
        (
            _attend(x, context, wq, wk, wv, mask, heads, scale=False),
            "The scores are not scaled: divide q . k by sqrt(C / heads), the width of one head, so the softmax "
            "does not saturate as heads get wider.",
        ),
        (
            _attend(x, context, wq, wk, wv, mask, 1),
            "You used one head: split the C columns into `heads` groups of C / heads, attend in each, and put "
            "the heads side by side again.",
        ),
        (
            _attend(x, context, wq, wk, wv, mask, heads, softmax_dim=-2),
            "The softmax runs over the pixels: it should run over the words (the last axis of the scores), "
            "so that each pixel's weights over the words sum to 1.",
        ),
    ]
    for value, hint in diagnoses:
        if _close(got, value):
            raise ExerciseError(hint)
    raise ExerciseError(
        "Not the expected output. Check the order: q = pixels @ w_query, k = words @ w_key, v = words @ w_value; "
        "split each into heads; scores = q @ k^T / sqrt(C / heads); mask; softmax over the words; weights @ v; "
        "join the heads."
    )


# ---------------------------------------------------------------- 3. guidance towards two prompts at once


def check_composed_guidance(
    fn: Callable[[Tensor, Sequence[Tensor], Sequence[float]], Tensor],
) -> None:
    """``fn(eps_uncond, [eps_1, eps_2, ...], [s_1, s_2, ...]) -> eps``: ``eps_u + sum_i s_i (eps_i - eps_u)``.

    Each prompt pulls the noise prediction away from the unconditional one by
    its own scale (Liu et al. 2022, "compositional visual generation"); with
    one prompt it is classifier-free guidance.
    """
    g = torch.Generator().manual_seed(0)
    shape = (3, 1, 4, 4)
    eps_u = torch.randn(shape, generator=g, dtype=torch.double)
    eps = [torch.randn(shape, generator=g, dtype=torch.double) for _ in range(2)]
    scales = [2.0, 1.5]
    expected = eps_u + sum(s * (e - eps_u) for s, e in zip(scales, eps))
    got = _as_tensor(
        call(fn, eps_u.clone(), [e.clone() for e in eps], list(scales)), shape, "The guided noise"
    )
    if _close(got, expected):
        one = _as_tensor(
            call(fn, eps_u.clone(), [eps[0].clone()], [1.0]),
            shape,
            "With one prompt at s = 1, the noise",
        )
        expect(
            _close(one, eps[0]),
            "With one prompt at s = 1 the answer should be that prompt's own prediction.",
        )
        passed(
            "each prompt adds its own pull, s_i (eps_i - eps_u); 'a four' and 'thin' can be asked for separately "
            "and combined, which is one way to draw a combination never seen in training."
        )
        return
    diagnoses = [
        (
            eps_u + sum(s * (eps_u - e) for s, e in zip(scales, eps)),
            "The sign is flipped: s (eps_u - eps_i) pushes away from each prompt. Guidance moves towards the "
            "prompt: eps_u + s_i (eps_i - eps_u).",
        ),
        (
            sum((1 + s) * e - s * eps_u for s, e in zip(scales, eps)),
            "That is Ho & Salimans' (1 + w) eps_c - w eps_u applied per prompt with w = s, and summed: it counts the "
            "prediction once per prompt. Start from eps_u once and add each prompt's s_i (eps_i - eps_u).",
        ),
        (
            sum(s * e for s, e in zip(scales, eps)),
            "The unconditional prediction is missing: guidance is measured from eps_u, eps_u + s_i (eps_i - eps_u).",
        ),
        (
            eps_u + sum(s * (e - eps_u) for s, e in zip(scales, eps)) / len(eps),
            "The pulls are averaged: each prompt's s_i (eps_i - eps_u) is added in full.",
        ),
    ]
    for value, hint in diagnoses:
        if _close(got, value):
            raise ExerciseError(hint)
    raise ExerciseError(
        "Not the expected noise. It is eps_u + sum over prompts of s_i (eps_i - eps_u)."
    )
