"""Muon: the parameter split between torch.optim.Muon and AdamW, and that the pair trains a GPT."""

import pytest
import torch

from genai_lib.models import GPT, MLPLM, GPTConfig
from genai_lib.optim import muon_with_adamw


def test_muon_goes_to_block_matrices_and_adamw_to_the_rest():
    model = GPT(GPTConfig(vocab_size=7, block_size=8, n_layer=2, n_head=2, n_embd=16))
    muon, adam = muon_with_adamw(model)
    assert isinstance(muon, torch.optim.Muon) and isinstance(adam, torch.optim.AdamW)
    matrices = [p for g in muon.param_groups for p in g["params"]]
    assert all(p.dim() == 2 for p in matrices) and len(matrices) == 2 * 4
    others = [p for g in adam.param_groups for p in g["params"]]
    assert any(p is model.token_embedding.weight for p in others)
    assert len(matrices) + len(others) == len(list(model.parameters()))
    with pytest.raises(ValueError, match="no 2-D weights"):
        muon_with_adamw(MLPLM(5))


def test_the_newton_schulz_steps_reach_muon():
    model = GPT(GPTConfig(vocab_size=7, block_size=8, n_layer=1, n_head=2, n_embd=16))
    assert muon_with_adamw(model)[0].defaults["ns_steps"] == 5  # PyTorch's default, kept
    assert muon_with_adamw(model, ns_steps=3)[0].defaults["ns_steps"] == 3


def test_muon_trains_a_gpt_on_a_pattern():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=3, block_size=8, n_layer=1, n_head=1, n_embd=16))
    optimizers = muon_with_adamw(model, muon_lr=0.02, adamw_lr=1e-2)
    tokens = (torch.arange(9) % 3)[None].repeat(4, 1)
    losses = []
    for _ in range(40):
        logits = model(tokens[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten())
        for opt in optimizers:
            opt.zero_grad()
        loss.backward()
        for opt in optimizers:
            opt.step()
        losses.append(loss.item())
    assert losses[0] > 1.0 and losses[-1] < 0.05, (losses[0], losses[-1])
