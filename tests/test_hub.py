"""Loading GPT-2 through transformers (genai_lib.hub), tested on a tiny, randomly initialised GPT-2 saved locally.

Nothing is downloaded: the model and its byte-level tokenizer are written to a temporary folder
(the ``tiny_gpt2_folder`` fixture in conftest.py), and the test configuration sets HF_HUB_OFFLINE=1.
"""

import logging

import pytest
import torch

from genai_lib.hub import HubError, load_gpt2

transformers = pytest.importorskip("transformers")
logging.getLogger("transformers").setLevel(logging.ERROR)


def test_load_gpt2_gives_transformers_logits_and_a_lossless_tokenizer(tiny_gpt2_folder):
    folder, hf_model = tiny_gpt2_folder
    model, tokenizer, info = load_gpt2(str(folder))
    text = "def héllo():\n    return 'wörld'"
    ids = tokenizer.encode(text)
    assert tokenizer.decode(ids) == text
    assert len(ids) == len(text.encode("utf-8"))  # no merges: one token per byte
    x = torch.tensor([ids[:32]])
    with torch.no_grad():
        torch.testing.assert_close(model(x), hf_model(x).logits, atol=1e-5, rtol=1e-5)
    assert info["parameters"] == model.num_parameters()
    assert not model.training


def test_load_gpt2_fails_with_advice_when_the_model_cannot_be_fetched(tmp_path):
    with pytest.raises(HubError, match="base='course'"):
        load_gpt2("no-such-user/no-such-model")  # offline: refused at once, no network attempt
    with pytest.raises(HubError, match="network"):
        load_gpt2(str(tmp_path / "missing"))
