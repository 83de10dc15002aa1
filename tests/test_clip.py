"""Chapter 07's parts: the contrastive loss, the small CLIP, cross-attention, the denoiser that reads captions."""

import math

import pytest
import torch

from genai_lib.data.captions import CaptionTokenizer
from genai_lib.diffusion import ddim_sample, diffusion_loss, guided_epsilon, noise_schedule
from genai_lib.ema import EMA
from genai_lib.losses import contrastive_loss
from genai_lib.models.clip import CLIP, MAX_LOGIT_SCALE, TextEncoder
from genai_lib.models.text_denoiser import TextDenoiser
from genai_lib.models.unet import CrossAttention, UNet

TOK = CaptionTokenizer()


# ---------------------------------------------------------------- the contrastive loss


def test_contrastive_loss_is_the_mean_of_both_directions_cross_entropy_written_out():
    torch.manual_seed(0)
    logits = torch.randn(6, 6) * 3
    by_hand = []
    for rows in (logits, logits.T):  # image -> text, then text -> image
        log_p = rows - rows.logsumexp(dim=1, keepdim=True)
        by_hand.append(-log_p.diagonal().mean())
    torch.testing.assert_close(contrastive_loss(logits), (by_hand[0] + by_hand[1]) / 2)
    # a random guess scores log B; perfect, confident logits score about 0
    assert contrastive_loss(torch.zeros(6, 6)).item() == pytest.approx(math.log(6))
    assert contrastive_loss(torch.eye(6) * 50).item() < 1e-6


def test_with_matches_captions_true_of_an_image_are_not_pushed_away_from_it():
    # pairs 0 and 1 mean the same thing; logits that cannot tell them apart are optimal
    matches = torch.eye(4, dtype=torch.bool)
    matches[0, 1] = matches[1, 0] = True
    tied = torch.full((4, 4), -20.0)
    tied[:2, :2] = 20.0
    tied[2, 2] = tied[3, 3] = 20.0
    # the minimum of a soft-target cross-entropy is the targets' entropy: log 2 for rows 0, 1 (and columns)
    expected = (2 * math.log(2) + 0 + 0) / 4
    assert contrastive_loss(tied, matches).item() == pytest.approx(expected, abs=1e-6)
    # logits that tell 0 and 1 apart: the plain loss prefers them, the loss with matches does not
    apart = torch.full((4, 4), -20.0).fill_diagonal_(20.0)
    assert contrastive_loss(apart).item() < contrastive_loss(tied).item() - 0.3
    assert contrastive_loss(apart, matches).item() > contrastive_loss(tied, matches).item() + 0.3
    torch.testing.assert_close(
        contrastive_loss(tied, torch.eye(4, dtype=torch.bool)), contrastive_loss(tied)
    )


def test_a_caption_true_of_several_images_spreads_its_column_over_them():
    # caption 0 ("a 7") is true of images 0 and 1; caption 1 ("a thin 7") only of image 1
    matches = torch.tensor([[True, False], [True, True]])
    logits = torch.tensor([[1.0, -0.5], [0.3, 2.0]])
    log_rows, log_cols = logits.log_softmax(1), logits.log_softmax(0)
    image_to_text = -(log_rows[0, 0] + (log_rows[1, 0] + log_rows[1, 1]) / 2) / 2
    text_to_image = -((log_cols[0, 0] + log_cols[1, 0]) / 2 + log_cols[1, 1]) / 2
    torch.testing.assert_close(
        contrastive_loss(logits, matches), (image_to_text + text_to_image) / 2
    )


def test_contrastive_loss_refuses_non_square_logits_and_wrong_groups():
    with pytest.raises(ValueError, match="square logits"):
        contrastive_loss(torch.zeros(4, 5))
    with pytest.raises(ValueError, match="must be bool of shape"):
        contrastive_loss(torch.zeros(4, 4), torch.zeros(4, 4))
    with pytest.raises(ValueError, match="diagonal"):
        contrastive_loss(torch.zeros(2, 2), torch.tensor([[True, True], [True, False]]))


# ---------------------------------------------------------------- CLIP


def test_clip_maps_images_and_captions_to_unit_vectors_and_scales_the_logits():
    torch.manual_seed(0)
    clip = CLIP(TOK.vocab_size, TOK.context)
    images, tokens = torch.rand(5, 1, 8, 8), TOK(["a 3", "7, thin", "a one", "", "the digit two"])
    img, txt = clip.encode_image(images), clip.encode_text(tokens)
    assert img.shape == txt.shape == (5, 32)
    torch.testing.assert_close(img.norm(dim=1), torch.ones(5))
    torch.testing.assert_close(clip(images, tokens), clip.scale() * img @ txt.T)
    assert clip.scale().item() == pytest.approx(1 / 0.07, rel=1e-5)
    with torch.no_grad():
        clip.logit_scale.fill_(10.0)
    assert clip.scale().item() == pytest.approx(math.exp(MAX_LOGIT_SCALE))  # capped at 100
    # any image size: 28x28 works through the adaptive pool
    assert clip.encode_image(torch.rand(2, 1, 28, 28)).shape == (2, 32)


def test_the_caption_vector_ignores_padding_and_reads_the_whole_caption():
    torch.manual_seed(0)
    enc = TextEncoder(TOK.vocab_size, TOK.context).eval()
    tokens = TOK(["a thin 7"])
    _, vec = enc(tokens)
    garbled = tokens.clone()
    garbled[0, 6:] = TOK.encode("a")[1]  # change what lies after <eos> (positions of padding)
    torch.testing.assert_close(enc(garbled)[1], vec)
    _, other = enc(TOK(["a thin 1"]))  # the last word changes the vector at <eos>
    assert (other - vec).abs().max() > 1e-3


def test_the_text_encoder_refuses_ids_it_cannot_read():
    enc = TextEncoder(TOK.vocab_size, TOK.context)
    with pytest.raises(ValueError, match="integer token ids"):
        enc(torch.rand(2, 12))
    with pytest.raises(ValueError, match="longer than the text encoder's context"):
        enc(torch.ones(2, 20, dtype=torch.long))
    with pytest.raises(ValueError, match="another vocabulary"):
        enc(torch.full((1, 12), 99))
    with pytest.raises(ValueError, match="end marker"):
        enc(torch.ones(1, 12, dtype=torch.long))
    with pytest.raises(ValueError, match=r"images \(B, 1, H, W\)"):
        CLIP(TOK.vocab_size).encode_image(torch.rand(2, 8, 8))


def test_a_few_hundred_steps_teach_clip_to_tell_the_digits_apart():
    from genai_lib.data import load_digits
    from genai_lib.text_to_image import CaptionedDigits, train_clip, zero_shot_accuracy

    data = load_digits()
    captioned = CaptionedDigits.build(data)
    clip, _, _ = train_clip(captioned, steps=150, progress=False, device="cpu", log_every=50)
    acc = zero_shot_accuracy(clip, captioned.tokenizer, captioned.val.images, captioned.val.labels)
    assert (
        acc > 0.6
    )  # untrained: about 0.1 (the test below); 150 steps reach about 0.8 on this seed


def test_an_untrained_clip_guesses():
    from genai_lib.data import load_digits
    from genai_lib.text_to_image import zero_shot_accuracy

    torch.manual_seed(0)
    data = load_digits()
    acc = zero_shot_accuracy(CLIP(TOK.vocab_size), TOK, data.val_images, data.val_labels)
    assert acc < 0.3


# ---------------------------------------------------------------- cross-attention


def cross_attention_by_hand(layer: CrossAttention, x, context, mask):
    """The layer's arithmetic written out with loops over heads: queries from pixels, keys and values from words."""
    B, C, H, W = x.shape
    h = layer.norm(x).flatten(2).transpose(1, 2)  # (B, HW, C)
    q, k, v = layer.query(h), layer.key(context), layer.value(context)
    d = C // layer.heads
    out = torch.zeros(B, H * W, C)
    for head in range(layer.heads):
        cols = slice(head * d, (head + 1) * d)
        scores = q[:, :, cols] @ k[:, :, cols].transpose(1, 2) / math.sqrt(d)  # (B, HW, L)
        scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        out[:, :, cols] = scores.softmax(-1) @ v[:, :, cols]
    return x + layer.out(out).transpose(1, 2).view(B, C, H, W)


def test_cross_attention_matches_the_arithmetic_written_out():
    torch.manual_seed(0)
    layer = CrossAttention(16, 24, heads=4, groups=4)
    torch.nn.init.normal_(layer.out.weight)  # the zero start would hide everything
    x, context = torch.randn(2, 16, 4, 4), torch.randn(2, 5, 24)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    torch.testing.assert_close(
        layer(x, context, mask), cross_attention_by_hand(layer, x, context, mask)
    )
    # padding is ignored: what lies under the mask changes nothing
    changed = context.clone()
    changed[1, 2:] = 100.0
    torch.testing.assert_close(layer(x, changed, mask)[1], layer(x, context, mask)[1])


def test_a_new_cross_attention_layer_passes_the_image_through():
    layer = CrossAttention(16, 24, groups=4)
    x = torch.randn(2, 16, 4, 4)
    torch.testing.assert_close(layer(x, torch.randn(2, 3, 24)), x)


def test_unet_with_context_checks_what_it_is_given():
    unet = UNet(base_channels=8, context_dim=24, groups=4)
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([3, 4])
    assert unet(x, t, context=torch.randn(2, 5, 24)).shape == (2, 1, 8, 8)
    with pytest.raises(ValueError, match="attends to text"):
        unet(x, t)
    with pytest.raises(ValueError, match=r"\(B, L, 24\)"):
        unet(x, t, context=torch.randn(2, 5, 16))
    with pytest.raises(ValueError, match="context_mask must be bool"):
        unet(x, t, context=torch.randn(2, 5, 24), context_mask=torch.ones(2, 5))
    with pytest.raises(ValueError, match="no cross-attention"):
        UNet(base_channels=8, groups=4)(x, t, context=torch.randn(2, 5, 24))


def test_unet_without_context_keeps_its_parameters_and_its_saved_weights():
    # chapter 05's checkpoints must still load: no new parameter names without context_dim
    torch.manual_seed(0)
    names = set(UNet(base_channels=24).state_dict())
    assert not any("attn" in n for n in names)
    assert sum(p.numel() for p in UNet(base_channels=24, n_classes=10).parameters()) == 216_481


# ---------------------------------------------------------------- the denoiser that reads captions


@pytest.fixture
def denoiser():
    torch.manual_seed(0)
    enc = TextEncoder(TOK.vocab_size, TOK.context, width=16, heads=2)
    unet = UNet(base_channels=8, context_dim=16, groups=4)
    torch.nn.init.normal_(unet.conv_out.weight, std=0.1)
    for m in unet.modules():
        if isinstance(m, CrossAttention):
            torch.nn.init.normal_(m.out.weight, std=0.1)
    return TextDenoiser(unet, enc, TOK.null(1)[0])


def test_the_denoiser_reads_the_caption_and_the_empty_caption_is_its_unconditional_prediction(
    denoiser,
):
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([10, 500])
    a, b = denoiser(x, t, TOK(["a 3", "a 3"])), denoiser(x, t, TOK(["a 7", "a 7"]))
    assert (a - b).abs().max() > 1e-4  # the words matter
    torch.testing.assert_close(denoiser(x, t, None), denoiser(x, t, TOK(["", ""])))
    # guidance: eps_u + s (eps_c - eps_u), with the empty caption as the unconditional input
    tokens = TOK(["a 3", "a thick 7"])
    eps_c, eps_u = denoiser(x, t, tokens), denoiser(x, t, TOK.null(2))
    torch.testing.assert_close(
        guided_epsilon(denoiser, x, t, tokens, 2.5), eps_u + 2.5 * (eps_c - eps_u)
    )


def test_caption_dropout_replaces_whole_captions_with_the_empty_one(denoiser):
    seen = []
    original = denoiser.unet.forward

    def spy(x, t, labels=None, context=None, context_mask=None):
        seen.append(context_mask.clone())
        return original(x, t, labels, context, context_mask)

    denoiser.unet.forward = spy
    tokens = TOK(["the digit seven, thin and leaning left"] * 400)
    diffusion_loss(
        denoiser,
        noise_schedule("cosine", 100),
        torch.rand(400, 1, 8, 8) * 2 - 1,
        tokens,
        p_uncond=0.25,
        generator=torch.Generator().manual_seed(0),
    )
    lengths = seen[0].sum(1)
    # every caption is either whole (10 tokens) or empty (<bos> <eos>): never half dropped
    assert set(lengths.tolist()) == {10, 2}
    dropped = (lengths == 2).float().mean().item()
    assert abs(dropped - 0.25) < 4 * math.sqrt(0.25 * 0.75 / 400)


def test_the_text_encoder_stays_frozen_while_the_unet_trains(denoiser):
    before = {k: v.clone() for k, v in denoiser.text_encoder.state_dict().items()}
    opt = torch.optim.SGD([p for p in denoiser.parameters() if p.requires_grad], lr=0.1)
    denoiser.train()
    assert not denoiser.text_encoder.training
    loss = diffusion_loss(
        denoiser, noise_schedule("cosine", 100), torch.rand(8, 1, 8, 8) * 2 - 1, TOK(["a 3"] * 8)
    )
    loss.backward()
    opt.step()
    for k, v in denoiser.text_encoder.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_samplers_take_one_caption_for_all_or_one_each_and_refuse_others(denoiser):
    sched = noise_schedule("cosine", 50)
    one = ddim_sample(
        denoiser, sched, 3, (1, 8, 8), steps=5, labels=TOK(["a 3"]), guidance=2.0, seed=0
    )
    each = ddim_sample(
        denoiser, sched, 3, (1, 8, 8), steps=5, labels=TOK(["a 3"] * 3), guidance=2.0, seed=0
    )
    torch.testing.assert_close(one, each)
    ema = EMA(denoiser)
    torch.testing.assert_close(
        ddim_sample(ema, sched, 3, (1, 8, 8), steps=5, labels=TOK(["a 3"]), guidance=2.0, seed=0),
        one,
    )
    with pytest.raises(ValueError, match=r"tokens \(1, L\) or \(3, L\)"):
        ddim_sample(denoiser, sched, 3, (1, 8, 8), steps=5, labels=TOK(["a 3", "a 4"]), seed=0)
    with pytest.raises(ValueError, match=r"tokens \(1, L\) or \(3, L\)"):
        ddim_sample(denoiser, sched, 3, (1, 8, 8), steps=5, labels=torch.rand(3, 12), seed=0)


def test_the_denoiser_refuses_a_unet_of_another_width(denoiser):
    with pytest.raises(ValueError, match="context_dim=16"):
        TextDenoiser(
            UNet(base_channels=8, context_dim=32, groups=4), denoiser.text_encoder, TOK.null(1)[0]
        )
    with pytest.raises(ValueError, match="null_tokens are one caption"):
        TextDenoiser(denoiser.unet, denoiser.text_encoder, TOK.null(2))
