"""Checkers for chapter 04 (fine-tuning: full, frozen, LoRA, instruction tuning)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from genai_lib.data.instructions import IGNORE, encode_examples
from genai_lib.exercises import call, expect, passed
from genai_lib.models.gpt import GPT, GPTConfig


def check_lora_update(fn: Callable[[Tensor, Tensor, float], Tensor]) -> None:
    """``fn(A (r, in), B (out, r), alpha) -> (out, in)``: the update LoRA adds to a weight, (alpha / r) B A."""
    g = torch.Generator().manual_seed(0)
    A, B = torch.randn(2, 5, generator=g), torch.randn(3, 2, generator=g)
    got = call(fn, A, B, 8.0)
    expect(isinstance(got, Tensor), f"Return a tensor; got {type(got).__name__}.")
    expect(
        got.shape == (3, 5),
        f"The update has the weight's shape (out, in) = (3, 5); yours has {tuple(got.shape)}. "
        f"Multiply B (out, r) by A (r, in), in that order.",
    )
    expected = 4.0 * B @ A
    expect(
        not torch.allclose(got, B @ A * 8.0) or torch.allclose(got, expected),
        "Scale by alpha / r, not by alpha: r is A.shape[0] (here 2), so the factor is 8 / 2 = 4.",
    )
    expect(
        torch.allclose(got, expected, atol=1e-6),
        f"Expected (alpha / r) B A = 4 B A; the first row should be "
        f"{expected[0].tolist()}, yours is {got[0].tolist()}.",
    )
    expect(
        int(torch.linalg.matrix_rank(got)) <= 2,
        "A rank-2 adapter's update must have rank at most 2.",
    )
    passed("the update is (alpha / r) B A, of the weight's shape and of rank at most r.")


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


def check_freeze(fn: Callable[[GPT, int], None]) -> None:
    """``fn(model, n_blocks)``: leave trainable only the last ``n_blocks`` blocks, the final norm and the embedding."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=3, n_head=2, n_embd=16))
    call(fn, model, 2)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    expect(
        not any(name.startswith("blocks.0.") for name in trainable),
        "Block 0 should be frozen: with n_blocks = 2 of 3, only blocks 1 and 2 train.",
    )
    for part in ("blocks.1.", "blocks.2.", "norm.", "token_embedding."):
        expect(
            any(name.startswith(part) for name in trainable),
            f"The parameters under {part!r} should be trainable (requires_grad True).",
        )
    expect("position_embedding.weight" not in trainable, "The position embedding stays frozen.")
    model.zero_grad()
    x = torch.randint(11, (2, 8))
    nn.functional.cross_entropy(model(x).flatten(0, 1), x.flatten()).backward()
    expect(
        all(p.grad is None for name, p in model.named_parameters() if name.startswith("blocks.0.")),
        "A frozen block must get no gradient at all.",
    )
    passed(
        "the first block and the position table are frozen; the last blocks, the norm and the tied embedding train."
    )
