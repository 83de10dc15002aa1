"""LoRA: merge equivalence, frozen base weights; loading GPT-2 weights from transformers; parity with peft.

The GPT-2 models here are tiny and randomly initialised from a local GPT2Config: nothing is downloaded.
"""

import logging
import warnings

import pytest
import torch
from torch import nn

from genai_lib.checkpoint import load_model, save_model
from genai_lib.lm import train_lm
from genai_lib.losses import next_token_loss
from genai_lib.models import GPT, GPTConfig
from genai_lib.models.lora import (
    LoRALinear,
    inject_lora,
    lora_layers,
    merge_lora,
    trainable_parameters,
    unmerge_lora,
)
from genai_lib.train import fit

transformers = pytest.importorskip("transformers")
# silence the tiny config's token-id warnings
logging.getLogger("transformers").setLevel(logging.ERROR)


def tiny_gpt(seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=13, block_size=16, n_layer=2, n_head=2, n_embd=32))


def with_trained_adapters(model, seed=1, r=4, alpha=8.0):
    """Inject LoRA and give the B matrices random values (they start at 0, which would test nothing)."""
    layers = inject_lora(model, r=r, alpha=alpha)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in layers:
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=g) * 0.1)
    return layers


def tokens(batch=2, length=16, vocab=13, seed=2):
    return torch.randint(vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


def test_lora_starts_as_the_base_model_and_trains_only_its_matrices():
    model = tiny_gpt().eval()
    x = tokens()
    with torch.no_grad():
        before = model(x)
    layers = inject_lora(model, r=4, alpha=8.0)
    assert len(layers) == 2 * 4  # qkv, attention proj, MLP up, MLP proj in each of 2 blocks
    with torch.no_grad():
        assert torch.equal(model(x), before)  # B = 0: exactly the pretrained model
    trainable, total = trainable_parameters(model)
    assert trainable == sum(l.lora_A.numel() + l.lora_B.numel() for l in layers)
    assert trainable / total < 0.2
    assert all(p.requires_grad == ("lora_" in name) for name, p in model.named_parameters())


def test_merged_model_gives_the_same_logits_and_unmerge_restores_the_weights():
    model = tiny_gpt().eval()
    layers = with_trained_adapters(model)
    base_weights = [l.base.weight.detach().clone() for l in layers]
    x = tokens()
    with torch.no_grad():
        unmerged = model(x)
        merge_lora(model)
        merged = model(x)
    assert all(l.merged for l in layers)
    # the update is in the weight now
    assert not torch.allclose(layers[0].base.weight, base_weights[0])
    torch.testing.assert_close(merged, unmerged, rtol=1e-5, atol=1e-5)
    unmerge_lora(model)
    for layer, weight in zip(layers, base_weights):
        torch.testing.assert_close(layer.base.weight, weight, rtol=0, atol=1e-6)


def test_lora_training_leaves_every_base_weight_untouched():
    model = tiny_gpt()
    layers = inject_lora(model, r=2, alpha=4.0)
    frozen = {
        name: p.detach().clone() for name, p in model.named_parameters() if not p.requires_grad
    }
    lora_before = layers[0].lora_B.detach().clone()
    data = torch.arange(400) % 13
    x = torch.stack([data[i : i + 16] for i in range(0, 300, 7)])
    y = torch.stack([data[i + 1 : i + 17] for i in range(0, 300, 7)])
    history = fit(
        model,
        lambda b: next_token_loss(model(b[0]), b[1]),
        (x, y),
        steps=30,
        batch_size=8,
        lr=1e-2,
        weight_decay=0.1,
        device="cpu",
        progress=False,
        log_every=10,
    )
    assert history.last("loss") < history.get("loss")[1][0]  # it learned something
    assert not torch.equal(layers[0].lora_B, lora_before)
    for name, p in model.named_parameters():
        if name in frozen:
            assert torch.equal(p, frozen[name]), name  # not even weight decay touched them


def test_lora_errors():
    with pytest.raises(ValueError, match="rank"):
        LoRALinear(torch.nn.Linear(4, 4), r=0)
    with pytest.raises(ValueError, match="No nn.Linear"):
        inject_lora(tiny_gpt(), targets=("attn.query",))


def tiny_gpt2(activation="gelu_new", seed=0):
    config = transformers.GPT2Config(
        vocab_size=50,
        n_positions=16,
        n_embd=32,
        n_layer=2,
        n_head=2,
        activation_function=activation,
    )
    torch.manual_seed(seed)
    model = transformers.GPT2LMHeadModel(config).eval()
    # random biases and norm parameters, so that a mapping mistake cannot hide behind zeros/ones
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                p.add_(torch.randn_like(p) * 0.1)
    return model


@pytest.mark.parametrize("activation", ["gelu_new", "gelu"])
def test_gpt2_weights_load_with_identical_logits(activation):
    hf = tiny_gpt2(activation)
    ours = GPT.from_hf(hf)
    x = tokens(vocab=50)
    with torch.no_grad():
        expected = hf(x).logits
        got = ours(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert ours.config.bias and ours.config.gelu == (
        "tanh" if activation == "gelu_new" else "exact"
    )


def test_from_hf_refuses_other_models():
    bert_like = transformers.GPT2LMHeadModel(
        transformers.GPT2Config(n_embd=8, n_layer=1, n_head=2, vocab_size=10, n_positions=8)
    )
    bert_like.config.model_type = "bert"
    with pytest.raises(ValueError, match="GPT-2"):
        GPT.from_hf(bert_like)


def test_our_lora_equals_peft_lora_with_the_same_adapter_weights():
    peft = pytest.importorskip("peft")
    warnings.filterwarnings("ignore", category=UserWarning, module="peft")
    hf = tiny_gpt2()
    ours = GPT.from_hf(hf)
    layers = with_trained_adapters(ours, r=4, alpha=8.0)
    peft_model = peft.get_peft_model(
        hf,
        peft.LoraConfig(
            r=4,
            lora_alpha=8,
            lora_dropout=0.0,
            fan_in_fan_out=True,
            target_modules=["c_attn", "c_proj", "c_fc"],
        ),
    ).eval()
    names = {
        "attn.qkv": "attn.c_attn",
        "attn.proj": "attn.c_proj",
        "mlp.up": "mlp.c_fc",
        "mlp.proj": "mlp.c_proj",
    }
    peft_state = peft_model.state_dict()
    copied = 0
    for name, module in ours.named_modules():
        if isinstance(module, LoRALinear):
            # "blocks.0.attn.qkv" -> "0", "attn.qkv"
            block, _, rest = name.partition(".")[2].partition(".")
            prefix = f"base_model.model.transformer.h.{block}.{names[rest]}"
            peft_state[f"{prefix}.lora_A.default.weight"].copy_(module.lora_A)
            peft_state[f"{prefix}.lora_B.default.weight"].copy_(module.lora_B)
            copied += 1
    assert copied == len(layers) == 8
    x = tokens(vocab=50)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), peft_model(input_ids=x).logits, rtol=1e-5, atol=1e-5)


def test_a_merged_model_round_trips_through_its_state_dict():
    """The merged flag travels with the weights: the update is applied once, not twice."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 3))
    inject_lora(model, r=2, targets=("0", "2"))
    for layer in lora_layers(model):
        nn.init.normal_(layer.lora_B)  # a trained adapter: B is no longer zero
    x = torch.randn(4, 6)
    merge_lora(model)
    want = model(x)
    fresh = nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 3))
    inject_lora(fresh, r=2, targets=("0", "2"))
    fresh.load_state_dict(model.state_dict())
    assert all(layer.merged for layer in lora_layers(fresh))
    torch.testing.assert_close(fresh(x), want, rtol=0, atol=0)
    unmerge_lora(fresh)  # and the adapter can still be taken out again
    unmerge_lora(model)
    torch.testing.assert_close(fresh(x), model(x), rtol=0, atol=0)


# ---------------------------------------------------------------- the lifecycle, misused


def test_injecting_twice_is_refused_and_leaves_the_adapters_trainable():
    model = tiny_gpt()
    inject_lora(model, r=2)
    before = trainable_parameters(model)
    with pytest.raises(
        ValueError, match=r"already has LoRA adapters \(8 layers\).*prepare copies it"
    ):
        inject_lora(model, r=2)
    assert trainable_parameters(model) == before


def test_misspelt_targets_leave_the_model_as_it_was():
    model = tiny_gpt()
    before = trainable_parameters(model)
    with pytest.raises(ValueError, match="No nn.Linear in the model matches"):
        inject_lora(model, targets=["q_proj"])
    assert trainable_parameters(model) == before and before[0] == before[1]


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_lora_adapters_take_the_base_models_dtype(dtype):
    model = tiny_gpt().to(dtype)
    layers = inject_lora(model, r=2)
    assert all(p.dtype == dtype for layer in layers for p in (layer.lora_A, layer.lora_B))
    model(torch.tensor([[1, 2, 3]]))


def test_training_a_merged_lora_model_names_the_cause():
    model = tiny_gpt()
    inject_lora(model, r=2)
    merge_lora(model)
    tokens = torch.randint(0, 13, (200,), generator=torch.Generator().manual_seed(0))
    with pytest.raises(
        ValueError, match="does not depend on any trainable parameter.*unmerge_lora"
    ):
        train_lm(model, tokens, steps=1, block_size=8, batch_size=4, progress=False, device="cpu")


@pytest.mark.parametrize("merged", [False, True])
def test_a_lora_model_saves_as_the_plain_model_it_computes(tmp_path, merged):
    model = tiny_gpt()
    with_trained_adapters(model)
    if merged:
        merge_lora(model)
    model.eval()
    tokens = torch.tensor([[1, 2, 3, 4]])
    expected = model(tokens)
    loaded, _ = load_model(save_model(tmp_path / "lora.pt", model), GPT, GPTConfig)
    assert not lora_layers(loaded)
    # merging adds B A into W in float32: rounding-level differences
    torch.testing.assert_close(loaded(tokens), expected, rtol=1e-5, atol=1e-5)
    assert lora_layers(model) and all(layer.merged == merged for layer in lora_layers(model))
