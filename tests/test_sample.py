"""Decoding: top-k, top-p, temperature, and generation with and without the KV cache."""

import pytest
import torch

from genai_lib.models import GPT, LSTMLM, BigramLM, GPTConfig
from genai_lib.sample import filter_logits, generate, next_token_probs, sample_next


def test_top_p_keeps_the_smallest_set_that_reaches_p():
    probs = torch.tensor([0.05, 0.4, 0.1, 0.3, 0.15])
    logits = probs.log()
    # sorted: 0.4, 0.3, 0.15, 0.1, 0.05 -> cumulative 0.4, 0.7, 0.85, 0.95, 1.0
    for p, kept in [
        (0.3, {1}),
        (0.4, {1}),
        (0.41, {1, 3}),
        (0.7, {1, 3}),
        (0.8, {1, 3, 4}),
        (0.9, {1, 3, 4, 2}),
        (1.0, {0, 1, 2, 3, 4}),
    ]:
        out = next_token_probs(logits, top_p=p)
        assert set(torch.nonzero(out).flatten().tolist()) == kept, p
        # the kept tokens keep their relative probabilities
        kept_idx = sorted(kept)
        torch.testing.assert_close(out[kept_idx], probs[kept_idx] / probs[kept_idx].sum())


def test_top_p_works_row_by_row_in_a_batch():
    logits = torch.tensor([[3.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    out = filter_logits(logits, top_p=0.5)
    assert torch.isinf(out).tolist() == [[False, True, True], [True, True, False]]


def test_top_k_keeps_k_tokens():
    logits = torch.tensor([[1.0, 5.0, 3.0, 2.0]])
    assert torch.isfinite(filter_logits(logits, top_k=2)).tolist() == [[False, True, True, False]]
    assert torch.equal(filter_logits(logits, top_k=10), logits)
    with pytest.raises(ValueError, match="top_k"):
        filter_logits(logits, top_k=0)
    with pytest.raises(ValueError, match="top_p"):
        filter_logits(logits, top_p=0.0)


def test_temperature_towards_zero_becomes_greedy():
    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(0))
    greedy = logits.argmax(-1)
    cold = next_token_probs(logits, temperature=1e-3)
    assert torch.equal(cold.argmax(-1), greedy)
    assert bool((cold.max(-1).values > 0.999).all())  # almost all the mass on the argmax
    assert torch.equal(sample_next(logits, temperature=0), greedy)
    g = torch.Generator().manual_seed(1)
    assert torch.equal(sample_next(logits, temperature=1e-3, generator=g), greedy)
    # and a high temperature flattens the distribution towards uniform
    hot = next_token_probs(logits, temperature=1e3)
    torch.testing.assert_close(hot, torch.full_like(hot, 1 / 50), atol=1e-3, rtol=0)


def test_sampling_follows_the_distribution():
    probs = torch.tensor([0.5, 0.3, 0.2])
    g = torch.Generator().manual_seed(0)
    draws = sample_next(probs.log().expand(20000, 3), generator=g)
    freq = torch.bincount(draws, minlength=3) / 20000
    # three standard errors of a proportion from 20,000 draws: about 0.011 at p = 0.5
    torch.testing.assert_close(freq, probs, atol=0.011, rtol=0)


def gpt(block_size=12, seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=7, block_size=block_size, n_layer=2, n_head=2, n_embd=16))


@pytest.mark.parametrize(
    "settings",
    [
        dict(temperature=0),
        dict(temperature=1.0, seed=3),
        dict(temperature=0.8, top_p=0.9, seed=4),
        dict(top_k=3, seed=5),
    ],
)
def test_generation_with_the_cache_equals_generation_without(settings):
    model = gpt()
    prompt = torch.tensor([[1, 2, 3], [4, 5, 6]])
    # 25 new tokens from a prompt of 3 with a block of 12: the window fills, then slides
    with_cache = generate(model, prompt, 25, use_cache=True, **settings)
    without = generate(model, prompt, 25, use_cache=False, **settings)
    assert with_cache.shape == (2, 28)
    assert torch.equal(with_cache, without)
    assert torch.equal(with_cache[:, :3], prompt)


def test_generate_keeps_the_models_mode_and_the_global_random_state():
    model = gpt().train()
    state = torch.get_rng_state()
    generate(model, torch.tensor([1]), 5, seed=0)
    assert model.training and torch.equal(torch.get_rng_state(), state)


def test_generate_works_for_every_language_model_and_shape():
    for model in (BigramLM(7), LSTMLM(7, hidden=8, block_size=4), gpt()):
        out = generate(model, torch.tensor([1, 2]), 6, seed=0)
        assert out.shape == (8,) and int(out.max()) < 7
    assert generate(gpt(), torch.tensor([1, 2]), 0).tolist() == [1, 2]
    with pytest.raises(ValueError, match="T >= 1"):
        generate(gpt(), torch.zeros(1, 0, dtype=torch.long), 3)


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_nan_logits_are_refused_at_every_temperature(temperature):
    logits = torch.randn(2, 11)
    logits[1, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN.*did training diverge"):
        sample_next(logits, temperature)


def test_generate_takes_a_list_of_token_ids():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16))
    out = generate(model, [1, 2, 3], 4, seed=0)
    assert torch.equal(out, generate(model, torch.tensor([1, 2, 3]), 4, seed=0))
    with pytest.raises(ValueError, match="integer token ids"):
        generate(model, [1.0, 2.0], 4)
