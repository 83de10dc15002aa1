"""Byte-level BPE: round trips on any text, what merges learn, compression, saving, errors."""

import random

import pytest
import torch

from genai_lib.data import (
    BPETokenizer,
    CharTokenizer,
    UnknownCharacterError,
    load_text,
    tokenizer_from_dict,
)
from genai_lib.data.bpe import split_chunks

SAMPLES = [
    "",
    "a",
    "hello world",
    "  leading and trailing  ",
    "tabs\tand\nnewlines\r\n",
    "snake_case_name = 42_000",
    "naïve café — “quotes” 😀 ∑ 日本語",
    "\x00\x7f control",
]


def random_text(seed: int, n: int = 200) -> str:
    """Common characters mixed with 20 code points from anywhere in Unicode (surrogates excluded)."""
    rng = random.Random(seed)
    common = "".join(
        rng.choice("abc xyz_ 123.,!\n\t\u00e9\u00fc\u65e5\U0001f600\u0301") for _ in range(n)
    )
    rare = "".join(
        chr(rng.choice([rng.randrange(1, 0xD800), rng.randrange(0xE000, 0x110000)]))
        for _ in range(20)
    )
    return common + rare


@pytest.fixture(scope="module")
def tokenizer():
    return BPETokenizer.train(load_text("pydoc")[:50_000], vocab_size=300)


def test_chunks_join_back_into_the_text():
    for text in SAMPLES + [random_text(s) for s in range(5)]:
        assert "".join(split_chunks(text)) == text


def test_any_text_round_trips(tokenizer):
    assert tokenizer.vocab_size == 300
    for text in SAMPLES + [random_text(s) for s in range(10)]:
        ids = tokenizer.encode(text)
        assert all(0 <= i < 300 for i in ids)
        assert tokenizer.decode(ids) == text


def test_merges_shorten_common_text_and_stay_within_words(tokenizer):
    text = load_text("pydoc")[:50_000]
    # every merge was learned from a pair seen at least twice, so each one shortens the training text
    lengths = [len(BPETokenizer(tokenizer.merges[:k]).encode(text)) for k in (0, 10, 20, 44)]
    assert lengths[0] == len(text.encode()) and lengths == sorted(lengths, reverse=True)
    assert len(set(lengths)) == 4
    for token_id in range(256, tokenizer.vocab_size):
        piece = tokenizer.token_str(token_id)
        assert split_chunks(piece) == [piece], piece  # no token spans two chunks


def test_training_counts_pairs_correctly():
    # "aaab aab": pairs (a,a) x3, (a,b) x2, ( ,a) x1 -> the first merge is (a, a)
    tok = BPETokenizer.train("aaab aab", vocab_size=258)
    assert tok.merges[0] == (ord("a"), ord("a"))
    assert tok.decode([256]) == "aa"
    # nothing repeats in "abc": no merge is learned
    assert BPETokenizer.train("abc", vocab_size=300).merges == []


def test_encoding_applies_merges_in_learned_order():
    tok = BPETokenizer([(ord("b"), ord("c")), (ord("a"), ord("b"))])  # bc first, then ab
    # in "abc" the earlier merge (b, c) wins, so (a, b) never applies
    assert tok.encode("abc") == [ord("a"), 256]
    assert tok.encode("abd") == [257, ord("d")]


def test_saved_tokenizer_rebuilds_exactly(tokenizer):
    again = tokenizer_from_dict(tokenizer.to_dict())
    assert again == tokenizer and again.encode("print(x)") == tokenizer.encode("print(x)")
    assert tokenizer_from_dict(CharTokenizer("ab").to_dict()) == CharTokenizer("ab")
    with pytest.raises(ValueError, match="Unknown tokenizer type"):
        tokenizer_from_dict({"type": "wordpiece"})


def test_bad_ids_and_merges_are_refused(tokenizer):
    with pytest.raises(ValueError, match="not in \\[0, 300\\)"):
        tokenizer.decode([300])
    with pytest.raises(ValueError, match="1-D tensor"):
        tokenizer.decode(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="does not exist yet"):
        BPETokenizer([(ord("a"), 300)])
    with pytest.raises(ValueError, match="at least the 256"):
        BPETokenizer.train("abc", vocab_size=100)


def test_a_partial_character_decodes_to_a_replacement_not_an_error():
    tok = BPETokenizer([])
    ids = tok.encode("é")  # two bytes
    assert tok.decode(ids[:1]) == "\ufffd"


def test_char_tokenizer_names_the_unknown_character_where_bpe_falls_back_to_bytes(tokenizer):
    chars = CharTokenizer.from_text("hello world")
    with pytest.raises(UnknownCharacterError, match="'!'"):
        chars.encode("hello!")
    assert tokenizer.decode(tokenizer.encode("hello!")) == "hello!"


def test_token_str_and_encode_check_their_input():
    tok = BPETokenizer.train("low lower lowest " * 20, vocab_size=260)
    for bad in (-1, tok.vocab_size):
        with pytest.raises(ValueError, match=rf"Token id {bad} is not in \[0, {tok.vocab_size}\)"):
            tok.token_str(bad)
    char = CharTokenizer.from_text("abc")
    for bad in (["ab"], b"ab"):
        with pytest.raises(TypeError, match=r"encode takes a str.*got"):
            char.encode(bad)
