"""Architecture diagrams: each one draws and closes, its labels come from the model, bad input is refused."""

import re

import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch
from matplotlib.path import Path
from matplotlib.text import Text
from torch import nn

from genai_lib import diffusion, losses
from genai_lib.diagrams import (
    GRADIENT,
    diffusion_chain_diagram,
    gan_diagram,
    gpt_diagram,
    lora_diagram,
    unet_diagram,
    vae_diagram,
)
from genai_lib.models import GPT, GPTConfig, LoRALinear, UNet


def small_gpt_config(n_layer: int = 3) -> GPTConfig:
    return GPTConfig(vocab_size=50, block_size=32, n_layer=n_layer, n_head=2, n_embd=64)


def drawn(make) -> list[str]:
    """Every text of the figure ``make()`` returns; the figure is drawn (as a notebook would) and closed."""
    fig = make()
    try:
        fig.canvas.draw()  # mathtext is parsed here: a malformed label fails now, not in a notebook
        return [t.get_text() for t in fig.findobj(Text)]
    finally:
        plt.close(fig)


def text_of(make) -> str:
    return "\n".join(drawn(make))


def frames(n: int = 4) -> torch.Tensor:
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1


DIAGRAMS = {
    "vae": lambda: vae_diagram(64, 16),
    "gan": gan_diagram,
    "gpt": lambda: gpt_diagram(small_gpt_config()),
    "lora": lambda: lora_diagram(4, 128, 384, alpha=8.0),
    "unet": lambda: unet_diagram(UNet(base_channels=8, n_classes=10), 8),
    "unet 3 levels": lambda: unet_diagram(UNet(base_channels=8, channel_mults=(1, 2, 2)), 28),
    "diffusion": diffusion_chain_diagram,
    "diffusion with images": lambda: diffusion_chain_diagram(
        frames(), timesteps=[0, 10, 100, 1000]
    ),
}


@pytest.mark.parametrize("name", DIAGRAMS)
def test_each_diagram_is_one_figure_that_draws_and_closes(name):
    open_before = set(plt.get_fignums())
    fig = DIAGRAMS[name]()
    assert isinstance(fig, Figure)
    assert set(plt.get_fignums()) == open_before | {fig.number}, "one new figure, no more"
    assert fig.get_size_inches()[0] <= 10, "wider than a notebook's 10 inches"
    fig.canvas.draw()  # mathtext is parsed here: an unknown command fails now, not in a notebook
    unpaired = [t.get_text() for t in fig.findobj(Text) if t.get_text().count("$") % 2]
    plt.close(fig)
    assert set(plt.get_fignums()) == open_before
    assert not unpaired, f"a lone $ is printed, and the maths with it, as plain text: {unpaired}"


# ---------------------------------------------------------------- labels read from the model


def test_the_vae_shapes_are_the_ones_asked_for():
    digits, mnist = text_of(lambda: vae_diagram(64, 16)), text_of(lambda: vae_diagram(784, 20))
    assert "(B, 64)" in digits and "(B, 16) each" in digits
    assert "(B, 784)" in mnist and "(B, 20) each" in mnist
    assert "(B, 64)" not in mnist and "(B, 16)" not in mnist
    assert "(B, D)" in text_of(vae_diagram), "without sizes, the shapes stay letters"


@pytest.mark.parametrize("n_layer, other", [(3, 5), (5, 3)])
def test_the_gpt_labels_come_from_the_config(n_layer, other):
    config = small_gpt_config(n_layer)
    text = text_of(lambda: gpt_diagram(config))
    assert f"{n_layer} × transformer block" in text
    assert f"{other} × transformer block" not in text
    model = GPT(config)
    hidden = model.blocks[0].mlp.up.out_features  # the real MLP width, not a textbook's 4C
    for label in (
        "token embedding\n50 × 64",
        "position embedding\n32 × 64",
        "2 heads × 32 dims",
        f"MLP, GELU\n64 → {hidden} → 64",
        "logits (B, T, 50)",
        f"{model.num_parameters():,} parameters",
    ):
        assert label in text


def test_a_gpt_is_drawn_as_its_config():
    config = small_gpt_config()
    assert drawn(lambda: gpt_diagram(GPT(config))) == drawn(lambda: gpt_diagram(config))


def unet_text(model, image_size: int = 8) -> str:
    return text_of(lambda: unet_diagram(model, image_size))


def test_the_unet_channels_and_resolutions_come_from_the_model():
    narrow, wide = unet_text(UNet(base_channels=16)), unet_text(UNet(base_channels=24))
    assert "skip: 16 ch" in narrow and "skip: 32 ch" in narrow and "skip: 24 ch" not in narrow
    assert "skip: 24 ch" in wide and "skip: 48 ch" in wide and "skip: 16 ch" not in wide
    assert "(48 + 48) → 48 ch" in wide, "the deepest up block: the middle's output + the skip"
    assert "level 2 · 4×4" in wide and "level 3" not in wide
    mnist = unet_text(UNet(base_channels=16, channel_mults=(1, 2, 2)), 28)
    assert "level 3 · 7×7" in mnist and mnist.count("skip:") == 3
    assert mnist.count("skip: 32 ch") == 2, "channel_mults (1, 2, 2): levels 2 and 3 both have 32"
    model = UNet(base_channels=16, n_classes=10)
    conditional = unet_text(model)
    assert f"{sum(p.numel() for p in model.parameters()):,} parameters" in conditional
    assert "class embedding 11 × 64" in conditional and "class embedding" not in narrow


def test_a_unet_can_be_drawn_from_its_arguments():
    arguments = {"base_channels": 16, "channel_mults": (1, 2, 2), "blocks_per_level": 2}
    assert unet_text(arguments) == unet_text(UNet(**arguments))


@pytest.mark.parametrize("rank, d_in, d_out", [(4, 128, 384), (8, 64, 32), (1, 10, 1000)])
def test_the_lora_counts_are_the_real_layers(rank, d_in, d_out):
    layer = LoRALinear(nn.Linear(d_in, d_out, bias=False), r=rank, alpha=8.0)
    trainable = sum(p.numel() for p in layer.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in layer.parameters() if not p.requires_grad)
    texts = drawn(lambda: lora_diagram(rank, d_in, d_out, alpha=8.0))
    counts = next(t for t in texts if t.startswith("parameters trained")).split("\n")
    assert re.search(r": ([\d,]+)$", counts[1]).group(1) == f"{frozen:,}"  # full fine-tuning
    assert re.search(r": ([\d,]+) \(", counts[2]).group(1) == f"{trainable:,}"  # LoRA
    text = "\n".join(texts)
    assert f"lora_A\n{layer.lora_A.shape[0]} × {layer.lora_A.shape[1]}" in text
    assert f"lora_B\n{layer.lora_B.shape[0]} × {layer.lora_B.shape[1]}" in text
    assert f"= {layer.scaling:g}" in text


def test_the_gan_gradients_stop_at_d_in_its_step_and_reach_g_in_g_s_step():
    fig = gan_diagram()
    try:
        ax = fig.axes[0]
        fakes_x = sorted(t.get_position()[0] for t in ax.texts if t.get_text() == "fakes\n$G(z)$")
        assert len(fakes_x) == 2, "one fakes box per panel"
        middle = 5.0  # inches: the panels' border
        arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
        dashed = [p for p in arrows if tuple(p.get_edgecolor()[:3]) == to_rgb(GRADIENT)]
        reach = {"disc": [], "gen": []}
        for arrow in dashed:
            path = arrow.get_path()  # in data coordinates: inches
            xs = path.vertices[path.codes != Path.CLOSEPOLY, 0]
            reach["disc" if xs.max() < middle else "gen"].append(xs.min())
    finally:
        plt.close(fig)
    assert reach["disc"] and reach["gen"]
    assert min(reach["disc"]) > fakes_x[0], "D's step: no gradient back past D to the fakes"
    assert min(reach["gen"]) < fakes_x[1], "G's step: the gradient goes back through the fakes to G"


def test_the_function_names_on_the_diagrams_exist():
    """A diagram that names a library function must name one that a learner can find."""
    gan_text = text_of(gan_diagram)
    for name in re.findall(r"losses\.(\w+)", gan_text):
        assert hasattr(losses, name), name
    diffusion_text = text_of(diffusion_chain_diagram)
    for name in ("q_sample", "ddpm_step"):
        assert name in diffusion_text and hasattr(diffusion, name)


def test_the_diffusion_frames_are_drawn_with_their_timesteps():
    fig = diffusion_chain_diagram(frames(4), timesteps=[0, 10, 100, 1000])
    try:
        assert len(fig.axes[0].images) == 4
        text = "\n".join(t.get_text() for t in fig.findobj(Text))
    finally:
        plt.close(fig)
    for label in ("$x_{0}$", "$x_{100}$", "$x_{1000}$", "10\nsteps", "90\nsteps", "900\nsteps"):
        assert label in text
    boxes = diffusion_chain_diagram()
    try:
        assert not boxes.axes[0].images and "$x_T$" in [t.get_text() for t in boxes.findobj(Text)]
    finally:
        plt.close(boxes)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: lora_diagram(0, 128, 128), ValueError, "rank must be a positive integer"),
        (lambda: lora_diagram(2.5, 128, 128), ValueError, "rank must be a positive integer"),
        (lambda: lora_diagram(4, 128, -1), ValueError, "d_out must be a positive integer"),
        (lambda: lora_diagram(4, 128, 128, alpha=0), ValueError, "alpha must be positive"),
        (lambda: gpt_diagram({"n_layer": 3}), TypeError, "takes a GPTConfig"),
        (lambda: unet_diagram(small_gpt_config()), TypeError, "takes a genai_lib.models.UNet"),
        (
            lambda: unet_diagram(UNet(base_channels=8, channel_mults=(1, 2, 2)), 6),
            ValueError,
            "divisible by 4",
        ),
        (lambda: vae_diagram(latent_dim=0), ValueError, "latent_dim must be a positive integer"),
        (lambda: diffusion_chain_diagram(frames(1)), ValueError, "2 to 8 frames"),
        (
            lambda: diffusion_chain_diagram(frames(3), timesteps=[0, 10]),
            ValueError,
            "3 increasing values",
        ),
        (
            lambda: diffusion_chain_diagram(frames(3), timesteps=[0, 10, 5]),
            ValueError,
            "increasing",
        ),
        (lambda: diffusion_chain_diagram([frames(2)]), TypeError, "must be a tensor"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(call, error, message):
    open_before = set(plt.get_fignums())
    with pytest.raises(error, match=re.escape(message)):
        call()
    assert set(plt.get_fignums()) == open_before, "a refused call leaves no figure open"
