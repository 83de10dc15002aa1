"""Fixtures shared by several test files, and how the suite shares the machine's cores."""

import logging
import os

# `pytest` runs its files in parallel (pytest-xdist, `-n auto --dist loadfile` in pyproject.toml). Each worker,
# and each notebook kernel it starts, gets its share of the cores: with more threads than cores, torch's
# threads wait on one another and the suite ran more than twice as slow. Set before torch is imported.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))

import pytest  # noqa: E402
import torch  # noqa: E402

MAX_WORKERS = 4  # each worker may run a notebook kernel of up to about 1 GB


def pytest_xdist_auto_num_workers(config):
    """`-n auto`: a worker per core, at most MAX_WORKERS."""
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


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
    config = transformers.GPT2Config(
        vocab_size=260, n_positions=256, n_embd=32, n_layer=2, n_head=2
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    model.save_pretrained(folder)
    vocab = {symbol: i for i, symbol in enumerate(byte_symbols().values())}
    transformers.GPT2Tokenizer(vocab=vocab, merges=[]).save_pretrained(folder)
    return folder, model
