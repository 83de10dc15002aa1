"""Muon: the Newton-Schulz orthogonalisation, the parameter split, and that it trains."""
import pytest
import torch

from genai_lib.models import GPT, MLPLM, GPTConfig
from genai_lib.optim import muon_with_adamw, orthogonalize


@pytest.mark.parametrize("shape", [(16, 48), (48, 16), (3, 32, 32)])
def test_orthogonalize_keeps_singular_vectors_and_pushes_singular_values_towards_one(shape):
    # a matrix with known singular vectors and singular values spread over 1.3 decades (0.05 to 1)
    g = torch.Generator().manual_seed(0)
    *batch, m, n = shape
    k = min(m, n)
    u, _ = torch.linalg.qr(torch.randn(*batch, m, k, generator=g))
    v, _ = torch.linalg.qr(torch.randn(*batch, n, k, generator=g))
    sigma = torch.logspace(-1.3, 0, k)
    matrix = 7.0 * (u * sigma) @ v.mT
    out = orthogonalize(matrix)
    assert out.shape == matrix.shape
    # the quintic iteration is tuned for speed, not exactness: after 5 steps the singular values
    # lie in about [0.7, 1.2] (Jordan et al.), close enough to 1 for an update direction
    s = torch.linalg.svdvals(out)
    assert float(s.min()) > 0.6 and float(s.max()) < 1.3, (s.min(), s.max())
    # and the singular vectors are the input's: out ~ u diag(s') v^T with every s' > 0
    inner = u.mT @ out @ v                                   # diagonal when the vectors are kept
    off_diagonal = inner - torch.diag_embed(torch.diagonal(inner, dim1=-2, dim2=-1))
    assert float(off_diagonal.abs().max()) < 1e-4
    assert float(torch.diagonal(inner, dim1=-2, dim2=-1).min()) > 0.6


def test_muon_goes_to_block_matrices_and_adamw_to_the_rest():
    model = GPT(GPTConfig(vocab_size=7, block_size=8, n_layer=2, n_head=2, n_embd=16))
    opt = muon_with_adamw(model)
    muon_group, adamw_group = opt.param_groups
    assert muon_group["muon"] and not adamw_group["muon"]
    assert all(p.dim() == 2 for p in muon_group["params"]) and len(muon_group["params"]) == 2 * 4
    assert any(p is model.token_embedding.weight for p in adamw_group["params"])
    with pytest.raises(ValueError, match="no 2-D weights"):
        muon_with_adamw(MLPLM(5))


def test_muon_trains_a_gpt_on_a_pattern():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=3, block_size=8, n_layer=1, n_head=1, n_embd=16))
    opt = muon_with_adamw(model, muon_lr=0.02, adamw_lr=1e-2)
    tokens = (torch.arange(9) % 3)[None].repeat(4, 1)
    losses = []
    for _ in range(40):
        logits = model(tokens[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 1.0 and losses[-1] < 0.05, (losses[0], losses[-1])
