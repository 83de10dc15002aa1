"""The latent explorer, driven without a browser: set a slider's value, read the Image widget's PNG bytes."""

from __future__ import annotations

import io

import ipywidgets as widgets
import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from torch import Tensor

from genai_lib.models import VAE
from genai_lib.widgets import latent_explorer


class RowOfInk:
    """decode(z) for a 1-pixel-high image: pixel j has ink sigmoid(z_j). Records each call's z.

    ``(1, D) -> (1, 1, 1, D)``, so the expected picture is known exactly.
    """

    def __init__(self) -> None:
        self.calls: list[Tensor] = []
        self.grad_enabled: list[bool] = []

    def __call__(self, z: Tensor) -> Tensor:
        self.calls.append(z.clone())
        self.grad_enabled.append(torch.is_grad_enabled())
        return torch.sigmoid(z).view(1, 1, 1, -1)


def read_png(data: bytes) -> PILImage.Image:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return PILImage.open(io.BytesIO(data))


def test_it_shows_the_decoded_image_as_dark_ink_on_white_upscaled():
    """Grey level = 255 (1 - ink), within 1 level of rounding; every scale x scale block is one pixel."""
    decode = RowOfInk()
    base = torch.tensor([-4.0, 0.0, 4.0])
    box = latent_explorer(decode, latent_dim=3, base=base, scale=5)
    assert isinstance(box, widgets.VBox) and isinstance(box.image, widgets.Image)
    picture = read_png(box.image.value)
    assert picture.size == (3 * 5, 1 * 5)  # (width, height) in screen pixels
    grey = torch.from_numpy(np.asarray(picture.convert("L"), dtype=np.float32))  # (height, width)
    expected = (255 * (1 - torch.sigmoid(base))).repeat_interleave(5).expand(5, 15)
    assert (grey - expected).abs().max() <= 1, grey
    assert decode.calls[-1].shape == (1, 3)


def test_moving_a_slider_redraws_with_that_coordinate_and_no_other():
    decode = RowOfInk()
    box = latent_explorer(decode, latent_dim=4)
    first = box.image.value
    box.sliders[1].value = 2.5
    assert box.image.value != first
    torch.testing.assert_close(decode.calls[-1], torch.tensor([[0.0, 2.5, 0.0, 0.0]]))
    box.sliders[1].value = 0.0
    assert box.image.value == first  # the same z draws the same picture
    assert not any(decode.grad_enabled)  # decoding runs under torch.no_grad


def test_dimensions_without_a_slider_stay_at_base():
    decode = RowOfInk()
    base = torch.tensor([[0.5, -1.0, 0.25, 2.0, -0.75]])  # (1, latent_dim) is accepted too
    box = latent_explorer(decode, latent_dim=5, n_sliders=2, base=base)
    assert [s.value for s in box.sliders] == [0.5, -1.0]
    box.sliders[0].value = 1.0
    torch.testing.assert_close(decode.calls[-1], torch.tensor([[1.0, -1.0, 0.25, 2.0, -0.75]]))


@pytest.mark.parametrize("latent_dim, expected", [(3, 3), (8, 8), (20, 8)])
def test_default_sliders_and_their_bounds(latent_dim, expected):
    box = latent_explorer(RowOfInk(), latent_dim=latent_dim)
    assert [s.description for s in box.sliders] == [f"z_{i + 1}" for i in range(expected)]
    assert all(s.min == -3.0 and s.max == 3.0 and s.value == 0.0 for s in box.sliders)


def test_value_range_sets_the_bounds_and_a_base_outside_widens_them():
    box = latent_explorer(RowOfInk(), latent_dim=2, value_range=1.5, base=torch.tensor([0.5, 4.0]))
    assert (box.sliders[0].min, box.sliders[0].max, box.sliders[0].value) == (-1.5, 1.5, 0.5)
    assert (box.sliders[1].min, box.sliders[1].max, box.sliders[1].value) == (-1.5, 4.0, 4.0)


def test_an_untrained_vae_decoder_drives_it():
    torch.manual_seed(0)
    model = VAE((1, 8, 8), latent_dim=4)
    box = latent_explorer(lambda z: torch.sigmoid(model.decode(z)), latent_dim=4, scale=3)
    first = box.image.value
    assert read_png(first).size == (24, 24)
    box.sliders[0].value = 3.0
    assert box.image.value != first


def test_a_colour_image_is_drawn_in_colour():
    def red(z: Tensor) -> Tensor:  # (1, D) -> (1, 3, 2, 2), pure red
        return torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2)

    picture = read_png(latent_explorer(red, latent_dim=2, scale=2).image.value)
    assert picture.size == (4, 4) and picture.mode == "RGB"
    assert (np.asarray(picture) == [255, 0, 0]).all()


@pytest.mark.parametrize(
    "wrong",
    [
        lambda z: torch.rand(1, 8, 8),
        lambda z: torch.rand(2, 1, 8, 8),
        lambda z: torch.rand(1, 2, 8, 8),
    ],
    ids=["no batch", "two images", "2 channels"],
)
def test_a_decoder_of_the_wrong_shape_is_refused(wrong):
    with pytest.raises(
        ValueError, match=r"decode\(z\) must return one image of shape \(1, C, H, W\)"
    ):
        latent_explorer(wrong, latent_dim=4)


def test_logits_instead_of_probabilities_are_refused_with_the_fix():
    with pytest.raises(
        ValueError, match=r"values in \[0, 1\].*torch\.sigmoid\(model\.decode\(z\)\)"
    ):
        latent_explorer(lambda z: 5 * z.sum() * torch.ones(1, 1, 8, 8) - 1, latent_dim=4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_sliders=5), r"n_sliders must be between 1 and latent_dim=4; got 5"),
        (dict(n_sliders=0), r"n_sliders must be between 1 and latent_dim=4; got 0"),
        (dict(base=torch.zeros(3)), r"base must hold one latent code of size 4; got shape \(3,\)"),
        (dict(value_range=0.0), r"value_range must be positive"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        latent_explorer(RowOfInk(), latent_dim=4, **kwargs)


def test_interpolation_explorer_moves_between_the_two_codes():
    from genai_lib.widgets import interpolation_explorer

    seen = []

    def decode(z):
        seen.append(z.clone())
        return torch.sigmoid(z[:, :1].reshape(1, 1, 1, 1).expand(1, 1, 4, 4))

    box = interpolation_explorer(decode, torch.tensor([-3.0, 0.0]), torch.tensor([3.0, 1.0]))
    first = box.image.value
    box.sliders[0].value = 1.0
    assert torch.allclose(seen[-1], torch.tensor([[3.0, 1.0]]))
    assert box.image.value != first
    with pytest.raises(ValueError, match="same size"):
        interpolation_explorer(decode, torch.zeros(2), torch.zeros(3))


def test_class_explorer_redraws_for_a_new_class_and_new_noise():
    from genai_lib.widgets import class_explorer

    calls = []

    def generate_class(label, seed):
        calls.append((label, seed))
        return torch.full((4, 1, 4, 4), (label + 1) / 10) * (1 if seed % 2 == 0 else 0.5)

    box = class_explorer(generate_class, [str(d) for d in range(10)], nrow=2)
    first = box.image.value
    box.picker.value = 7
    assert calls[-1] == (7, 0) and box.image.value != first
    after_class = box.image.value
    box.button.click()
    assert calls[-1] == (7, 1) and box.image.value != after_class


def test_sampling_explorer_regenerates_with_the_slider_settings_and_a_kept_seed():
    from genai_lib.widgets import sampling_explorer

    calls = []

    def complete(temperature, top_p, seed):
        calls.append((temperature, top_p, seed))
        return f"t={temperature} p={top_p} seed={seed} <&>"

    box = sampling_explorer(complete, prompt="ROMEO:")
    assert calls == [(1.0, 1.0, 0)]
    assert "<b>ROMEO:</b>" in box.output.value and "&lt;&amp;&gt;" in box.output.value  # escaped
    box.temperature.value = 0.5
    box.top_p.value = 0.9
    assert calls[-1] == (0.5, 0.9, 0)  # same seed while the sliders move
    box.button.click()
    assert calls[-1] == (0.5, 0.9, 1) and "seed=1" in box.output.value


def test_trajectory_explorer_shows_the_frame_the_slider_points_at():
    from genai_lib.widgets import image_grid_to_png, trajectory_explorer

    # (K=3, N=4, 1, 8, 8)
    frames = torch.stack([torch.full((4, 1, 8, 8), v) for v in (0.0, 0.5, 1.0)])
    box = trajectory_explorer(frames, timesteps=[999, 500, -1], nrow=2)
    assert box.image.value == image_grid_to_png(frames[0], nrow=2) and box.label.value == "t = 999"
    box.sliders[0].value = 2
    assert box.image.value == image_grid_to_png(frames[2], nrow=2) and box.label.value == "t = -1"
    assert box.image.value != image_grid_to_png(frames[0], nrow=2)


@pytest.mark.parametrize(
    "frames, timesteps, message",
    [
        (torch.zeros(3, 1, 8, 8), None, "frames must be a tensor"),
        (torch.zeros(3, 4, 1, 8, 8), [1, 2], "one step per frame"),
    ],
)
def test_trajectory_explorer_refuses_bad_input(frames, timesteps, message):
    from genai_lib.widgets import trajectory_explorer

    with pytest.raises(ValueError, match=message):
        trajectory_explorer(frames, timesteps)


# ---------------------------------------------------------------- values outside the range


def clean_digits(n: int = 4) -> Tensor:
    """Stand-in digits in [0, 1]: a white background (0) and a stroke of ink (1)."""
    images = torch.zeros(n, 1, 8, 8)
    images[:, :, 2:6, 3:5] = 1.0
    return images


def user_warnings(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, UserWarning)]


@pytest.mark.parametrize(
    "images, named",
    [
        ((clean_digits() * 255).to(torch.uint8), ["value_range is (0, 1)", "Divide them by 255"]),
        (clean_digits() * 2 - 1, ["value_range is (0, 1)", "value_range=(-1, 1)", "(x + 1) / 2"]),
    ],
    ids=["0..255", "tanh"],
)
def test_show_images_warns_when_values_look_like_another_range(images, named, recwarn):
    import matplotlib

    matplotlib.use("Agg")
    from genai_lib.viz import show_images

    show_images(images)
    (message,) = user_warnings(recwarn)
    for part in named:
        assert part in message, (part, message)
    recwarn.clear()
    show_images(clean_digits())
    show_images(clean_digits() * 2 - 1, value_range=(-1, 1))
    # noisy diffusion frames mapped with (x + 1) / 2 go past [0, 1] on both sides: clamped, no warning
    g = torch.Generator().manual_seed(0)
    for noise in (0.02, 0.3, 1.0):
        show_images((clean_digits() * 2 - 1 + noise * torch.randn(4, 1, 8, 8, generator=g) + 1) / 2)
    assert not user_warnings(recwarn)


def test_grid_widgets_warn_about_0_255_images_and_trajectories_check_their_last_frame(recwarn):
    from genai_lib.widgets import class_explorer, trajectory_explorer

    class_explorer(lambda label, seed: clean_digits() * 255, ["a", "b"])
    (message,) = user_warnings(recwarn)
    assert "Divide them by 255" in message
    recwarn.clear()
    raw = torch.stack(
        [torch.randn(4, 1, 8, 8) * 3, clean_digits() * 2 - 1]
    )  # ddim_trajectory's output
    trajectory_explorer(raw)
    (message,) = user_warnings(recwarn)
    assert "(x + 1) / 2" in message
    recwarn.clear()
    trajectory_explorer(((raw + 1) / 2).clamp(0, 1))  # as chapter 05 maps it
    assert not user_warnings(recwarn)


def test_prompt_explorer_draws_each_prompt_and_shows_a_tokenizer_error_without_losing_the_grid():
    from genai_lib.data.captions import CaptionTokenizer
    from genai_lib.widgets import prompt_explorer

    tok = CaptionTokenizer()
    calls = []

    def draw(prompt, guidance, seed):
        ids = tok.prompt(prompt)  # raises for an unknown word or an empty prompt
        calls.append((prompt, guidance, seed))
        g = torch.Generator().manual_seed(int(ids.sum()) + 100 * seed)
        return torch.rand((4, 1, 8, 8), generator=g)

    box = prompt_explorer(draw, prompt="a 3", guidance=2.0)
    first = bytes(box.image.value)
    assert calls == [("a 3", 2.0, 0)] and first
    box.text.value = "a thin 4"
    assert calls[-1] == ("a thin 4", 2.0, 0) and bytes(box.image.value) != first
    kept = bytes(box.image.value)
    box.text.value = "a thik 4"  # refused by the tokenizer: the message says why, the grid stays
    assert (
        "thik" in box.message.value
        and "thick" in box.message.value
        and bytes(box.image.value) == kept
    )
    box.slider.value = 4.0
    box.button.click()  # still refused, with a new seed
    assert calls[-1] == ("a thin 4", 2.0, 0) and "thik" in box.message.value
    box.text.value = "a 7"
    box.button.click()
    assert calls[-1] == ("a 7", 4.0, 2)
    with pytest.raises(ValueError, match="could not be drawn"):
        prompt_explorer(draw, prompt="")


def test_show_captioned_puts_each_caption_over_its_image_and_refuses_a_count_mismatch():
    from genai_lib.viz import show_captioned

    fig = show_captioned(torch.rand(5, 1, 8, 8), [f"caption {i}" for i in range(5)], ncol=3)
    titles = [ax.get_title() for ax in fig.axes]
    assert (
        titles[:5] == [f"caption {i}" for i in range(5)] and titles[5] == ""
    )  # 2 rows of 3, one empty
    with pytest.raises(ValueError, match="One caption per image"):
        show_captioned(torch.rand(3, 1, 8, 8), ["a", "b"])
