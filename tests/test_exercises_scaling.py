"""Chapter 06's exercise checkers accept a right answer and reject the usual wrong ones with a hint."""
import pytest
import torch

from genai_lib.exercises import ExerciseError
from genai_lib.exercises import scaling as ex


def not_done(*args):
    raise NotImplementedError()


def accumulate(model, loss_fn, batches, divide=True, zero_inside=False):
    model.zero_grad()
    for batch in batches:
        if zero_inside:
            model.zero_grad()
        loss = loss_fn(batch)
        (loss / len(batches) if divide else loss).backward()
    return [p.grad for p in model.parameters()]


def test_accumulated_gradients_checker(capsys):
    ex.check_accumulated_gradients(accumulate)
    assert capsys.readouterr().out.startswith("Correct:")
    with pytest.raises(ExerciseError, match="3 times too large"):
        ex.check_accumulated_gradients(lambda m, f, b: accumulate(m, f, b, divide=False))
    with pytest.raises(ExerciseError, match="last micro-batch's gradient only"):
        ex.check_accumulated_gradients(lambda m, f, b: accumulate(m, f, b, zero_inside=True))
    with pytest.raises(ExerciseError, match="Not the gradient of the whole batch"):
        ex.check_accumulated_gradients(lambda m, f, b: accumulate(m, f, b[:2]))
    with pytest.raises(ExerciseError, match="list of tensors"):
        ex.check_accumulated_gradients(lambda m, f, b: None)
    with pytest.raises(ExerciseError, match="not written yet|NotImplementedError|solution"):
        ex.check_accumulated_gradients(not_done)


def combine(grads, counts):
    return sum(n * g for n, g in zip(counts, grads)) / sum(counts)


def test_combine_rank_gradients_checker(capsys):
    ex.check_combine_rank_gradients(combine)
    assert capsys.readouterr().out.startswith("Correct:")
    with pytest.raises(ExerciseError, match="plain mean of the ranks' gradients"):
        ex.check_combine_rank_gradients(lambda grads, counts: torch.stack(grads).mean(dim=0))
    with pytest.raises(ExerciseError, match="not the mean over all examples"):
        ex.check_combine_rank_gradients(lambda grads, counts: sum(n * g for n, g in zip(counts, grads)))
    with pytest.raises(ExerciseError, match="one tensor"):
        ex.check_combine_rank_gradients(lambda grads, counts: grads)


def bf16_round(x):
    bits = x.view(torch.int32)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & -65536
    return rounded.view(torch.float32)


def test_bf16_round_checker(capsys):
    ex.check_bf16_round(bf16_round)
    assert capsys.readouterr().out.startswith("Correct:")
    with pytest.raises(ExerciseError, match="rounds toward zero"):
        ex.check_bf16_round(lambda x: (x.view(torch.int32) & -65536).view(torch.float32))
    with pytest.raises(ExerciseError, match="It is a tie"):  # always rounding half up
        ex.check_bf16_round(lambda x: ((x.view(torch.int32) + 0x8000) & -65536).view(torch.float32))
    with pytest.raises(ExerciseError, match="float32"):
        ex.check_bf16_round(lambda x: x.to(torch.bfloat16))
