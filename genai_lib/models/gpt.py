"""A GPT: a decoder-only Transformer that predicts the next token.

    tokens (B, T) -> token + position embeddings (B, T, C)
                  -> n_layer x [x + attention(norm(x)); x + mlp(norm(x))]   (pre-norm blocks)
                  -> norm -> logits (B, T, vocab_size)

``logits[b, t]`` scores the token that follows ``tokens[b, :t + 1]``: a causal
mask stops position t from looking at positions after it. The loss (cross-
entropy against the input shifted by one) lives in :mod:`genai_lib.losses`,
decoding strategies in :mod:`genai_lib.sample`.

A :class:`KVCache` keeps every layer's keys and values, so that generating one
more token costs one position's work instead of re-running the whole context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F


@dataclass
class GPTConfig:
    """The sizes of a GPT. The defaults are nanoGPT's "baby GPT" for a CPU (0.8M parameters)."""

    vocab_size: int
    block_size: int = 64  # the longest context, in tokens
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128  # width of the residual stream, C
    dropout: float = 0.0
    bias: bool = False  # biases in the linear layers and layer norms
    gelu: str = "exact"  # "exact" (erf) or "tanh" (the approximation GPT-2 was trained with)

    def __post_init__(self) -> None:
        if self.gelu not in ("exact", "tanh"):
            raise ValueError(f"GPTConfig.gelu must be 'exact' or 'tanh'; got {self.gelu!r}.")
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) < 1:
                raise ValueError(f"GPTConfig.{name} must be at least 1; got {getattr(self, name)}.")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head}): "
                f"each head gets n_embd / n_head dimensions."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {self.dropout}.")


class KVCache:
    """The keys and values of every layer for the tokens seen so far.

    Preallocated for ``block_size`` positions: ``keys[layer]`` has shape
    ``(B, n_head, block_size, head_dim)``, of which the first ``length``
    positions are filled. Make one with :meth:`GPT.new_cache`.
    """

    def __init__(
        self, config: GPTConfig, batch_size: int, device: torch.device, dtype: torch.dtype
    ):
        shape = (
            config.n_layer,
            batch_size,
            config.n_head,
            config.block_size,
            config.n_embd // config.n_head,
        )
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0
        self.capacity = config.block_size


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which each position sees only itself and earlier positions."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        # all heads' q, k, v at once
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, cache: KVCache | None = None, layer: int = 0) -> Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        # (B, T, C) -> (B, n_head, T, head_dim): each head attends independently
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        start = 0
        if cache is not None:
            start = cache.length
            cache.keys[layer, :, :, start : start + T] = k
            cache.values[layer, :, :, start : start + T] = v
            k = cache.keys[layer, :, :, : start + T]
            v = cache.values[layer, :, :, : start + T]
        dropout = self.dropout if self.training else 0.0
        if start == 0:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
        else:
            # Queries sit at positions start..start+T-1 and keys at 0..start+T-1, so the mask is
            # not square: query i may see key j when j <= start + i. (is_causal=True would align
            # the triangle to the top-left corner, which is wrong here.)
            mask = torch.ones(T, start + T, dtype=torch.bool, device=x.device).tril(diagonal=start)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side again
        return self.resid_dropout(self.proj(y))


class MLP(nn.Module):
    """The position-wise feed-forward layer: C -> 4C -> C with a GELU."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.up = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)
        self.approximate = "tanh" if config.gelu == "tanh" else "none"

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.proj(F.gelu(self.up(x), approximate=self.approximate)))


class Block(nn.Module):
    """A pre-norm Transformer block: normalise *before* each sub-layer, add its output to the stream.

    Pre-norm keeps an untouched path from the input to the output (the residual
    stream), which is why deep stacks of these train without warm-up tricks.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.norm2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: Tensor, cache: KVCache | None = None, layer: int = 0) -> Tensor:
        x = x + self.attn(self.norm1(x), cache, layer)
        return x + self.mlp(self.norm2(x))


class GPT(nn.Module):
    """A GPT language model. ``forward(tokens) -> logits``, shapes ``(B, T) -> (B, T, vocab_size)``."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.block_size = config.block_size
        self.token_embedding = nn.Embedding(config.vocab_size, config.n_embd)
        self.position_embedding = nn.Embedding(config.block_size, config.n_embd)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.norm = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # Weight tying: the output layer scores token v by the dot product with v's own input
        # embedding. It saves vocab_size * n_embd parameters and usually helps (Press & Wolf, 2017).
        self.lm_head.weight = self.token_embedding.weight

        self.apply(self._init_weights)
        # Each block adds two projections to the residual stream; scaling their initial weights
        # by 1 / sqrt(2 n_layer) keeps the stream's variance from growing with depth (GPT-2).
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    @classmethod
    def from_hf(cls, hf_model: nn.Module) -> GPT:
        """A GPT with the weights of a Hugging Face ``GPT2LMHeadModel`` (any size, e.g. ``"gpt2"``).

        GPT-2 stores its projections as ``Conv1D`` layers, whose weights are
        the transpose of an ``nn.Linear``'s; it uses biases everywhere and the
        tanh approximation of GELU. Nothing is downloaded here: load the model
        with transformers first (``GPT2LMHeadModel.from_pretrained("gpt2")``).
        """
        hf = hf_model.config
        if getattr(hf, "model_type", None) != "gpt2":
            raise ValueError(
                f"from_hf takes a GPT-2 model; got model_type {getattr(hf, 'model_type', None)!r}."
            )
        if hf.activation_function not in ("gelu_new", "gelu_pytorch_tanh", "gelu"):
            raise ValueError(f"Unsupported GPT-2 activation {hf.activation_function!r}.")
        if abs(hf.layer_norm_epsilon - 1e-5) > 1e-12 or not hf.scale_attn_weights:
            raise ValueError(
                "from_hf supports GPT-2's standard layer norm epsilon (1e-5) and attention scaling."
            )
        config = GPTConfig(
            vocab_size=hf.vocab_size,
            block_size=hf.n_positions,
            n_layer=hf.n_layer,
            n_head=hf.n_head,
            n_embd=hf.n_embd,
            dropout=0.0,
            bias=True,
            gelu="exact" if hf.activation_function == "gelu" else "tanh",
        )
        model = cls(config)
        source = hf_model.state_dict()
        ours: dict[str, Tensor] = {
            "token_embedding.weight": source["transformer.wte.weight"],
            "position_embedding.weight": source["transformer.wpe.weight"],
            "norm.weight": source["transformer.ln_f.weight"],
            "norm.bias": source["transformer.ln_f.bias"],
        }
        renames = {
            "ln_1": "norm1",
            "ln_2": "norm2",
            "attn.c_attn": "attn.qkv",
            "attn.c_proj": "attn.proj",
            "mlp.c_fc": "mlp.up",
            "mlp.c_proj": "mlp.proj",
        }
        for i in range(config.n_layer):
            for theirs, mine in renames.items():
                weight = source[f"transformer.h.{i}.{theirs}.weight"]
                is_conv1d = not theirs.startswith("ln")
                # Conv1D is (in, out)
                ours[f"blocks.{i}.{mine}.weight"] = weight.t() if is_conv1d else weight
                ours[f"blocks.{i}.{mine}.bias"] = source[f"transformer.h.{i}.{theirs}.bias"]
        ours["lm_head.weight"] = ours["token_embedding.weight"]  # tied in both
        model.load_state_dict({k: v.detach().clone() for k, v in ours.items()})
        return model.eval()

    def num_parameters(self, include_position_embedding: bool = False) -> int:
        """Parameter count; tied weights count once. Without the position table by default, as nanoGPT counts."""
        n = sum(p.numel() for p in self.parameters())
        return n if include_position_embedding else n - self.position_embedding.weight.numel()

    def new_cache(self, batch_size: int = 1) -> KVCache:
        """An empty :class:`KVCache` for ``batch_size`` sequences, on this model's device and dtype."""
        weight = self.token_embedding.weight
        return KVCache(self.config, batch_size, weight.device, weight.dtype)

    def forward(self, tokens: Tensor, cache: KVCache | None = None) -> Tensor:
        """Logits for the token after each position: ``(B, T) -> (B, T, vocab_size)``.

        With a ``cache``, ``tokens`` continue the sequence the cache holds (they
        sit at positions ``cache.length`` onwards) and the cache grows by ``T``.
        """
        if tokens.dim() != 2 or tokens.dtype not in (torch.long, torch.int):
            raise ValueError(
                f"GPT takes a (batch, time) tensor of integer token ids; "
                f"got shape {tuple(tokens.shape)} and dtype {tokens.dtype}."
            )
        B, T = tokens.shape
        start = cache.length if cache is not None else 0
        if start + T > self.block_size:
            where = f" after the {start} cached ones" if start else ""
            raise ValueError(
                f"{T} tokens{where} exceed the model's block_size of {self.block_size}. "
                f"Crop the context to its last {self.block_size - start} tokens "
                f"(genai_lib.sample.generate does this for you)."
            )
        if cache is not None and cache.keys.shape[1] != B:
            raise ValueError(f"The cache was made for batch size {cache.keys.shape[1]}, not {B}.")
        if (
            tokens.device.type == "cpu"
            and T
            and (tokens.min() < 0 or tokens.max() >= self.config.vocab_size)
        ):
            # on a CPU, nn.Embedding would only say "index out of range in self"
            bad = tokens[(tokens < 0) | (tokens >= self.config.vocab_size)][0].item()
            raise ValueError(
                f"Token id {bad} is outside the vocabulary [0, {self.config.vocab_size})."
            )

        positions = torch.arange(start, start + T, device=tokens.device)
        x = self.dropout(self.token_embedding(tokens) + self.position_embedding(positions))
        for layer, block in enumerate(self.blocks):
            x = block(x, cache, layer)
        if cache is not None:
            cache.length += T
        return self.lm_head(self.norm(x))
