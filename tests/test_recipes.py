"""The recipes that chapters, benchmarks and the command line share: repeatable, and their settings matter."""

import pytest
import torch

from genai_lib.data import load_digits
from genai_lib.lm import bits, evaluate_lm
from genai_lib.models import MLPLM
from genai_lib.recipes import train_and_measure_lm, train_vae

FAST = dict(epochs=2, batch_size=128, device="cpu", progress=False)


def test_train_vae_repeats_with_a_seed_and_follows_its_schedule():
    images = load_digits().train_images
    a, history, _ = train_vae(images, arch="mlp", latent_dim=4, **FAST)
    b, _, _ = train_vae(images, arch="mlp", latent_dim=4, **FAST)
    for name, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[name]), name
    assert not a.training and next(a.parameters()).device.type == "cpu"
    assert history.get("lr")[1][0] < history.get("lr")[1][-2]  # the first epoch warms up
    # and the comparison can fail: the benchmark's constant schedule lands elsewhere
    c, _, _ = train_vae(
        images, arch="mlp", latent_dim=4, schedule="constant", warmup_epochs=0, **FAST
    )
    assert not torch.equal(
        a.state_dict()["decoder_body.0.weight"], c.state_dict()["decoder_body.0.weight"]
    )


def test_train_and_measure_lm_scores_the_whole_held_out_text():
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 7, (3000,), generator=g)
    train, val = tokens[:2500], tokens[2500:]
    model = MLPLM(7, context=4, embed_dim=8, hidden=16)
    result = train_and_measure_lm(
        model,
        train,
        val,
        steps=20,
        block_size=16,
        batch_size=8,
        lr=1e-2,
        device="cpu",
        progress=False,
    )
    assert result.held_out_bits == bits(evaluate_lm(model, val, 16))
    assert result.parameters == sum(p.numel() for p in model.parameters())
    assert [s for s, _ in zip(*result.history.get("val_bits", "val"))] == list(range(2, 21, 2))


def test_train_vae_names_a_batch_larger_than_the_images():
    images = torch.rand(20, 1, 8, 8)
    with pytest.raises(ValueError, match=r"batch_size=64 is larger than the 20 images"):
        train_vae(
            images, arch="mlp", latent_dim=2, epochs=3, batch_size=64, progress=False, device="cpu"
        )
    with pytest.raises(ValueError, match=r"epochs must be at least 1; got 0"):
        train_vae(
            images, arch="mlp", latent_dim=2, epochs=0, batch_size=4, progress=False, device="cpu"
        )
