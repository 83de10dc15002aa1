"""The diffusion U-Net: shapes at 8x8 and 28x28, input checks with useful messages, and a tiny overfit with fit."""

import pytest
import torch

from genai_lib.diffusion import diffusion_loss, noise_schedule
from genai_lib.models import UNet
from genai_lib.models.unet import timestep_embedding
from genai_lib.train import fit


@pytest.mark.parametrize("side, mults", [(8, (1, 2)), (8, (1, 2, 2)), (28, (1, 2, 2))])
@pytest.mark.parametrize("n_classes", [None, 10])
def test_the_output_has_the_input_shape(side, mults, n_classes):
    torch.manual_seed(0)
    model = UNet(base_channels=8, channel_mults=mults, n_classes=n_classes)
    # the last conv starts at zero; make the output informative
    torch.nn.init.normal_(model.conv_out.weight)
    x, t = torch.randn(3, 1, side, side), torch.tensor([0, 10, 999])
    labels = torch.tensor([0, 9, 10]) if n_classes else None  # 10 is the null label
    out = model(x, t, labels)
    assert out.shape == x.shape and torch.isfinite(out).all()
    # time matters
    assert not torch.allclose(out[0], model(x, torch.tensor([500, 10, 999]), labels)[0])
    if n_classes:
        # the class matters
        assert not torch.allclose(out[0], model(x, t, torch.tensor([1, 9, 10]))[0])
        # None = null label
        torch.testing.assert_close(model(x, t, None), model(x, t, torch.full((3,), 10)))


def test_an_untrained_unet_predicts_zero_noise():
    model = UNet(base_channels=8)
    assert torch.equal(
        model(torch.randn(2, 1, 8, 8), torch.tensor([1, 2])), torch.zeros(2, 1, 8, 8)
    )


def test_the_default_size_and_the_timestep_embedding():
    # The defaults are the chapter's 8x8 digits model; keep its size in view if they change.
    assert 200_000 < sum(p.numel() for p in UNet(n_classes=10).parameters()) < 500_000
    emb = timestep_embedding(torch.tensor([0, 1, 500]), 33)
    assert emb.shape == (3, 33)
    torch.testing.assert_close(emb[0, :16], torch.zeros(16))  # sin(0)
    torch.testing.assert_close(emb[0, 16:32], torch.ones(16))  # cos(0)


def test_bad_inputs_raise_clear_errors():
    cond, uncond = (
        UNet(base_channels=8, n_classes=10),
        UNet(base_channels=8, channel_mults=(1, 2, 2)),
    )
    t = torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        cond(torch.randn(2, 3, 8, 8), t)
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        cond(torch.randn(2, 8, 8), t)
    with pytest.raises(ValueError, match="divisible by 4; got 30x30"):
        uncond(torch.randn(2, 1, 30, 30), t)
    with pytest.raises(ValueError, match="divisible by 2; got 7x8"):
        cond(torch.randn(2, 1, 7, 8), t)
    with pytest.raises(ValueError, match="unconditional"):
        uncond(torch.randn(2, 1, 8, 8), t, torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"0\.\.9, or be 10 \(the null label\)"):
        cond(torch.randn(2, 1, 8, 8), t, torch.tensor([3, 11]))
    with pytest.raises(ValueError, match=r"0\.\.9"):
        cond(torch.randn(2, 1, 8, 8), t, torch.tensor([-1, 0]))
    with pytest.raises(ValueError, match=r"one integer label per image, shape \(2,\)"):
        cond(torch.randn(2, 1, 8, 8), t, torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"one timestep per image"):
        cond(torch.randn(2, 1, 8, 8), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="groups=8 must divide"):
        UNet(base_channels=12)


def test_a_few_steps_of_fit_lower_the_loss_on_a_few_digits():
    from genai_lib.data import load_digits

    data = load_digits()
    x, y = data.train_images[:32] * 2 - 1, data.train_labels[:32]
    torch.manual_seed(0)
    model = UNet(base_channels=8, channel_mults=(1, 2), n_classes=10)
    s = noise_schedule("cosine", 100)

    def held_loss() -> float:  # the same timesteps, noise and label drops every time
        with torch.no_grad():
            return diffusion_loss(
                model,
                s,
                x.repeat(8, 1, 1, 1),
                y.repeat(8),
                generator=torch.Generator().manual_seed(0),
            ).item()

    before = held_loss()
    fit(
        model,
        lambda batch: diffusion_loss(model, s, *batch),
        (x, y),
        steps=60,
        batch_size=16,
        lr=3e-3,
        device="cpu",
        progress=False,
    )
    after = held_loss()
    assert before == pytest.approx(1.0, abs=0.1)  # eps_hat = 0 at the start
    assert after < 0.6 * before, (before, after)
