"""Chapter 04's exercise checkers accept a right answer and reject the usual wrong ones with a hint."""
import pytest
import torch

from genai_lib.data.instructions import IGNORE
from genai_lib.exercises import ExerciseError
from genai_lib.exercises import finetuning as ex
from genai_lib.finetune import freeze_all_but


def test_lora_update_checker():
    ex.check_lora_update(lambda A, B, alpha: (alpha / A.shape[0]) * B @ A)
    with pytest.raises(ExerciseError, match="alpha / r"):
        ex.check_lora_update(lambda A, B, alpha: alpha * B @ A)
    with pytest.raises(ExerciseError, match="in that order"):
        ex.check_lora_update(lambda A, B, alpha: (alpha / A.shape[0]) * (B @ A).T)
    with pytest.raises(ExerciseError, match="Not done yet"):
        ex.check_lora_update(lambda A, B, alpha: (_ for _ in ()).throw(NotImplementedError()))


def masking(prompt, response, block_size, pad_id, masked_prompt_positions=None):
    ids = torch.tensor(prompt + response)
    inputs = torch.full((block_size,), pad_id)
    targets = torch.full((block_size,), IGNORE)
    inputs[:len(ids) - 1], targets[:len(ids) - 1] = ids[:-1], ids[1:]
    n = len(prompt) - 1 if masked_prompt_positions is None else masked_prompt_positions
    targets[:n] = IGNORE
    return inputs, targets


def test_prompt_masking_checker():
    ex.check_prompt_masking(masking)
    with pytest.raises(ExerciseError, match="off-by-one"):  # masks the position that predicts the first answer token
        ex.check_prompt_masking(lambda p, r, b, pad: masking(p, r, b, pad, masked_prompt_positions=len(p)))
    with pytest.raises(ExerciseError, match="not graded on the prompt"):  # no prompt mask at all
        ex.check_prompt_masking(lambda p, r, b, pad: masking(p, r, b, pad, masked_prompt_positions=0))

    def pads_graded(p, r, b, pad):  # labels = input_ids: the padding is graded (the seed recipe's error)
        inputs, targets = masking(p, r, b, pad)
        targets[len(p) + len(r) - 1:] = pad
        return inputs, targets
    with pytest.raises(ExerciseError, match="padding"):
        ex.check_prompt_masking(pads_graded)


def test_freeze_checker():
    ex.check_freeze(lambda m, n: freeze_all_but(m, [*m.blocks[-n:], m.norm, m.token_embedding]))
    with pytest.raises(ExerciseError, match="Block 0"):  # nothing frozen
        ex.check_freeze(lambda m, n: None)
    with pytest.raises(ExerciseError, match="token_embedding"):  # the tied output layer forgotten
        ex.check_freeze(lambda m, n: freeze_all_but(m, [*m.blocks[-n:], m.norm]))
