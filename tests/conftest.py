"""Fixtures shared by several test files."""
import logging

import pytest
import torch


def byte_symbols() -> dict[int, str]:
    # GPT-2's byte-level BPE shows every byte as a printable character: printable bytes as
    # themselves, the others shifted past 255
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    shifted = [b for b in range(256) if b not in printable]
    return {**{b: chr(b) for b in printable}, **{b: chr(256 + i) for i, b in enumerate(shifted)}}


@pytest.fixture(scope="session")
def tiny_gpt2_folder(tmp_path_factory):
    """A randomly initialised GPT-2 (2 layers, 32-d) and a byte-level tokenizer (256 bytes, no merges), saved
    with ``save_pretrained``: ``(folder, the transformers model)``. Built locally; nothing is downloaded."""
    transformers = pytest.importorskip("transformers")
    logging.getLogger("transformers").setLevel(logging.ERROR)  # the tiny config's token-id warnings
    folder = tmp_path_factory.mktemp("tiny-gpt2")
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=260, n_positions=256, n_embd=32, n_layer=2, n_head=2)
    model = transformers.GPT2LMHeadModel(config).eval()
    model.save_pretrained(folder)
    vocab = {symbol: i for i, symbol in enumerate(byte_symbols().values())}
    transformers.GPT2Tokenizer(vocab=vocab, merges=[]).save_pretrained(folder)
    return folder, model
