"""A small CLIP: an image encoder and a text encoder that map matching pairs to nearby unit vectors.

    images (B, 1, H, W) in [0, 1] -> ImageEncoder -> project -> normalise -> (B, D)
    tokens (B, L) int64           -> TextEncoder  -> project -> normalise -> (B, D)
    logits = exp(logit_scale) * image_vectors @ text_vectors.T              (B, B)

Trained with the symmetric contrastive loss
(:func:`genai_lib.losses.contrastive_loss`), row ``i`` of the logits scores
every caption in the batch for image ``i``: the matching caption should win.
Radford et al. (2021) learn the temperature as ``logit_scale = log(1 /
temperature)``, start it at 1 / 0.07 and cap it at 100; so do we.

The text encoder is chapter 03's Transformer (:class:`genai_lib.models.gpt.Block`,
causal self-attention) read at the ``<eos>`` token, which has seen the
whole caption; as in CLIP, the causal mask means padding after ``<eos>`` can
change nothing before it. Its per-token features are what chapter 07's denoiser
attends to (:meth:`TextEncoder.forward`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from genai_lib.models.gpt import Block, GPTConfig
from genai_lib.models.inputs import check_dtype

MAX_LOGIT_SCALE = math.log(100.0)  # the temperature never falls below 1/100 (Radford et al.)


class TextEncoder(nn.Module):
    """Token ids ``(B, L)`` -> per-token features ``(B, L, width)`` and one vector per caption ``(B, width)``.

    ``eos_id`` marks the end of each caption (every caption must have one);
    ``pad_id`` fills the rest. The caption vector is the final-normed feature
    at ``<eos>``.
    """

    def __init__(
        self,
        vocab_size: int,
        context: int = 12,
        width: int = 64,
        layers: int = 2,
        heads: int = 4,
        eos_id: int = 2,
        pad_id: int = 0,
    ):
        super().__init__()
        self.config = GPTConfig(
            vocab_size=vocab_size, block_size=context, n_layer=layers, n_head=heads, n_embd=width
        )
        self.eos_id, self.pad_id, self.width = eos_id, pad_id, width
        self.token_emb = nn.Embedding(vocab_size, width)
        self.pos_emb = nn.Embedding(context, width)
        self.blocks = nn.ModuleList([Block(self.config) for _ in range(layers)])
        self.norm = nn.LayerNorm(width)
        nn.init.normal_(self.token_emb.weight, std=0.02)
        nn.init.normal_(self.pos_emb.weight, std=0.01)

    def _check(self, tokens: Tensor) -> Tensor:
        tokens = torch.as_tensor(tokens)
        if tokens.dim() != 2 or tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
            raise ValueError(
                f"The text encoder takes integer token ids (B, L); got {tokens.dtype} of shape {tuple(tokens.shape)}. "
                f"Make them with a CaptionTokenizer."
            )
        B, L = tokens.shape
        if L > self.config.block_size:
            raise ValueError(
                f"Captions of {L} tokens are longer than the text encoder's context ({self.config.block_size})."
            )
        if tokens.device.type == "cpu" and B:
            if tokens.min() < 0 or tokens.max() >= self.config.vocab_size:
                raise ValueError(
                    f"Token ids must lie in 0..{self.config.vocab_size - 1}; got {tokens.min().item()} to "
                    f"{tokens.max().item()}. Was the tokenizer built for another vocabulary?"
                )
            if not (tokens == self.eos_id).any(1).all():
                raise ValueError(
                    f"Every caption needs an end marker (id {self.eos_id}); the encoder reads the caption there."
                )
        return tokens.long()

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Returns ``(features (B, L, width), caption_vectors (B, width))``."""
        tokens = self._check(tokens)
        L = tokens.shape[1]
        h = self.token_emb(tokens) + self.pos_emb(torch.arange(L, device=tokens.device))
        for block in self.blocks:
            h = block(h)  # causal: position i sees tokens 0..i
        h = self.norm(h)
        eos = (tokens == self.eos_id).int().argmax(1)  # (B,) the first <eos> of each caption
        return h, h[torch.arange(len(tokens), device=tokens.device), eos]

    def padding_mask(self, tokens: Tensor) -> Tensor:
        """``(B, L)`` True where a token is part of the caption (markers included), False on padding."""
        return torch.as_tensor(tokens) != self.pad_id


class ImageEncoder(nn.Module):
    """Images ``(B, C, H, W)`` in [0, 1] -> one vector per image ``(B, width)``: three convolutions, a linear layer.

    Two stride-2 convolutions halve the image twice (8x8 -> 2x2); an adaptive
    average pool takes any larger size (28x28 MNIST) to 2x2 too.
    """

    def __init__(self, in_channels: int = 1, channels: int = 32, width: int = 64):
        super().__init__()
        self.in_channels = in_channels
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1),
            nn.SiLU(),
            nn.Conv2d(2 * channels, 2 * channels, 3, stride=2, padding=1),
            nn.SiLU(),
            nn.AdaptiveAvgPool2d(2),
        )
        self.out = nn.Linear(2 * channels * 4, width)

    def forward(self, images: Tensor) -> Tensor:
        if images.dim() != 4 or images.shape[1] != self.in_channels:
            raise ValueError(
                f"The image encoder takes images (B, {self.in_channels}, H, W); got shape {tuple(images.shape)}."
            )
        check_dtype("The image encoder", images, self)
        return self.out(self.convs(images).flatten(1))


class CLIP(nn.Module):
    """Two encoders, two projections into a shared space of ``embed_dim``, and a learned temperature.

    ``forward(images, tokens)`` returns the ``(B, B)`` logits
    ``exp(logit_scale) * cos(image_i, caption_j)``.
    """

    def __init__(
        self,
        vocab_size: int,
        context: int = 12,
        embed_dim: int = 32,
        width: int = 64,
        text_layers: int = 2,
        heads: int = 4,
        image_channels: int = 32,
        in_channels: int = 1,
        eos_id: int = 2,
        pad_id: int = 0,
        temperature: float = 0.07,
    ):
        super().__init__()
        self.image_encoder = ImageEncoder(in_channels, image_channels, width)
        self.text_encoder = TextEncoder(
            vocab_size, context, width, text_layers, heads, eos_id, pad_id
        )
        self.image_proj = nn.Linear(width, embed_dim, bias=False)
        self.text_proj = nn.Linear(width, embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))

    def encode_image(self, images: Tensor) -> Tensor:
        """``(B, C, H, W)`` in [0, 1] -> unit vectors ``(B, embed_dim)``."""
        return F.normalize(self.image_proj(self.image_encoder(images)), dim=-1)

    def encode_text(self, tokens: Tensor) -> Tensor:
        """``(B, L)`` token ids -> unit vectors ``(B, embed_dim)``."""
        return F.normalize(self.text_proj(self.text_encoder(tokens)[1]), dim=-1)

    def scale(self) -> Tensor:
        """``exp(logit_scale)``, the inverse temperature, capped at 100."""
        return self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()

    def forward(self, images: Tensor, tokens: Tensor) -> Tensor:
        """``(B, B)`` logits: row i scores every caption for image i."""
        return self.scale() * self.encode_image(images) @ self.encode_text(tokens).T
