"""The shipped base model: saved as safetensors with a SHA-256, refused when tampered, reproducible."""

import json

import pytest
import torch

from genai_lib.pretrained import ASCII_VOCAB, DEFAULT_DIR, BaseModelError, load_base, pretrain_base


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    folder = tmp_path_factory.mktemp("base")
    pretrain_base(folder, steps=3, progress=False, command="test")
    return folder


def test_saved_base_loads_with_the_same_logits(tiny_base):
    model, tokenizer, meta = load_base(tiny_base)
    assert meta["steps"] == 3 and meta["command"] == "test" and len(meta["sha256"]) == 64
    assert tokenizer.chars == list(ASCII_VOCAB)
    assert model.lm_head.weight is model.token_embedding.weight  # tied again after loading
    again, _, _ = load_base(tiny_base)
    x = torch.tensor([tokenizer.encode("def f(x):\n    return x")])
    with torch.no_grad():
        assert torch.equal(model(x), again(x))


def test_the_same_command_gives_the_same_file(tiny_base, tmp_path):
    pretrain_base(tmp_path, steps=3, progress=False, command="test")
    first = json.loads((tiny_base / "base_pydoc.json").read_text())
    second = json.loads((tmp_path / "base_pydoc.json").read_text())
    assert first["sha256"] == second["sha256"]


def test_a_tampered_or_missing_file_is_refused(tiny_base, tmp_path):
    for name in ("base_pydoc.json", "base_pydoc.safetensors"):
        (tmp_path / name).write_bytes((tiny_base / name).read_bytes())
    weights = tmp_path / "base_pydoc.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # flip the bits of one byte of one weight
    weights.write_bytes(bytes(data))
    with pytest.raises(
        BaseModelError, match="does not match its recorded SHA-256.*python -m genai_lib pretrain"
    ):
        load_base(tmp_path)
    weights.write_bytes(bytes(data[:1000]))  # truncated
    with pytest.raises(BaseModelError, match="truncated"):
        load_base(tmp_path)
    weights.unlink()
    with pytest.raises(BaseModelError, match="missing"):
        load_base(tmp_path)
    with pytest.raises(BaseModelError, match="No pretrained base"):
        load_base(tmp_path / "elsewhere")


def test_the_shipped_base_matches_its_checksum():
    if not (DEFAULT_DIR / "base_pydoc.json").is_file():
        pytest.fail(
            f"The pretrained base is missing from {DEFAULT_DIR}; run python -m genai_lib pretrain."
        )
    model, tokenizer, meta = load_base()
    assert (DEFAULT_DIR / meta["weights_file"]).stat().st_size < 10 * 1024 * 1024
    # it learned English: far below the 4.5-bit unigram floor (held-out entropy)
    assert meta["val_bits_per_char"] < 2.5
