"""GPT-2 from the Hugging Face hub, as a ``genai_lib.models.GPT``, on request only.

Chapter 04 runs on the course's own small base model by default, offline. With
``base="gpt2"`` (for example in Colab, on a GPU) it fine-tunes OpenAI's GPT-2
instead: :func:`load_gpt2` fetches the weights and the BPE tokenizer with
``transformers`` (about 550 MB the first time, then from the local cache in
``~/.cache/huggingface``), checks the weights file against the SHA-256 the hub
names it by, and converts the model with :meth:`GPT.from_hf`. Nothing here runs
unless it is called.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from genai_lib.data.download import sha256_file
from genai_lib.models.gpt import GPT


class HubError(RuntimeError):
    """A model could not be fetched from the Hugging Face hub, or its file did not verify."""


class HFTokenizer:
    """A Hugging Face tokenizer with the course's interface.

    ``encode(str) -> list[int]``, ``decode`` and ``vocab_size``, as the course's own tokenizers.
    """

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        # we cut text into windows ourselves; silence the length warning
        self.tokenizer.model_max_length = 10**12
        self.vocab_size = len(tokenizer)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(list(ids))


def _verify_hub_file(name: str, filename: str) -> None:
    """Check a cached hub file against its content address (large files are stored under their SHA-256)."""
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(name, filename)
    if not isinstance(cached, str):
        return  # a local folder, or a cache layout without content-addressed blobs: nothing to check against
    blob = Path(os.path.realpath(cached))
    if re.fullmatch(r"[0-9a-f]{64}", blob.name) and sha256_file(blob) != blob.name:
        raise HubError(
            f"{cached} does not match its SHA-256 ({blob.name}): the download is corrupt. Delete "
            f"{blob} and run again to fetch it anew."
        )


def load_gpt2(name: str = "gpt2") -> tuple[GPT, HFTokenizer, dict[str, Any]]:
    """``(model in eval mode, tokenizer, info)`` for a GPT-2 checkpoint: a hub name or a local folder.

    ``name``: ``"gpt2"`` (124M parameters), ``"gpt2-medium"``, ... or a folder
    written by ``save_pretrained``. Raises :class:`HubError` with what to do if
    the download fails (no network, a misspelt name).
    """
    import transformers

    try:
        hf_model = transformers.GPT2LMHeadModel.from_pretrained(name)
        tokenizer = transformers.AutoTokenizer.from_pretrained(name)
    except OSError as err:
        raise HubError(
            f"Could not load {name!r} from the Hugging Face hub or a local folder: {err}\n"
            f"The first load needs a network connection (about 550 MB for 'gpt2'); later loads use the "
            f"cache in ~/.cache/huggingface. Offline, use the course's own base: base='course'."
        ) from None
    if not Path(name).is_dir():
        _verify_hub_file(name, "model.safetensors")
    model = GPT.from_hf(hf_model)
    info = {
        "name": name,
        "parameters": model.num_parameters(),
        "tokenizer": type(tokenizer).__name__,
    }
    return model, HFTokenizer(tokenizer), info
