"""genai_lib.finetune: each method trains exactly its share of the model, and the base is never changed."""

import pytest
import torch

from genai_lib.finetune import METHODS, prepare, training_state_mb
from genai_lib.models import GPT, GPTConfig, LoRALinear
from genai_lib.models.lora import trainable_parameters


def base():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=20, block_size=16, n_layer=3, n_head=2, n_embd=32)).eval()


def trainable_names(model):
    return {name for name, p in model.named_parameters() if p.requires_grad}


def test_each_method_trains_what_it_says_and_leaves_the_base_alone():
    model = base()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    full, frozen, lora = (prepare(model, m, frozen_blocks=1) for m in ("full", "frozen", "lora"))
    scratch = prepare(model, "scratch")

    assert trainable_names(full) == {name for name, _ in model.named_parameters()}
    assert trainable_names(frozen) == {
        n
        for n, _ in model.named_parameters()
        if n.startswith(("blocks.2.", "norm.", "token_embedding."))
    }
    assert all(".lora_" in n for n in trainable_names(lora))
    # four projections per block
    assert len([m for m in lora.modules() if isinstance(m, LoRALinear)]) == 4 * 3
    # r (in + out) per projection: qkv 32 -> 96, proj 32 -> 32, up 32 -> 128, down 128 -> 32; rank 4, 3 blocks
    assert trainable_parameters(lora)[0] == 3 * 4 * (
        (32 + 96) + (32 + 32) + (32 + 128) + (128 + 32)
    )
    assert not torch.equal(scratch.token_embedding.weight, model.token_embedding.weight)
    assert all(m.training for m in (full, frozen, lora, scratch))

    # training a copy changes the copy only
    for m in (full, frozen, lora):
        torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.1)
        x = torch.randint(20, (2, 16))
        m(x).sum().backward()
        for p in m.parameters():
            if p.grad is not None:
                p.data -= 0.1 * p.grad
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert not any(isinstance(m, LoRALinear) for m in model.modules())


def test_training_state_memory_counts_gradients_and_adam_state_of_trainable_weights_only():
    model = base()
    n_total = sum(p.numel() for p in model.parameters())
    full = prepare(model, "full")
    # weight, grad, two Adam moments
    assert training_state_mb(full) == pytest.approx(4 * n_total * 4 / 2**20)
    lora = prepare(model, "lora", lora_r=2)
    n_lora, n_all = trainable_parameters(lora)
    assert training_state_mb(lora) == pytest.approx((n_all + 3 * n_lora) * 4 / 2**20)


def test_prepare_refuses_unknown_methods_and_impossible_settings():
    with pytest.raises(ValueError, match="Unknown fine-tuning method"):
        prepare(base(), "qlora")
    with pytest.raises(ValueError, match="frozen_blocks"):
        prepare(base(), "frozen", frozen_blocks=4)
    assert set(METHODS) == {"scratch", "full", "frozen", "lora"}
