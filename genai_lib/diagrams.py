"""Architecture diagrams: one picture per model, drawn from the model itself.

Each function returns a matplotlib ``Figure`` (a static picture that looks the
same in JupyterLab, on GitHub and in Colab), so a chapter shows it before the
code and a script can save it. Sizes and labels are read from the config or
the network, never typed in, so a diagram changes when the model does.

The same colours mean the same thing in every diagram:

- blue: data and tensors;           orange: trainable networks;
- grey: frozen (not trained here);  red: losses, and dashed red arrows for gradients;
- purple: random noise;             white: fixed operations (add, scale, sinusoids).

In a notebook, end the cell with ``plt.show()``, as for :mod:`genai_lib.viz`:
a figure that is also the cell's last value would be drawn twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Patch, Polygon, Rectangle
from matplotlib.path import Path
from torch import Tensor

from genai_lib.models.gpt import GPT, GPTConfig
from genai_lib.models.unet import UNet

__all__ = [
    "diffusion_chain_diagram",
    "gan_diagram",
    "gpt_diagram",
    "lora_diagram",
    "unet_diagram",
    "vae_diagram",
]

# ---------------------------------------------------------------- colours and drawing helpers

INK = "#303030"
GRADIENT = "#b03030"
QUIET = "#a0a0a0"  # frames and guide lines
FONT = 9  # points: the figures are at most 10 inches wide, a notebook's width

# kind -> (fill, edge, what it means in the legend)
KINDS = {
    "data": ("#dbe9f6", "#2f6ea5", "data / tensor"),
    "net": ("#fde0c2", "#c8691c", "trainable network"),
    "frozen": ("#e4e4e4", "#7f7f7f", "frozen (not trained)"),
    "loss": ("#f6d0d0", "#b03030", "loss"),
    "noise": ("#e6dbf2", "#7a50a8", "random noise"),
    "op": ("#ffffff", INK, "fixed operation"),
}


@dataclass(frozen=True)
class _Box:
    """Where a drawn box sits, in inches: centre ``(x, y)``, width ``w``, height ``h``."""

    x: float
    y: float
    w: float
    h: float

    @property
    def left(self) -> tuple[float, float]:
        return (self.x - self.w / 2, self.y)

    @property
    def right(self) -> tuple[float, float]:
        return (self.x + self.w / 2, self.y)

    @property
    def top(self) -> tuple[float, float]:
        return (self.x, self.y + self.h / 2)

    @property
    def bottom(self) -> tuple[float, float]:
        return (self.x, self.y - self.h / 2)


def _canvas(width: float, height: float) -> tuple[Figure, Axes]:
    """A blank figure whose data coordinates are inches, so sizes below read as lengths on the page."""
    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.set_axis_off()
    return fig, ax


def _box(
    ax: Axes,
    x: float,
    y: float,
    text: str,
    kind: str,
    w: float = 1.2,
    h: float = 0.5,
    fill: str | tuple[float, ...] | None = None,
) -> _Box:
    """A rounded box coloured by ``kind``, centred at ``(x, y)``; ``fill`` overrides the kind's fill."""
    face, edge, _ = KINDS[kind]
    shape = FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0,rounding_size=0.07")
    shape.set(facecolor=fill or face, edgecolor=edge, linewidth=1.2)
    ax.add_patch(shape)
    _text(ax, x, y, text)
    return _Box(x, y, w, h)


def _circle(ax: Axes, x: float, y: float, symbol: str = "+", r: float = 0.14) -> _Box:
    """A small round node for a fixed operation such as ``+`` (an addition)."""
    ax.add_patch(Circle((x, y), r, facecolor="white", edgecolor=INK, linewidth=1.2))
    _text(ax, x, y, symbol, fontsize=FONT + 2)
    return _Box(x, y, 2 * r, 2 * r)


def _text(
    ax: Axes, x: float, y: float, text: str, ha: str = "center", va: str = "center", **style: Any
) -> None:
    """Text in the diagrams' font and ink; ``style`` passes on to ``ax.text`` (fontsize, color, ...)."""
    style = {"fontsize": FONT, "color": INK, "linespacing": 1.35, **style}
    ax.text(x, y, text, ha=ha, va=va, **style)


def _note(
    ax: Axes, x: float, y: float, text: str, ha: str = "center", va: str = "center", **style: Any
) -> None:
    """A small italic remark on a white background, so that it stays legible over a line."""
    background = {"boxstyle": "round,pad=0.1", "facecolor": "white", "edgecolor": "none"}
    style = {"fontsize": FONT - 1, "style": "italic", "bbox": background, **style}
    _text(ax, x, y, text, ha=ha, va=va, **style)


def _title(ax: Axes, x: float, y: float, text: str) -> None:
    _text(ax, x, y, text, ha="left", va="top", fontsize=FONT + 2, fontweight="bold")


def _arrow(ax: Axes, *points: tuple[float, float], color: str = INK, dashed: bool = False) -> None:
    """An arrow along the polyline ``points``, its head at the last one."""
    style = "-|>,head_length=0.5,head_width=0.22"
    line = (0, (4, 2.5)) if dashed else "-"
    arrow = FancyArrowPatch(path=Path(list(points)), arrowstyle=style, mutation_scale=12)
    arrow.set(color=color, linewidth=1.3, linestyle=line)
    ax.add_patch(arrow)


def _gradient(ax: Axes, *points: tuple[float, float]) -> None:
    """A dashed red arrow: where gradients flow in the backward pass."""
    _arrow(ax, *points, color=GRADIENT, dashed=True)


def _legend(
    ax: Axes, kinds: Sequence[str], names: Mapping[str, str] | None = None, gradient: bool = False
) -> None:
    """A one-row legend along the bottom edge: the colours used, and the gradient arrow if drawn."""
    names = names or {}
    handles: list[Any] = [
        Patch(facecolor=KINDS[k][0], edgecolor=KINDS[k][1], label=names.get(k, KINDS[k][2]))
        for k in kinds
    ]
    if gradient:
        dashes = (0, (4, 2.5))
        handles.append(
            Line2D([], [], color=GRADIENT, linestyle=dashes, label="gradient (backward)")
        )
    ax.legend(
        handles=handles,
        loc="lower center",
        ncol=len(handles),
        frameon=False,
        fontsize=FONT - 1,
        handlelength=1.6,
        columnspacing=1.4,
        borderaxespad=0.2,
    )


def _mix(a: str, b: str, share: float) -> tuple[float, ...]:
    """The colour ``share`` of the way from ``a`` to ``b``."""
    return tuple((1 - share) * p + share * q for p, q in zip(to_rgb(a), to_rgb(b)))


def _positive_int(value: Any, name: str, function: str) -> int:
    """``value`` if it is an int of at least 1, else a ValueError that names ``function`` and ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{function}: {name} must be a positive integer; got {value!r}.")
    return value


# ---------------------------------------------------------------- VAE


def vae_diagram(input_dim: int | None = None, latent_dim: int | None = None) -> Figure:
    """A VAE's training step: encoder, reparameterisation, decoder, and the negative ELBO's two terms.

    ``input_dim`` (numbers per input, D: pixels for an image) and
    ``latent_dim`` (d) print the tensor shapes; ``None`` leaves them as
    letters. The 8x8 digits with ``VAE(latent_dim=16)``: ``vae_diagram(64, 16)``.
    """
    d_x = "D" if input_dim is None else _positive_int(input_dim, "input_dim", "vae_diagram")
    d_z = "d" if latent_dim is None else _positive_int(latent_dim, "latent_dim", "vae_diagram")
    fig, ax = _canvas(10, 4.8)
    _title(ax, 0.15, 4.7, "Variational autoencoder: one training step")

    y = 3.0  # the forward pass, left to right
    reparameterise = (
        "reparameterise\n$z = \\mu + \\sigma \\odot \\varepsilon$\n"
        "$\\sigma = \\exp(\\frac{1}{2}\\log\\sigma^2)$"
    )
    x = _box(ax, 0.55, y, f"$x$\n(B, {d_x})", "data", w=0.85, h=0.7)
    enc = _box(ax, 1.9, y, "encoder\n$q_\\phi(z\\,|\\,x)$", "net", w=1.2, h=0.8)
    stats = _box(ax, 3.4, y, f"$\\mu$, $\\log\\sigma^2$\n(B, {d_z}) each", "data", w=1.2, h=0.7)
    rep = _box(ax, 5.0, y, reparameterise, "op", w=1.55, h=1.0)
    z = _box(ax, 6.45, y, f"$z$\n(B, {d_z})", "data", w=0.8, h=0.7)
    dec = _box(ax, 7.75, y, "decoder\n$p_\\theta(x\\,|\\,z)$", "net", w=1.2, h=0.8)
    x_hat = _box(ax, 9.2, y, f"$\\hat x$ logits\n(B, {d_x})", "data", w=1.05, h=0.7)
    noise = f"$\\varepsilon \\sim \\mathcal{{N}}(0, I)$   (B, {d_z})"
    eps = _box(ax, 5.0, 4.25, noise, "noise", w=2.0, h=0.42)
    for a, b in ((x, enc), (enc, stats), (stats, rep), (rep, z), (z, dec), (dec, x_hat)):
        _arrow(ax, a.right, b.left)
    _arrow(ax, eps.bottom, rep.top)
    _note(
        ax, 6.25, 4.25, "no parameters: gradients\nreach $\\mu$, $\\sigma$ through $z$", ha="left"
    )

    y = 1.55  # the loss: negative ELBO = reconstruction + KL, in nats per input
    kl_text = "KL$(q_\\phi(z\\,|\\,x)\\,\\|\\,\\mathcal{N}(0, I))$\nclosed form, nats"
    kl = _box(ax, 3.4, y, kl_text, "loss", w=2.3, h=0.7)
    total = _box(
        ax, 5.95, y, "$-$ELBO = reconstruction + KL\nnats per input", "loss", w=2.25, h=0.7
    )
    rec_text = "reconstruction\n$-\\log p_\\theta(x\\,|\\,z)$, nats"
    rec = _box(ax, 8.5, y, rec_text, "loss", w=2.0, h=0.7)
    _arrow(ax, stats.bottom, kl.top)
    _arrow(ax, x_hat.bottom, (x_hat.x, rec.top[1]))
    route = 0.75  # the input travels along the bottom to the reconstruction term: it is the target
    _arrow(ax, x.bottom, (x.x, route), (rec.x + 0.5, route), (rec.x + 0.5, rec.bottom[1]))
    _note(ax, 1.0, route + 0.16, "the input is the target", ha="left")
    _arrow(ax, kl.right, total.left)
    _arrow(ax, rec.left, total.right)
    _legend(ax, ["data", "noise", "net", "op", "loss"])
    return fig


# ---------------------------------------------------------------- GAN


def _gan_panel(ax: Axes, ox: float, generator_step: bool) -> None:
    """One half of a GAN training step, drawn ``ox`` inches from the left; see :func:`gan_diagram`."""
    what = "2. generator step: update G" if generator_step else "1. discriminator step: update D"
    _title(ax, ox + 0.1, 4.85, what)
    y1, y2 = 3.75, 2.7  # rows: the fakes, the real images
    z = _box(ax, ox + 0.55, y1, "$z \\sim \\mathcal{N}(0, I)$", "noise", w=0.95, h=0.5)
    if generator_step:
        g = _box(ax, ox + 1.65, y1, "G\ntrained", "net", w=0.85, h=0.7)
        d = _box(ax, ox + 4.2, (y1 + y2) / 2, "D\nnot\nstepped", "frozen", w=0.85, h=1.75)
    else:
        g = _box(ax, ox + 1.65, y1, "G\nno_grad", "frozen", w=0.85, h=0.7)
        d = _box(ax, ox + 4.2, (y1 + y2) / 2, "D\ntrained", "net", w=0.85, h=1.75)
    fake = _box(ax, ox + 2.8, y1, "fakes\n$G(z)$", "data", w=0.85, h=0.7)
    scores = _box(ax, ox + 4.2, 1.55, "scores\n(logits)", "data", w=0.85, h=0.55)
    _arrow(ax, z.right, g.left)
    _arrow(ax, g.right, fake.left)
    _arrow(ax, fake.right, (d.left[0], y1))
    _arrow(ax, d.bottom, scores.top)

    if generator_step:
        loss_text = "$-\\log D(G(z))$\nfakes labelled real\nlosses.generator_loss"
        loss = _box(ax, ox + 2.15, 1.55, loss_text, "loss", w=1.85, h=0.85)
        _note(ax, ox + 2.8, y2, "no real images\nin this step", color="#707070")
        remark = (
            "gradients flow back through D into G;\nD gets gradients, but only G's optimiser steps"
        )
    else:
        real = _box(ax, ox + 2.8, y2, "real\n$x \\sim p_\\mathrm{data}$", "data", w=0.85, h=0.7)
        _arrow(ax, real.right, (d.left[0], y2))
        loss_text = (
            "$-\\log D(x) - \\log(1 - D(G(z)))$\nreal → 1, fake → 0\nlosses.discriminator_loss"
        )
        loss = _box(ax, ox + 2.15, 1.55, loss_text, "loss", w=2.45, h=0.85)
        _note(ax, ox + 2.2, y1 + 0.55, "fakes made without a graph:\nno gradient reaches G")
        remark = "gradients stop at D;\nonly D's optimiser steps"
    _arrow(ax, scores.left, loss.right)
    _note(ax, ox + 2.5, 0.72, remark)

    # the backward pass, each arrow beside the forward arrow it reverses
    back = 0.17
    _gradient(ax, (loss.right[0], loss.y - back), (scores.left[0], loss.y - back))
    _gradient(ax, (d.x + 1.5 * back, scores.top[1]), (d.x + 1.5 * back, d.bottom[1]))
    if generator_step:  # on through D, the fakes and into G
        _gradient(ax, (d.left[0], y1 - back), (fake.right[0], y1 - back))
        _gradient(ax, (fake.left[0], y1 - back), (g.right[0], y1 - back))


def gan_diagram() -> Figure:
    """One GAN training step as :func:`genai_lib.gan.gan_objectives` runs it, in two panels.

    Left, the discriminator step: fakes are made under ``torch.no_grad()`` and
    D learns real -> 1, fake -> 0. Right, the generator step: the loss on D's
    scores for fresh fakes sends gradients back through D into G; D's weights
    get gradients too, but only G's optimiser steps.
    """
    fig, ax = _canvas(10, 5.0)
    _gan_panel(ax, 0.0, generator_step=False)
    ax.plot([5.0, 5.0], [0.55, 4.85], color=QUIET, linewidth=1.0)
    _gan_panel(ax, 5.1, generator_step=True)
    kinds = ["noise", "data", "net", "frozen", "loss"]
    _legend(ax, kinds, names={"frozen": "not updated in this step"}, gradient=True)
    return fig


# ---------------------------------------------------------------- GPT


def _causal_mask(ax: Axes, x: float, y: float, size: float, n: int) -> None:
    """An ``n`` x ``n`` grid, lower-left corner at ``(x, y)``: row = query, column = key position."""
    cell = size / n
    for i in range(n):  # query, from the top
        for j in range(n):  # key, from the left
            seen = j <= i  # a position sees itself and the positions before it
            square = Rectangle((x + j * cell, y + size - (i + 1) * cell), cell, cell)
            square.set(facecolor=KINDS["data"][1] if seen else "white", edgecolor=QUIET, lw=0.5)
            ax.add_patch(square)
    _text(ax, x + size / 2, y + size + 0.06, "causal mask", va="bottom", fontsize=FONT - 1)
    _text(ax, x + size / 2, y - 0.05, "key →", va="top", fontsize=FONT - 2)
    _text(ax, x - 0.05, y + size / 2, "query →", ha="right", fontsize=FONT - 2, rotation=-90)


def gpt_diagram(config: GPTConfig | GPT) -> Figure:
    """The course's GPT (:mod:`genai_lib.models.gpt`) at the sizes of ``config``, one block opened up.

    Left: token + position embeddings -> ``n_layer`` x block -> final
    LayerNorm -> linear head -> logits ``(B, T, vocab_size)``. Right: the
    pre-norm block, ``x + attention(norm(x))`` then ``x + mlp(norm(x))``. The
    widths, the weight tying and the parameter count are read from a copy of
    the model built on the meta device, which allocates no memory. A
    :class:`GPT` is accepted too; its ``config`` is drawn.
    """
    if isinstance(config, GPT):
        config = config.config
    if not isinstance(config, GPTConfig):
        raise TypeError(
            f"gpt_diagram takes a GPTConfig (genai_lib.models.GPTConfig) or a GPT; got "
            f"{type(config).__name__}. Build one with GPTConfig(vocab_size=..., n_layer=...)."
        )
    with torch.device("meta"):  # the real modules, without allocating their weights
        model = GPT(config)
    block = model.blocks[0]
    V, T_max, C = config.vocab_size, config.block_size, config.n_embd
    n_head, head_dim = block.attn.n_head, C // block.attn.n_head
    hidden = block.mlp.up.out_features
    tied = model.lm_head.weight is model.token_embedding.weight

    fig, ax = _canvas(10, 7.0)
    with_positions = model.num_parameters(include_position_embedding=True)
    title = (
        f"GPT: {model.num_parameters():,} parameters ({with_positions:,} with the position table)"
    )
    _title(ax, 0.15, 6.9, title)

    # left: the whole model, top to bottom
    cx = 2.2
    stack_text = (
        f"{config.n_layer} × transformer block\n"
        f"{n_head} heads × {head_dim} dims, MLP {C} → {hidden} → {C}"
    )
    head_text = f"linear head {C} → {V}" + ("\ntied to the token embedding" if tied else "")
    tokens = _box(ax, 1.3, 6.0, f"token ids (B, T)\nT ≤ {T_max}", "data", w=1.6, h=0.55)
    positions = _box(ax, 3.2, 6.0, "positions\n0, 1, …, T−1", "data", w=1.5, h=0.55)
    tok_emb = _box(ax, 1.3, 5.05, f"token embedding\n{V} × {C}", "net", w=1.6, h=0.55)
    pos_emb = _box(ax, 3.2, 5.05, f"position embedding\n{T_max} × {C}", "net", w=1.6, h=0.55)
    add = _circle(ax, cx, 4.25)
    stack = _box(ax, cx, 3.3, stack_text, "net", w=3.4, h=0.75)
    norm = _box(ax, cx, 2.35, f"final LayerNorm ({C})", "net", w=2.2, h=0.42)
    head = _box(ax, cx, 1.55, head_text, "net", w=2.6, h=0.6 if tied else 0.42)
    logits = _box(ax, cx, 0.75, f"logits (B, T, {V})", "data", w=1.9, h=0.42)
    _arrow(ax, tokens.bottom, tok_emb.top)
    _arrow(ax, positions.bottom, pos_emb.top)
    _arrow(ax, tok_emb.bottom, (tok_emb.x, add.y), add.left)
    _arrow(ax, pos_emb.bottom, (pos_emb.x, add.y), add.right)
    _arrow(ax, add.bottom, stack.top)
    _text(ax, cx + 0.12, (add.bottom[1] + stack.top[1]) / 2, f"(B, T, {C})", ha="left")
    for a, b in ((stack, norm), (norm, head), (head, logits)):
        _arrow(ax, a.bottom, b.top)

    # right: one block as Block.forward computes it; pre-norm, so the stream itself is never normalised
    frame = FancyBboxPatch((5.15, 0.6), 4.75, 5.85, boxstyle="round,pad=0,rounding_size=0.1")
    frame.set(facecolor="none", edgecolor=QUIET, linewidth=1.0, linestyle="--")
    ax.add_patch(frame)
    ax.plot([stack.right[0], 5.15], [stack.y, stack.y], color=QUIET, linewidth=1.0, linestyle="--")
    _text(ax, 7.5, 6.25, "one block (pre-norm), as in gpt.py")
    stream, branch = 9.15, 7.05  # x of the residual stream, x of the sub-layers
    attn_text = f"causal multi-head\nself-attention\n{n_head} heads × {head_dim} dims"
    x_in = _box(ax, stream, 5.7, f"x (B, T, {C})", "data", w=0.95, h=0.5)
    ln1 = _box(ax, branch, 5.05, f"LayerNorm ({C})", "net", w=1.6, h=0.4)
    attn = _box(ax, branch, 4.15, attn_text, "net", w=2.0, h=0.9)
    add1 = _circle(ax, stream, attn.y)
    ln2 = _box(ax, branch, 3.15, f"LayerNorm ({C})", "net", w=1.6, h=0.4)
    gelu = "GELU (tanh)" if config.gelu == "tanh" else "GELU"
    mlp = _box(ax, branch, 2.25, f"MLP, {gelu}\n{C} → {hidden} → {C}", "net", w=2.0, h=0.7)
    add2 = _circle(ax, stream, mlp.y)
    x_out = _box(ax, stream, 1.05, f"x (B, T, {C})", "data", w=0.95, h=0.5)
    split1, split2 = 5.45, 3.55  # where each branch leaves the stream
    ax.plot([stream, stream], [x_in.bottom[1], split1], color=INK, linewidth=1.3)
    _arrow(ax, (stream, split1), add1.top)
    _arrow(ax, (stream, split1), (branch, split1), ln1.top)
    _arrow(ax, ln1.bottom, attn.top)
    _arrow(ax, attn.right, add1.left)
    _arrow(ax, add1.bottom, add2.top)
    _arrow(ax, (stream, split2), (branch, split2), ln2.top)
    _arrow(ax, ln2.bottom, mlp.top)
    _arrow(ax, mlp.right, add2.left)
    _arrow(ax, add2.bottom, x_out.top)
    _note(ax, stream + 0.08, 3.15, "residual\nstream", ha="left", fontsize=FONT - 2)
    _causal_mask(ax, 5.7, 0.85, 0.7, min(T_max, 6))
    _note(ax, 6.55, 1.2, "in attention, position t\nsees positions 0 … t only", ha="left")
    _legend(ax, ["data", "net", "op"])
    return fig


# ---------------------------------------------------------------- LoRA


def _trapezoid(ax: Axes, x0: float, x1: float, y: float, h0: float, h1: float, text: str) -> _Box:
    """A trainable matrix as a trapezoid, ``h0`` tall at ``x0`` and ``h1`` at ``x1``: it narrows or widens."""
    face, edge, _ = KINDS["net"]
    corners = [(x0, y - h0 / 2), (x1, y - h1 / 2), (x1, y + h1 / 2), (x0, y + h0 / 2)]
    ax.add_patch(Polygon(corners, closed=True, facecolor=face, edgecolor=edge, linewidth=1.2))
    _text(ax, (x0 + x1) / 2, y, text)
    return _Box((x0 + x1) / 2, y, x1 - x0, max(h0, h1))


def lora_diagram(rank: int, d_in: int, d_out: int, alpha: float = 16.0) -> Figure:
    """A LoRA layer (:class:`genai_lib.models.lora.LoRALinear`): ``h = W x + (alpha / r) B A x``.

    ``W`` ``(d_out, d_in)`` is the frozen ``base`` weight; ``lora_A``
    ``(r, d_in)`` starts random and ``lora_B`` ``(d_out, r)`` starts at zero,
    so training starts from the pretrained layer. The counts compare the
    parameters full fine-tuning trains (``d_out * d_in``) with LoRA's
    (``r * (d_in + d_out)``). ``alpha`` defaults to ``LoRALinear``'s.
    """
    r = _positive_int(rank, "rank", "lora_diagram")
    d_in = _positive_int(d_in, "d_in", "lora_diagram")
    d_out = _positive_int(d_out, "d_out", "lora_diagram")
    if not alpha > 0:
        raise ValueError(f"lora_diagram: alpha must be positive; got {alpha!r}.")
    full, lora = d_out * d_in, r * (d_in + d_out)

    fig, ax = _canvas(10, 4.6)
    _title(ax, 0.15, 4.5, "LoRA: a frozen layer plus a trainable low-rank update")
    formula = f"$h = W x + \\frac{{\\alpha}}{{r}}\\, B A x$,   $\\alpha$ = {alpha:g},  r = {r}"
    _text(ax, 9.85, 4.47, formula, ha="right", va="top", fontsize=FONT + 1)
    y_w, y_ab = 3.45, 1.65  # rows: the frozen weight, the low-rank path
    frozen = f"base: $W$   {d_out} × {d_in}\nfrozen, {full:,} parameters"
    x = _box(ax, 0.6, 2.55, f"$x$\n(B, {d_in})", "data", w=0.9, h=0.7)
    w = _box(ax, 3.9, y_w, frozen, "frozen", w=3.2, h=0.75)
    a = _trapezoid(ax, 2.0, 3.6, y_ab, 1.1, 0.45, f"lora_A\n{r} × {d_in}")  # narrows d_in to r
    b = _trapezoid(ax, 4.2, 5.8, y_ab, 0.45, 1.1, f"lora_B\n{d_out} × {r}")  # widens r to d_out
    scale = _box(ax, 6.75, y_ab, f"× α/r\n= {alpha / r:g}", "op", w=0.8, h=0.6)
    add = _circle(ax, 7.75, 2.55)
    h = _box(ax, 9.1, 2.55, f"$h$\n(B, {d_out})", "data", w=0.95, h=0.7)
    split = 1.35
    ax.plot([x.right[0], split], [x.y, x.y], color=INK, linewidth=1.3)
    _arrow(ax, (split, x.y), (split, y_w), w.left)
    _arrow(ax, (split, x.y), (split, y_ab), (a.x - a.w / 2, y_ab))
    _arrow(ax, (a.x + a.w / 2, y_ab), (b.x - b.w / 2, y_ab))
    _text(ax, 3.9, y_ab + 0.2, f"(B, {r})", va="bottom", fontsize=FONT - 1)
    _arrow(ax, (b.x + b.w / 2, y_ab), scale.left)
    _arrow(ax, w.right, (add.x, w.y), add.top)
    _arrow(ax, scale.right, (add.x, y_ab), add.bottom)
    _arrow(ax, add.right, h.left)
    _note(ax, a.x, y_ab - 0.75, "starts random")
    _note(ax, b.x, y_ab - 0.75, "starts at zero: $h = Wx$ at step 0")
    counts = (
        "parameters trained\n"
        f"full fine-tuning, $d_\\mathrm{{out}}\\,d_\\mathrm{{in}}$: {full:,}\n"
        f"LoRA, $r\\,(d_\\mathrm{{in}} + d_\\mathrm{{out}})$: {lora:,} ({100 * lora / full:.1f}%)"
    )
    _text(ax, 7.1, 0.95, counts, ha="left", linespacing=1.5)
    _legend(ax, ["data", "frozen", "net", "op"])
    return fig


# ---------------------------------------------------------------- U-Net


@dataclass(frozen=True)
class _UNetLevel:
    """What the diagram shows of one level of a U-Net, read from its modules."""

    channels: int  # out of the level's blocks, on both paths; also the skip's width
    down_in: int  # into the first block on the way down
    up_in: int  # into the first block on the way up: from below, plus the skip
    blocks: int  # residual blocks on each path
    height: int
    width: int


def _unet_levels(model: UNet, height: int, width: int) -> list[_UNetLevel]:
    levels = []
    for i, (down, up) in enumerate(zip(model.down, reversed(model.up))):  # model.up starts deepest
        level = _UNetLevel(
            channels=down[-1].conv2.out_channels,
            down_in=down[0].conv1.in_channels,
            up_in=up[0].conv1.in_channels,
            blocks=len(down),
            height=height // 2**i,
            width=width // 2**i,
        )
        levels.append(level)
    return levels


def unet_diagram(model: UNet | Mapping[str, Any], image_size: int | tuple[int, int] = 8) -> Figure:
    """The course's U-Net (:mod:`genai_lib.models.unet`) with its real channel counts and resolutions.

    ``model`` is a :class:`UNet`, or the keyword arguments you would build one
    with (``{"base_channels": 24, "n_classes": 10}``, built on the meta device,
    which allocates no memory). ``image_size`` is the input's H (= W), or
    ``(H, W)``: the network takes any size its levels can halve. Every residual
    block adds the time embedding (plus the class embedding, for a conditional
    model): those blocks are marked "+ emb".
    """
    if isinstance(model, Mapping):
        with torch.device("meta"):
            model = UNet(**model)
    if not isinstance(model, UNet):
        raise TypeError(
            f"unet_diagram takes a genai_lib.models.UNet or a dict of its arguments; "
            f"got {type(model).__name__}."
        )
    H, W = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    factor = 2 ** (model.levels - 1)
    if H < 1 or W < 1 or H % factor or W % factor:
        raise ValueError(
            f"unet_diagram: this U-Net halves the image {model.levels - 1} time(s), so H and W must "
            f"be divisible by {factor}; got {H}x{W}."
        )
    levels = _unet_levels(model, H, W)
    c_img, c_first = model.conv_in.in_channels, model.conv_in.out_channels
    t_dim, emb_dim = model.time_mlp[0].in_features, model.time_mlp[-1].out_features
    conditional = model.class_emb is not None

    row = 1.05  # inches from one level to the next
    height = 3.35 + row * len(levels) + (0.7 if conditional else 0)
    fig, ax = _canvas(10, height)
    n_params = sum(p.numel() for p in model.parameters())
    kind = "conditional" if conditional else "unconditional"
    _title(
        ax,
        0.15,
        height - 0.1,
        f"U-Net ({kind}, {n_params:,} parameters): predicts the noise in $x_t$",
    )
    top = height - 0.8
    xl, xr, bw, bh = 2.6, 7.4, 2.5, 0.62  # the down and up columns, and their boxes' size

    def tag(box: _Box) -> None:  # marks a box whose residual blocks add the embedding
        corner = (box.x + box.w / 2 - 0.05, box.y + box.h / 2 - 0.04)
        _text(
            ax,
            *corner,
            "+ emb",
            ha="right",
            va="top",
            fontsize=FONT - 2,
            style="italic",
            color=KINDS["data"][1],
        )

    out_text = (
        f"GroupNorm, SiLU, conv_out\n3×3: {model.conv_out.in_channels} → "
        f"{model.conv_out.out_channels} ch, starts at 0"
    )
    x_in = _box(ax, 0.6, top, f"$x_t$\n(B, {c_img}, {H}, {W})", "data", w=0.95, h=0.62)
    conv_in = _box(ax, xl, top, f"conv_in 3×3: {c_img} → {c_first} ch", "net", w=2.0, h=0.42)
    conv_out = _box(ax, xr, top, out_text, "net", w=2.3, h=0.62)
    eps_text = f"$\\hat\\varepsilon$\n(B, {c_img}, {H}, {W})"
    eps_hat = _box(ax, 9.4, top, eps_text, "data", w=0.95, h=0.62)
    _arrow(ax, x_in.right, conv_in.left)
    _arrow(ax, conv_out.right, eps_hat.left)

    downs, ups = [], []
    for i, lv in enumerate(levels):
        y = top - row * (i + 1)
        where = f"level {i + 1} · {lv.height}×{lv.width}"
        blocks = f"{lv.blocks} ResBlock{'s' if lv.blocks > 1 else ''}"
        from_below = lv.up_in - lv.channels  # the first up block takes the skip concatenated
        down_text = f"{where}\n{blocks}: {lv.down_in} → {lv.channels} ch"
        up_text = f"{where}\n{blocks}: ({from_below} + {lv.channels}) → {lv.channels} ch"
        downs.append(_box(ax, xl, y, down_text, "net", w=bw, h=bh))
        ups.append(_box(ax, xr, y, up_text, "net", w=bw, h=bh))
        tag(downs[-1])
        tag(ups[-1])
        _arrow(ax, downs[-1].right, ups[-1].left, color=KINDS["data"][1])
        _text(ax, 5.0, y + 0.14, f"skip: {lv.channels} ch, concatenated", fontsize=FONT - 1)
    _arrow(ax, conv_in.bottom, downs[0].top)
    _arrow(ax, ups[0].top, conv_out.bottom)
    for i in range(len(levels) - 1):
        down_conv, up_conv = model.downsample[i], model.upsample[len(levels) - 2 - i]
        y = (downs[i].bottom[1] + downs[i + 1].top[1]) / 2
        _arrow(ax, downs[i].bottom, downs[i + 1].top)
        halve = f"stride-2 conv {down_conv.in_channels} → {down_conv.out_channels} ch"
        _text(ax, xl + 0.1, y, halve, ha="left", fontsize=FONT - 1)
        _arrow(ax, ups[i + 1].top, ups[i].bottom)
        double = f"nearest ×2, 3×3 conv {up_conv.in_channels} → {up_conv.out_channels} ch"
        _text(ax, xr - 0.1, y, double, ha="right", fontsize=FONT - 1)

    deepest = levels[-1]
    y_mid = top - row * (len(levels) + 0.85)
    mid_text = (
        f"middle ResBlock\n{model.middle.conv1.in_channels} → {model.middle.conv2.out_channels} ch"
        f" · {deepest.height}×{deepest.width}"
    )
    middle = _box(ax, 5.0, y_mid, mid_text, "net", w=2.2, h=bh)
    tag(middle)
    _arrow(ax, downs[-1].bottom, (xl, y_mid), middle.left)
    _arrow(ax, middle.right, (xr, y_mid), ups[-1].bottom)

    # the embedding every residual block adds
    y = y_mid - 0.95
    t = _box(ax, 0.6, y, "$t$ (B,)", "data", w=0.8, h=0.42)
    sin = _box(ax, 2.15, y, f"sinusoidal\nfeatures ({t_dim})", "op", w=1.5, h=0.55)
    mlp = _box(ax, 4.0, y, f"time MLP\n{t_dim} → {emb_dim} → {emb_dim}", "net", w=1.6, h=0.55)
    emb_text = f"emb (B, {emb_dim})\n→ every ResBlock (+ emb)"
    emb = _box(ax, 7.6, y, emb_text, "data", w=2.4, h=0.55)
    _arrow(ax, t.right, sin.left)
    _arrow(ax, sin.right, mlp.left)
    if conditional:
        n_rows = model.class_emb.num_embeddings  # the classes, and one more: the null label
        table_text = f"class embedding {n_rows} × {emb_dim}\n{n_rows - 1} classes + 1 null label"
        add = _circle(ax, 5.55, y)
        label = _box(ax, 0.6, y - 0.7, "label (B,)", "data", w=0.8, h=0.42)
        table = _box(ax, 3.1, y - 0.7, table_text, "net", w=2.6, h=0.55)
        _arrow(ax, mlp.right, add.left)
        _arrow(ax, add.right, emb.left)
        _arrow(ax, label.right, table.left)
        _arrow(ax, table.right, (add.x, table.y), add.bottom)
    else:
        _arrow(ax, mlp.right, emb.left)
    _legend(ax, ["data", "net", "op"])
    return fig


# ---------------------------------------------------------------- diffusion


def _check_frames(images: Any) -> Tensor:
    if not isinstance(images, Tensor):
        raise TypeError(
            f"diffusion_chain_diagram: images must be a tensor (N, C, H, W); "
            f"got {type(images).__name__}."
        )
    if images.dim() == 3:  # (N, H, W): one channel
        images = images.unsqueeze(1)
    if images.dim() != 4 or images.shape[1] not in (1, 3) or not 2 <= len(images) <= 8:
        raise ValueError(
            f"diffusion_chain_diagram: images must be 2 to 8 frames of shape (N, 1 or 3, H, W), "
            f"from the cleanest to the noisiest; got shape {tuple(images.shape)}."
        )
    return images.detach().float().cpu()


def _check_timesteps(timesteps: Sequence[int], n: int) -> list[int]:
    steps = [int(t) for t in timesteps]
    if len(steps) != n or steps[0] < 0 or any(b <= a for a, b in zip(steps, steps[1:])):
        raise ValueError(
            f"diffusion_chain_diagram: timesteps must be {n} increasing values >= 0, one per "
            f"image; got {list(timesteps)}."
        )
    return steps


def diffusion_chain_diagram(
    images: Tensor | None = None,
    timesteps: Sequence[int] | None = None,
    value_range: tuple[float, float] = (-1.0, 1.0),
) -> Figure:
    """The forward (noising) chain and the learned reverse (denoising) chain of a diffusion model.

    Forward: ``q(x_t | x_{t-1})`` adds a little Gaussian noise per step, and
    ``q(x_t | x_0)`` jumps there at once (:func:`genai_lib.diffusion.q_sample`).
    Reverse: ``p_theta(x_{t-1} | x_t)``, whose mean comes from the network's
    noise prediction ``eps_theta(x_t, t)`` (:func:`genai_lib.diffusion.ddpm_step`).

    ``images`` ``(N, C, H, W)``: 2 to 8 frames from the cleanest to the
    noisiest, in ``value_range`` (diffusion space, [-1, 1], by default), drawn
    as the chain's states; without them the states are boxes. ``timesteps``
    name the frames with the text's t, 0 for the clean image (genai_lib's
    0-based ``t`` is the text's ``t - 1``), and count the steps between them.
    """
    if images is None:
        names = ["$x_0$", "$x_1$", "…", "$x_{t-1}$", "$x_t$", "…", "$x_T$"]
    else:
        images = _check_frames(images)
        lo, hi = value_range
        images = ((images - lo) / (hi - lo)).clamp(0, 1)
        if timesteps is not None:
            timesteps = _check_timesteps(timesteps, len(images))
            names = [f"$x_{{{t}}}$" for t in timesteps]
        else:
            names = [f"frame {k + 1}" for k in range(len(images))]
    n = len(names)

    fig, ax = _canvas(10, 5.0)
    _title(ax, 0.15, 4.9, "Diffusion: noise added step by step, removed by a learned network")
    one_step = "$q(x_t\\,|\\,x_{t-1}) = \\mathcal{N}(\\sqrt{1-\\beta_t}\\,x_{t-1},\\ \\beta_t I)$"
    one_jump = (
        "$q(x_t\\,|\\,x_0) = \\mathcal{N}(\\sqrt{\\bar\\alpha_t}\\,x_0,\\ (1-\\bar\\alpha_t) I)$"
    )
    forward = "forward process $q$, fixed: a little Gaussian noise per step"
    _text(ax, 0.15, 4.45, forward, ha="left", va="top", fontsize=FONT + 1)
    _text(ax, 0.35, 4.1, f"one step: {one_step}", ha="left", va="top")
    _text(ax, 4.9, 4.1, f"in one jump: {one_jump}, q_sample", ha="left", va="top")

    spacing = 8.5 / (n - 1)
    y, size = 3.05, min(0.8, 0.6 * spacing)  # the chain's row, and each state's size
    nodes: list[_Box] = []
    for k, name in enumerate(names):
        x = 0.75 + k * spacing
        noisiness = k / (n - 1)  # colours shade from data blue (x_0) to noise purple (x_T)
        if images is not None:
            corners = (x - size / 2, x + size / 2, y - size / 2, y + size / 2)
            img = images[k, 0] if images.shape[1] == 1 else images[k].permute(1, 2, 0)
            img = (
                img.numpy()
            )  # matplotlib takes arrays; a tensor would go through a deprecated path
            ax.imshow(img, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest", extent=corners)
            edge = _mix(KINDS["data"][1], KINDS["noise"][1], noisiness)
            border = Rectangle(
                (corners[0], corners[2]), size, size, facecolor="none", edgecolor=edge
            )
            ax.add_patch(border)
            _text(ax, x, y + size / 2 + 0.05, name, va="bottom")
            nodes.append(_Box(x, y, size, size))
        elif name == "…":
            _text(ax, x, y, name, fontsize=FONT + 4)
            nodes.append(_Box(x, y, 0.4, size))
        else:
            kind = "noise" if k == n - 1 else "data"
            fill = _mix(KINDS["data"][0], KINDS["noise"][0], noisiness)
            nodes.append(_box(ax, x, y, name, kind, w=size, h=0.6, fill=fill))
    gap, learned = 0.12, KINDS["net"][1]  # forward arrows run above the middle, reverse ones below
    for k, (a, b) in enumerate(zip(nodes, nodes[1:])):
        _arrow(ax, (a.right[0] + 0.04, y + gap), (b.left[0] - 0.04, y + gap))
        _arrow(ax, (b.left[0] - 0.04, y - gap), (a.right[0] + 0.04, y - gap), color=learned)
        if timesteps is not None:
            steps = timesteps[k + 1] - timesteps[k]
            count = f"{steps}\nstep{'s' if steps > 1 else ''}"
            _text(ax, (a.x + b.x) / 2, y + 0.36, count, fontsize=FONT - 2, linespacing=1.1)

    # one reverse step in detail: from x_t to x_{t-1} (with images: between the middle two frames)
    k = 3 if images is None else (n - 2) // 2
    mid = (nodes[k].right[0] + nodes[k + 1].left[0]) / 2
    if images is None:
        _text(ax, mid, y + 0.36, "$q$")
        _text(ax, mid - 0.1, y - 0.36, "$p_\\theta$", ha="right", color=learned)
    net_text = (
        "U-Net $\\varepsilon_\\theta(x_t, t)$ predicts the noise\n"
        "$\\to$ mean of $p_\\theta(x_{t-1}\\,|\\,x_t)$, ddpm_step"
    )
    net = _box(ax, min(max(mid, 1.85), 5.95), 1.3, net_text, "net", w=3.4, h=0.65)
    _arrow(ax, (mid, net.top[1]), (mid, y - gap - 0.04), color=learned)
    loss_text = "trained on\n$\\|\\varepsilon - \\varepsilon_\\theta(x_t, t)\\|^2$"
    loss = _box(ax, net.right[0] + 1.2, 1.3, loss_text, "loss", w=1.8, h=0.65)
    _arrow(ax, net.right, loss.left)
    reverse = (
        "reverse process $p_\\theta$, learned: noise removed step by step,\n"
        "from $x_T \\sim \\mathcal{N}(0, I)$ back to an image"
    )
    _text(ax, 0.15, 2.35, reverse, ha="left", va="top", fontsize=FONT + 1, color=learned)
    _legend(ax, ["data", "noise", "net", "loss"])
    return fig
