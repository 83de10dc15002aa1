"""The generated instruction data: correct answers, a word-disjoint split, prompt-loss masking, exact match."""

import pytest
import torch
from torch.nn import functional as F

from genai_lib.data import CharTokenizer, load_text
from genai_lib.data.instructions import (
    IGNORE,
    SEPARATOR,
    TASKS,
    encode_examples,
    make_instruction_data,
    vocabulary_words,
)
from genai_lib.lm import exact_match
from genai_lib.losses import next_token_loss

TOK = CharTokenizer("\n" + "".join(chr(c) for c in range(32, 127)))


@pytest.fixture(scope="module")
def data():
    return make_instruction_data(
        vocabulary_words(load_text("pydoc")), n_train=500, n_val=100, seed=0
    )


def test_answers_are_right(data):
    train, val = data
    for prompt, response in train + val:
        task, _, rest = prompt.removesuffix(SEPARATOR).partition(": ")
        answer = response.removesuffix("\n")
        if task == "reverse":
            assert answer == rest[::-1]
        elif task == "upper":
            assert answer == rest.upper()
        elif task == "sort":
            assert answer == "".join(sorted(rest))
        elif task == "ends":
            assert answer == rest[0] + rest[-1]
        else:
            a, b = rest.split(" + ")
            assert int(answer) == int(a) + int(b)
    assert {p.partition(":")[0] for p, _ in train} == set(TASKS)


def test_held_out_words_never_appear_in_training(data):
    train, val = data
    word = lambda prompt: prompt.removesuffix(SEPARATOR).partition(": ")[2]
    train_words = {word(p) for p, _ in train if not p.startswith("add")}
    val_words = {word(p) for p, _ in val if not p.startswith("add")}
    assert val_words and not (train_words & val_words)
    assert make_instruction_data(
        [f"w{i:02d}" for i in range(30)], 10, 5, seed=3
    ) == make_instruction_data([f"w{i:02d}" for i in range(30)], 10, 5, seed=3)  # reproducible


def test_prompt_and_padding_are_masked_and_the_response_is_not():
    pairs = [("upper: ab" + SEPARATOR, "AB\n")]
    inputs, targets = encode_examples(pairs, TOK.encode, block_size=20, pad_id=0)
    text = "upper: ab" + SEPARATOR + "AB\n"
    n_prompt = len("upper: ab" + SEPARATOR)
    graded = [t for t in range(20) if targets[0, t] != IGNORE]
    # graded positions: the last prompt position (predicts "A"), then "A" (predicts "B"), then "B" (predicts "\n")
    assert graded == [n_prompt - 1, n_prompt, n_prompt + 1]
    assert TOK.decode(targets[0, graded].tolist()) == "AB\n"
    assert TOK.decode(inputs[0, : len(text) - 1].tolist()) == text[:-1]
    unmasked_inputs, unmasked = encode_examples(
        pairs, TOK.encode, block_size=20, pad_id=0, mask_prompt=False
    )
    assert torch.equal(unmasked_inputs, inputs)
    assert int((unmasked != IGNORE).sum()) == len(text) - 1  # every real position, still no padding


def test_masked_loss_is_the_mean_over_response_tokens_only():
    pairs = [("add: 1 + 2" + SEPARATOR, "3\n"), ("sort: cba" + SEPARATOR, "abc\n")]
    inputs, targets = encode_examples(pairs, TOK.encode, block_size=24, pad_id=0)
    logits = torch.randn(2, 24, TOK.vocab_size, generator=torch.Generator().manual_seed(0))
    keep = targets != IGNORE
    manual = -F.log_softmax(logits, -1)[keep].gather(-1, targets[keep][:, None]).mean()
    torch.testing.assert_close(next_token_loss(logits, targets), manual)
    assert int(keep.sum()) == len("3\n") + len("abc\n")


def test_too_long_examples_and_unknown_tasks_are_errors():
    with pytest.raises(ValueError, match="block_size"):
        encode_examples(
            [("reverse: abcdefgh" + SEPARATOR, "hgfedcba\n")], TOK.encode, block_size=10, pad_id=0
        )
    with pytest.raises(ValueError, match="Unknown tasks"):
        make_instruction_data([f"w{i:02d}" for i in range(30)], tasks=["translate"])


class Oracle(torch.nn.Module):
    """A fake model that 'writes' a fixed completion: it puts all its logit mass on the next character of it."""

    block_size = None

    def __init__(self, full_text):
        super().__init__()
        self.ids = TOK.encode(full_text)
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, tokens):
        t = tokens.shape[1]
        logits = torch.zeros(1, t, TOK.vocab_size)
        nxt = self.ids[t] if t < len(self.ids) else 0
        logits[0, -1, nxt] = 10.0
        return logits


def test_exact_match_cuts_at_the_newline():
    prompt = "upper: ab" + SEPARATOR
    right = Oracle(prompt + "AB\nextra words")
    wrong = Oracle(prompt + "AC\n")
    assert exact_match(right, [(prompt, "AB\n")], TOK.encode, TOK.decode) == 1.0
    assert exact_match(wrong, [(prompt, "AB\n")], TOK.encode, TOK.decode) == 0.0


def test_an_example_without_a_prompt_is_refused_rather_than_masked_away():
    # targets[:len(prompt) - 1] with an empty prompt is targets[:-1]: the whole response would be masked
    with pytest.raises(ValueError, match="Example 1 has an empty prompt"):
        encode_examples([("ab", "c\n"), ("", "ab\n")], TOK.encode, 8, 0)
    inputs, targets = encode_examples([("", "ab\n")], TOK.encode, 8, 0, mask_prompt=False)
    assert targets[0, :2].tolist() == TOK.encode("b\n")
