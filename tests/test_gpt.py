"""The GPT: causal mask, KV cache, shapes and errors, saving and loading, training through fit."""

import pytest
import torch
from torch.nn import functional as F

from genai_lib.checkpoint import CheckpointError, CheckpointMismatchError, load_model, save_model
from genai_lib.data import CharTokenizer, TokenWindows, tokenizer_from_dict
from genai_lib.losses import next_token_loss
from genai_lib.models import GPT, LSTMLM, MLPLM, VAE, BigramLM, GPTConfig
from genai_lib.train import fit

TOL = dict(rtol=1e-5, atol=1e-5)  # float32 arithmetic done in another order


def tiny_gpt(seed=0, **overrides):
    torch.manual_seed(seed)
    settings = dict(vocab_size=11, block_size=16, n_layer=2, n_head=2, n_embd=16)
    settings.update(overrides)
    return GPT(GPTConfig(**settings)).eval()


def random_tokens(shape, vocab=11, seed=1):
    return torch.randint(vocab, shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    "make", [tiny_gpt, lambda: MLPLM(11, context=3).eval(), lambda: LSTMLM(11, hidden=8).eval()]
)
def test_changing_future_tokens_leaves_earlier_logits_identical(make):
    model = make()
    tokens = random_tokens((2, 12))
    changed = tokens.clone()
    changed[:, 7:] = (changed[:, 7:] + 3) % 11  # change every token from position 7 on
    with torch.no_grad():
        before, after = model(tokens), model(changed)
    assert torch.equal(before[:, :7], after[:, :7])  # positions 0..6 cannot see positions >= 7
    # and the change does reach later positions
    assert not torch.allclose(before[:, 7:], after[:, 7:])


def test_attention_matches_explicit_masked_softmax():
    model = tiny_gpt()
    attn = model.blocks[0].attn
    x = torch.randn(2, 5, 16)
    B, T, C = x.shape
    q, k, v = (t.view(B, T, 2, 8).transpose(1, 2) for t in attn.qkv(x).split(C, dim=2))
    scores = q @ k.transpose(-2, -1) / 8**0.5
    scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    expected = attn.proj((scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, C))
    torch.testing.assert_close(attn(x), expected, **TOL)


def test_kv_cache_gives_the_same_logits_as_the_full_forward():
    model = tiny_gpt()
    tokens = random_tokens((3, 14))
    with torch.no_grad():
        full = model(tokens)
        cache = model.new_cache(batch_size=3)
        pieces = [model(tokens[:, :5], cache)]  # a prompt of 5, then 4 + 1 + 4 more
        pieces += [
            model(tokens[:, 5:9], cache),
            model(tokens[:, 9:10], cache),
            model(tokens[:, 10:], cache),
        ]
    assert cache.length == 14
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, **TOL)


def test_weight_tying_and_parameter_count():
    model = tiny_gpt()
    assert model.lm_head.weight is model.token_embedding.weight
    # per block: qkv 3C^2 + proj C^2 + MLP 8C^2, two LayerNorm gains; token table V*C; final gain
    C, V, L = 16, 11, 2
    expected = L * (12 * C * C + 2 * C) + V * C + C
    assert model.num_parameters() == expected
    assert model.num_parameters(include_position_embedding=True) == expected + 16 * C


def test_bad_inputs_give_clear_errors():
    model = tiny_gpt()
    with pytest.raises(ValueError, match="block_size of 16"):
        model(random_tokens((1, 17)))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model(torch.tensor([[1, 2, 11]]))
    with pytest.raises(ValueError, match="integer token ids"):
        model(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="integer token ids"):
        model(torch.tensor([1, 2, 3]))
    cache = model.new_cache(batch_size=1)
    model(random_tokens((1, 10)), cache)
    with pytest.raises(ValueError, match="after the 10 cached ones"):
        model(random_tokens((1, 7)), cache)
    with pytest.raises(ValueError, match="multiple of n_head"):
        GPTConfig(vocab_size=5, n_embd=10, n_head=4)
    with pytest.raises(ValueError, match="Token ids must be in"):
        BigramLM(5)(torch.tensor([[5]]))


def test_saved_and_loaded_gpt_gives_identical_logits(tmp_path):
    model = tiny_gpt(dropout=0.1, bias=True)
    tokenizer = CharTokenizer("abcdefghijk")
    path = save_model(tmp_path / "gpt.pt", model, tokenizer)
    loaded, tok_state = load_model(path, GPT, GPTConfig)
    tokens = random_tokens((2, 16))
    with torch.no_grad():
        assert torch.equal(loaded(tokens), model(tokens))
    assert loaded.config == model.config
    assert tokenizer_from_dict(tok_state) == tokenizer
    assert loaded.lm_head.weight is loaded.token_embedding.weight  # still tied after loading


def test_loading_the_wrong_or_a_broken_file_says_so(tmp_path):
    path = save_model(tmp_path / "gpt.pt", tiny_gpt())
    with pytest.raises(CheckpointMismatchError, match="holds a GPT, not a VAE"):
        load_model(path, VAE, GPTConfig)
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CheckpointError, match="truncated, corrupt"):
        load_model(truncated, GPT, GPTConfig)
    with pytest.raises(CheckpointError, match="No saved model"):
        load_model(tmp_path / "missing.pt", GPT, GPTConfig)


def test_next_token_loss_is_the_mean_negative_log_likelihood():
    logits = torch.randn(2, 3, 5)
    targets = torch.randint(5, (2, 3))
    log_probs = logits.log_softmax(-1)
    expected = -log_probs.gather(-1, targets[..., None]).mean()
    torch.testing.assert_close(next_token_loss(logits, targets), expected)
    with pytest.raises(ValueError, match=r"logits \(B, T, V\)"):
        next_token_loss(logits, targets[:, :2])


def test_token_windows_are_shifted_pairs_and_reproducible():
    tokens = torch.arange(100)
    windows = TokenWindows(tokens, block_size=8, batch_size=4, seed=3)
    x, y = windows(5)
    assert x.shape == y.shape == (4, 8)
    assert torch.equal(y, x + 1)  # on 0, 1, 2, ... the next token is the token plus one
    assert torch.equal(windows(5)[0], x) and not torch.equal(windows(6)[0], x)
    assert int(x.max()) <= 98  # a window's target never runs past the end
    with pytest.raises(ValueError, match="too few"):
        TokenWindows(tokens[:8], block_size=8, batch_size=2)


def test_gpt_learns_a_repeating_pattern_through_fit():
    # "abcabc..." is fully predictable after one token: the loss must fall well below log(3)
    tokens = torch.arange(300) % 3
    model = GPT(GPTConfig(vocab_size=3, block_size=8, n_layer=1, n_head=1, n_embd=16))
    windows = TokenWindows(tokens, block_size=8, batch_size=8)
    history = fit(
        model,
        lambda b: next_token_loss(model(b[0]), b[1]),
        windows,
        steps=60,
        lr=1e-2,
        device="cpu",
        progress=False,
        log_every=10,
    )
    first, last = history.get("loss")[1][0], history.last("loss")
    assert first > 0.9 and last < 0.1, (first, last)


def test_weight_decay_reaches_matrices_only():
    model = tiny_gpt(bias=True)
    from genai_lib.train import decay_groups

    decayed, plain = decay_groups(model, 0.1)
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decayed["params"]) and all(
        p.dim() == 1 for p in plain["params"]
    )
    assert sum(p.numel() for g in (decayed, plain) for p in g["params"]) == model.num_parameters(
        True
    )


def test_neural_bigram_converges_to_the_counts():
    tokens = torch.tensor([0, 1, 2, 1, 0, 1, 1, 2, 0, 2, 2, 1, 0] * 5)
    counts = torch.zeros(3, 3)
    counts.index_put_((tokens[:-1], tokens[1:]), torch.ones(len(tokens) - 1), accumulate=True)
    model = BigramLM(3)
    x, y = tokens[:-1][None], tokens[1:][None]
    history = fit(
        model,
        lambda b: next_token_loss(model(b[0]), b[1]),
        lambda step: (x, y),
        steps=400,
        lr=0.1,
        device="cpu",
        progress=False,
        schedule="constant",
        grad_clip=None,
    )
    count_model = counts / counts.sum(1, keepdim=True)
    learned = model.logits.weight.softmax(-1)
    torch.testing.assert_close(learned, count_model, atol=2e-3, rtol=0)
    # and its loss is the count model's negative log-likelihood: the minimum
    count_nll = -count_model.log()[tokens[:-1], tokens[1:]].mean()
    assert abs(history.last("loss") - count_nll.item()) < 1e-4


def test_cross_entropy_equals_softmax_nll_for_gpt_logits():
    # F.cross_entropy takes raw logits; feeding it softmax outputs would be a silent bug
    model = tiny_gpt()
    tokens = random_tokens((1, 6))
    logits = model(tokens[:, :-1])
    manual = -F.log_softmax(logits, -1)[0, torch.arange(5), tokens[0, 1:]].mean()
    torch.testing.assert_close(next_token_loss(logits, tokens[:, 1:]), manual)
