"""A denoiser that reads captions: a U-Net with cross-attention over a frozen text encoder's features.

    tokens (B, L) -> TextEncoder (frozen) -> features (B, L, D), padding mask (B, L)
    x_t (B, C, H, W), t (B,) -> UNet(context_dim=D) -> eps_hat (B, C, H, W)

It is called as every model in :mod:`genai_lib.diffusion` is,
``model(x_t, t, tokens)``, so :func:`~genai_lib.diffusion.diffusion_loss`,
the samplers and classifier-free guidance work on it unchanged. "No caption"
is the empty caption (``<bos> <eos>``): :meth:`TextDenoiser.null_condition`
returns it, so dropping captions in training teaches the same network its
unconditional prediction, as a null label does for classes.

The text encoder is CLIP's (:mod:`genai_lib.models.clip`), trained first and
then frozen, as Imagen freezes T5 and Stable Diffusion freezes CLIP's: the
denoiser learns to read features that already put captions meaning the same
thing near each other.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genai_lib.models.clip import TextEncoder
from genai_lib.models.unet import UNet


class TextDenoiser(nn.Module):
    """``forward(x_t (B, C, H, W), t (B,), tokens (B, L)) -> eps_hat (B, C, H, W)``.

    ``null_tokens (L,)``: the ids of the empty caption (``tokenizer.null(1)[0]``).
    The text encoder is frozen here (no gradients, eval mode); the U-Net must
    have been built with ``context_dim = text_encoder.width``.
    """

    def __init__(self, unet: UNet, text_encoder: TextEncoder, null_tokens: Tensor):
        super().__init__()
        if unet.context_dim != text_encoder.width:
            raise ValueError(
                f"The U-Net attends to features of width {unet.context_dim}, but the text encoder's are "
                f"{text_encoder.width}: build UNet(context_dim={text_encoder.width}, ...)."
            )
        null_tokens = torch.as_tensor(null_tokens).long()
        if null_tokens.dim() != 1 or len(null_tokens) != text_encoder.config.block_size:
            raise ValueError(
                f"null_tokens are one caption of {text_encoder.config.block_size} ids; "
                f"got shape {tuple(null_tokens.shape)}."
            )
        self.unet = unet
        self.text_encoder = text_encoder.requires_grad_(False).eval()
        self.register_buffer("null_tokens", null_tokens)
        self.n_classes = None  # not a class-conditional model: see null_condition

    def train(self, mode: bool = True) -> TextDenoiser:
        super().train(mode)
        self.text_encoder.eval()  # frozen: it stays in eval mode while the U-Net trains
        return self

    def read(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Caption tokens ``(B, L)`` -> the features the U-Net attends to ``(B, L, D)`` and their mask ``(B, L)``."""
        with torch.no_grad():
            features, _ = self.text_encoder(tokens)
        return features, self.text_encoder.padding_mask(tokens)

    def forward(self, x: Tensor, t: Tensor | int, tokens: Tensor | None = None) -> Tensor:
        if tokens is None:  # what the samplers pass for "unconditional"
            tokens = self.null_tokens.expand(len(x), -1)
        if tokens.dim() != 2 or len(tokens) != len(x):
            raise ValueError(
                f"TextDenoiser takes one caption per image, tokens ({len(x)}, L); got shape {tuple(tokens.shape)}."
            )
        features, mask = self.read(tokens)
        return self.unet(x, t, context=features, context_mask=mask)

    def null_condition(self, tokens: Tensor) -> Tensor:
        """Empty captions shaped like ``tokens (B, L)``: the unconditional input for guidance."""
        return self.null_tokens.to(tokens.device).expand(len(tokens), -1).clone()

    def conditions(self, tokens: Tensor | None, n: int, device: torch.device) -> Tensor | None:
        """A sampler's captions for ``n`` samples -> ``(n, L)`` on ``device``; one caption ``(1, L)`` serves all."""
        if tokens is None:
            return None
        tokens = torch.as_tensor(tokens)
        if tokens.dim() == 1:
            tokens = tokens[None]
        if tokens.dim() != 2 or len(tokens) not in (1, n) or tokens.dtype.is_floating_point:
            raise ValueError(
                f"Give the sampler caption tokens (1, L) or ({n}, L) for {n} samples, from a CaptionTokenizer; "
                f"got {tokens.dtype} of shape {tuple(tokens.shape)}."
            )
        return tokens.long().expand(n, -1).to(device)
