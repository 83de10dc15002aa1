"""Networks and density models. A model takes tensors and knows nothing of how it is trained."""

from genai_lib.models.classifier import DigitClassifier
from genai_lib.models.gpt import GPT, GPTConfig, KVCache
from genai_lib.models.lora import LoRALinear, inject_lora, merge_lora, unmerge_lora
from genai_lib.models.mixture import GaussianMixture
from genai_lib.models.ngram import MLPLM, BigramLM
from genai_lib.models.rnn import LSTMLM
from genai_lib.models.unet import UNet
from genai_lib.models.vae import VAE

__all__ = [
    "GPT",
    "LSTMLM",
    "MLPLM",
    "BigramLM",
    "DigitClassifier",
    "GPTConfig",
    "GaussianMixture",
    "KVCache",
    "LoRALinear",
    "UNet",
    "VAE",
    "inject_lora",
    "merge_lora",
    "unmerge_lora",
]
