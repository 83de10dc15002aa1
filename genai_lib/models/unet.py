"""A small U-Net that predicts the noise in a noisy image, as a network only.

The call is the one :mod:`genai_lib.diffusion` expects::

    UNet(...)(x_t (B, C, H, W), t (B,) int64, labels (B,) int64 or None) -> eps_hat (B, C, H, W)

The shape of it (Ronneberger et al. 2015, as adapted by Ho et al. 2020):

    conv in -> [residual blocks, downsample] per level -> middle block
            -> [upsample, concatenate the skip, residual blocks] per level -> conv out

- **Time**: ``t`` becomes a sinusoidal embedding (as positions are in the
  original Transformer of Vaswani et al. 2017; the course's GPT learns its
  positions instead), then an MLP; every residual block adds a projection of it to
  its feature maps, so each block knows how noisy its input is.
- **Class** (optional): an embedding table with ``n_classes + 1`` rows,
  added to the time embedding. Row ``n_classes`` is the *null* label, "no
  class", used for the unconditional half of classifier-free guidance.
- **Text** (optional, ``context_dim``): after every residual block, a
  :class:`CrossAttention` layer lets each pixel's features read a sequence of
  text features ``context (B, L, context_dim)``: queries from the image, keys
  and values from the text (as Stable Diffusion does; chapter 07).
- **Normalisation**: GroupNorm, not BatchNorm: a batch mixes very different
  noise levels, and sampling runs with other batch sizes than training.

Level ``i`` has ``base_channels * channel_mults[i]`` channels and works at
``1 / 2**i`` of the input resolution, so H and W must be divisible by
``2**(len(channel_mults) - 1)``: ``(1, 2)`` takes 8x8 to 4x4; ``(1, 2, 2)``
takes 8x8 to 2x2 or 28x28 to 7x7.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from genai_lib.models.inputs import check_dtype


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Sinusoidal features of timesteps: ``t (B,)`` -> ``(B, dim)``, half sines, half cosines.

    Frequencies are spaced geometrically from 1 to ``1 / max_period`` radians
    per step, so nearby timesteps get similar features at every scale.
    """
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half
    )
    angles = t.float()[:, None] * freqs[None, :]  # (B, half)
    emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)  # (B, 2 * half)
    return F.pad(emb, (0, dim - 2 * half))  # (B, dim) even for odd dim


class ResidualBlock(nn.Module):
    """``(B, c_in, H, W)`` + embedding ``(B, emb_dim)`` -> ``(B, c_out, H, W)``.

    GroupNorm -> SiLU -> 3x3 conv, add the projected embedding per channel,
    GroupNorm -> SiLU -> dropout -> 3x3 conv, plus the input (through a 1x1
    conv when the channel count changes).
    """

    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int, dropout: float = 0.0):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups, c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2, self.conv2 = nn.GroupNorm(groups, c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]  # the same shift at every pixel of a channel
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return h + self.skip(x)


class CrossAttention(nn.Module):
    """Image features ``(B, C, H, W)`` read text features ``(B, L, D)``; returns ``(B, C, H, W)``, added to the input.

    Every pixel is a query (from the normalised image features); every text
    token gives a key and a value. With ``heads`` heads of ``C / heads``
    dimensions each, pixel p's output is ``sum_j softmax_j(q_p . k_j / sqrt(C / heads)) v_j``,
    projected back to C channels. ``mask (B, L)`` is True on real tokens;
    padding gets no attention. The output projection starts at zero, so a new
    layer passes the image through unchanged.
    """

    def __init__(self, channels: int, context_dim: int, heads: int = 4, groups: int = 8):
        super().__init__()
        if channels % heads:
            raise ValueError(f"heads={heads} must divide the channels, {channels}.")
        self.heads = heads
        self.norm = nn.GroupNorm(groups, channels)
        self.query = nn.Linear(channels, channels, bias=False)
        self.key = nn.Linear(context_dim, channels, bias=False)
        self.value = nn.Linear(context_dim, channels, bias=False)
        self.out = nn.Linear(channels, channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, context: Tensor, mask: Tensor | None = None) -> Tensor:
        B, C, H, W = x.shape
        h = self.norm(x).flatten(2).transpose(1, 2)  # (B, H*W, C): one query per pixel

        def heads(t: Tensor) -> Tensor:  # (B, N, C) -> (B, heads, N, C / heads)
            return t.view(B, -1, self.heads, C // self.heads).transpose(1, 2)

        q, k, v = heads(self.query(h)), heads(self.key(context)), heads(self.value(context))
        keep = mask[:, None, None, :] if mask is not None else None  # (B, 1, 1, L) over the keys
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)  # (B, heads, H*W, C / heads)
        y = self.out(y.transpose(1, 2).reshape(B, H * W, C))
        return x + y.transpose(1, 2).view(B, C, H, W)


class UNet(nn.Module):
    """An epsilon-prediction U-Net for small images (8x8 digits, 28x28 MNIST).

    Args:
        in_channels: image channels C; the output has the same.
        base_channels: channels of the first level.
        channel_mults: one multiplier of ``base_channels`` per level; the image
            is halved between levels.
        n_classes: ``None`` for an unconditional model; else labels are
            ``0..n_classes-1``, and ``n_classes`` is the null label.
        blocks_per_level: residual blocks per level on the way down (and on the way up).
        groups: GroupNorm groups; must divide every level's channel count.
        dropout: inside the residual blocks.
        context_dim: the width of text features to attend to (a
            :class:`CrossAttention` after every residual block); ``None`` for none.
        heads: attention heads of the cross-attention layers.

    The last convolution starts at zero, so the untrained network predicts
    ``eps_hat = 0`` and the diffusion loss starts at 1, the variance of the noise.
    """

    def __init__(
        self,
        in_channels: int = 1,
        base_channels: int = 32,
        channel_mults: tuple[int, ...] = (1, 2),
        n_classes: int | None = None,
        blocks_per_level: int = 1,
        groups: int = 8,
        dropout: float = 0.0,
        context_dim: int | None = None,
        heads: int = 4,
    ):
        super().__init__()
        channels = [base_channels * m for m in channel_mults]
        if not channels or min(channels) < 1 or blocks_per_level < 1:
            raise ValueError(
                f"UNet needs at least one level of at least one channel and blocks_per_level >= 1; "
                f"got base_channels={base_channels}, channel_mults={channel_mults}, "
                f"blocks_per_level={blocks_per_level}."
            )
        if any(c % groups for c in channels):
            raise ValueError(
                f"groups={groups} must divide the channels of every level, {channels}."
            )
        if n_classes is not None and n_classes < 1:
            raise ValueError(
                f"n_classes must be None (unconditional) or at least 1; got {n_classes}."
            )
        self.in_channels, self.n_classes, self.levels = in_channels, n_classes, len(channels)
        self.base_channels, self.context_dim = base_channels, context_dim
        emb_dim = 4 * base_channels

        self.time_mlp = nn.Sequential(
            nn.Linear(base_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )
        self.class_emb = nn.Embedding(n_classes + 1, emb_dim) if n_classes is not None else None
        self.conv_in = nn.Conv2d(in_channels, channels[0], 3, padding=1)

        def block(c_in: int, c_out: int) -> ResidualBlock:
            return ResidualBlock(c_in, c_out, emb_dim, groups, dropout)

        def attend(c: int) -> nn.Module:
            if context_dim is None:
                return nn.Identity()
            return CrossAttention(c, context_dim, heads, groups)

        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        self.down_attn, self.up_attn = nn.ModuleList(), nn.ModuleList()
        c = channels[0]
        for i, c_level in enumerate(channels):
            self.down.append(
                nn.ModuleList(
                    [block(c if j == 0 else c_level, c_level) for j in range(blocks_per_level)]
                )
            )
            self.down_attn.append(nn.ModuleList([attend(c_level) for _ in range(blocks_per_level)]))
            c = c_level
            if i < self.levels - 1:  # a strided conv halves H and W
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
        self.middle, self.middle_attn = block(c, c), attend(c)
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i in reversed(range(self.levels)):
            c_level = channels[i]
            # the first block of a level also takes the skip of the same level, concatenated
            self.up.append(
                nn.ModuleList(
                    [
                        block((c if j == 0 else c_level) + (c_level if j == 0 else 0), c_level)
                        for j in range(blocks_per_level)
                    ]
                )
            )
            self.up_attn.append(nn.ModuleList([attend(c_level) for _ in range(blocks_per_level)]))
            c = c_level
            if i > 0:  # nearest-neighbour doubling, then a conv to the next level's channels
                self.upsample.append(nn.Conv2d(c, channels[i - 1], 3, padding=1))
                c = channels[i - 1]
        self.norm_out = nn.GroupNorm(groups, c)
        self.conv_out = nn.Conv2d(c, in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def _check(
        self, x: Tensor, t: Tensor | int, labels: Tensor | None
    ) -> tuple[Tensor, Tensor | None]:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"UNet expects images (B, {self.in_channels}, H, W); got shape {tuple(x.shape)}."
            )
        check_dtype("This UNet", x, self)
        factor = 2 ** (self.levels - 1)
        if x.shape[2] % factor or x.shape[3] % factor:
            raise ValueError(
                f"This UNet halves the image {self.levels - 1} time(s), so H and W must be divisible "
                f"by {factor}; got {x.shape[2]}x{x.shape[3]}. Use fewer channel_mults or pad the images."
            )
        t = torch.as_tensor(t, device=x.device)
        if t.dim() == 0:
            t = t.expand(len(x))
        if t.shape != (len(x),):
            raise ValueError(
                f"Expected one timestep per image, shape ({len(x)},); got {tuple(t.shape)}."
            )
        if labels is None:
            if self.n_classes is None:
                return t, None
            # the null label
            labels = torch.full((len(x),), self.n_classes, device=x.device, dtype=torch.long)
        elif self.n_classes is None:
            raise ValueError(
                "This UNet is unconditional; build it with n_classes=... to pass labels."
            )
        if labels.shape != (len(x),) or labels.dtype.is_floating_point:
            raise ValueError(
                f"Expected one integer label per image, shape ({len(x)},); "
                f"got {labels.dtype} of shape {tuple(labels.shape)}."
            )
        # the range is checked where it is free: on a GPU it would wait for the device at every call
        if (
            labels.device.type == "cpu"
            and len(labels)
            and (labels.min() < 0 or labels.max() > self.n_classes)
        ):
            raise ValueError(
                f"Labels must lie in 0..{self.n_classes - 1}, or be {self.n_classes} (the null label); "
                f"got values from {labels.min().item()} to {labels.max().item()}."
            )
        return t, labels.long()

    def _check_context(self, x: Tensor, context: Tensor | None, mask: Tensor | None) -> None:
        if self.context_dim is None:
            if context is not None:
                raise ValueError(
                    "This UNet has no cross-attention; build it with context_dim=... to pass text features."
                )
            return
        if context is None:
            raise ValueError(
                "This UNet attends to text: pass context (B, L, context_dim), the text encoder's features."
            )
        if context.dim() != 3 or context.shape[0] != len(x) or context.shape[2] != self.context_dim:
            raise ValueError(
                f"context must be (B, L, {self.context_dim}) with B = {len(x)} images; got {tuple(context.shape)}."
            )
        if mask is not None and (mask.shape != context.shape[:2] or mask.dtype != torch.bool):
            raise ValueError(
                f"context_mask must be bool of shape {tuple(context.shape[:2])} (True on real tokens); "
                f"got {mask.dtype} of shape {tuple(mask.shape)}."
            )

    def forward(
        self,
        x: Tensor,
        t: Tensor | int,
        labels: Tensor | None = None,
        context: Tensor | None = None,
        context_mask: Tensor | None = None,
    ) -> Tensor:
        """``x (B, C, H, W)``, ``t (B,)`` 0-based timesteps (or one int for all), ``labels (B,)`` or None.

        Returns the predicted noise ``(B, C, H, W)``. A conditional model given
        ``labels=None`` uses the null label: its unconditional prediction. A
        model with ``context_dim`` also takes ``context (B, L, context_dim)``
        and optionally ``context_mask (B, L)``, True on real tokens.
        """
        t, labels = self._check(x, t, labels)
        self._check_context(x, context, context_mask)
        emb = self.time_mlp(timestep_embedding(t, self.base_channels))  # (B, emb_dim)
        if self.class_emb is not None:
            emb = emb + self.class_emb(labels)

        def run(blk: nn.Module, attn: nn.Module, h: Tensor) -> Tensor:
            h = blk(h, emb)
            return attn(h, context, context_mask) if context is not None else h

        h = self.conv_in(x)  # (B, c0, H, W)
        skips = []
        for i, (blocks, attns) in enumerate(zip(self.down, self.down_attn)):
            for blk, attn in zip(blocks, attns):
                h = run(blk, attn, h)
            skips.append(h)  # (B, c_i, H / 2^i, W / 2^i)
            if i < self.levels - 1:
                h = self.downsample[i](h)
        h = run(self.middle, self.middle_attn, h)
        for k, (blocks, attns) in enumerate(
            zip(self.up, self.up_attn)
        ):  # levels from the deepest up
            h = torch.cat([h, skips.pop()], dim=1)
            for blk, attn in zip(blocks, attns):
                h = run(blk, attn, h)
            if k < self.levels - 1:
                h = self.upsample[k](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))  # (B, C, H, W)
