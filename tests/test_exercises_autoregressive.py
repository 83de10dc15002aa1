"""Chapter 03's exercise checkers accept a right answer and reject the usual wrong ones with a hint."""
import math

import pytest
import torch
from torch.nn import functional as F

from genai_lib.exercises import ExerciseError
from genai_lib.exercises import autoregressive as ex


def test_smoothed_bigram_checker():
    ex.check_smoothed_bigram(lambda c, a: (c + a) / (c.sum(1, keepdim=True) + a * c.shape[1]))
    with pytest.raises(ExerciseError, match="must sum to 1"):  # alpha added to the counts but not to the total
        ex.check_smoothed_bigram(lambda c, a: (c + a) / (c.sum(1, keepdim=True) + a))
    with pytest.raises(ExerciseError, match="Not done yet"):
        ex.check_smoothed_bigram(lambda c, a: (_ for _ in ()).throw(NotImplementedError()))


def test_bits_and_perplexity_checker():
    def right(p):
        b = -torch.log2(p).mean().item()
        return b, 2 ** b
    ex.check_bits_and_perplexity(right)
    with pytest.raises(ExerciseError, match="log base 2"):
        ex.check_bits_and_perplexity(lambda p: (-torch.log(p).mean().item(), 4.0))
    with pytest.raises(ExerciseError, match="exponentiate"):  # averaging perplexities instead of bits
        ex.check_bits_and_perplexity(lambda p: (-torch.log2(p).mean().item(), (1 / p).mean().item()))


def test_context_windows_checker():
    ex.check_context_windows(lambda t, n, pad: F.pad(t, (n - 1, 0), value=pad).unfold(1, n, 1))
    with pytest.raises(ExerciseError, match="t \\+ 1"):  # windows shifted one too far: they include the target
        ex.check_context_windows(lambda t, n, pad: F.pad(t, (n - 2, 1), value=pad).unfold(1, n, 1))


def test_causal_attention_checker():
    ex.check_causal_attention(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True))
    with pytest.raises(ExerciseError, match="no causal mask"):
        ex.check_causal_attention(lambda q, k, v: F.scaled_dot_product_attention(q, k, v))
    with pytest.raises(ExerciseError, match="sqrt"):
        ex.check_causal_attention(lambda q, k, v: F.scaled_dot_product_attention(q * math.sqrt(q.shape[-1]), k, v,
                                                                                   is_causal=True))


def test_top_k_and_merge_checkers():
    from genai_lib.data.bpe import _merge
    from genai_lib.sample import filter_logits

    ex.check_top_k_filter(lambda logits, k: filter_logits(logits, top_k=k))
    with pytest.raises(ExerciseError, match="its own"):  # one threshold for the whole batch
        ex.check_top_k_filter(lambda logits, k: logits.masked_fill(logits < logits.flatten().topk(k).values[-1],
                                                                    float("-inf")))
    ex.check_bpe_merge(_merge)
    with pytest.raises(ExerciseError, match="skip both"):
        ex.check_bpe_merge(lambda ids, pair, new: [new if (a, b) == pair else a for a, b in zip(ids, ids[1:] + [None])])
