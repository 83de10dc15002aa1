"""Chapter 04's `base="gpt2"` path, executed end to end offline.

In Colab the parameter loads GPT-2 124M from the hub. Here the same cells run on a tiny, randomly
initialised GPT-2 saved locally (`base` may name a folder written by save_pretrained), with a byte-level
BPE tokenizer: everything that differs from the course base (the transformers loader, a BPE tokenizer,
nats per character from nats per token, the learning-rate defaults) is exercised, and nothing is downloaded.
"""

from pathlib import Path

from genai_lib.runner import run_chapter

CHAPTER = Path(__file__).resolve().parent.parent / "chapters" / "04_finetuning.ipynb"


def test_chapter_04_runs_on_a_gpt2_model(tiny_gpt2_folder, tmp_path):
    folder, _ = tiny_gpt2_folder
    result = run_chapter(
        CHAPTER,
        tmp_path,
        fast=True,
        parameters={
            "base": str(folder),
            "adapt_steps": 3,
            "instruct_steps": 3,
            "n_instruct_val": 5,
            "eval_chars": 2000,
        },
    )
    assert result.ok, result.error
