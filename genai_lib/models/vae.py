"""Variational autoencoders: an encoder q(z|x) and a decoder p(x|z), as networks.

    encode(x) -> (mu, logvar)   q(z|x) = N(mu(x), diag exp(logvar(x)))
    decode(z) -> logits         p(x|z) = Bernoulli(sigmoid(logits)), one per pixel

The losses (ELBO, IWAE) live in :mod:`genai_lib.losses`; this file holds only
the networks. Three architectures:

- ``"classic"``: one hidden layer of 400 ReLU units (784-400-20 on MNIST with
  ``latent_dim=20``), as in the VAE of PyTorch's examples repository, which
  many tutorials copy. It is *not* Kingma & Welling's (2013) configuration:
  their MNIST networks had one hidden layer of 500 tanh units (200 for Frey
  Face), latent sizes from 3 to 200, Adagrad and minibatches of 100;
- ``"mlp"``: two hidden layers with SiLU activations (the course default);
- ``"conv"``: strided convolutions down, transposed convolutions up.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genai_lib.models.inputs import check_dtype


class VAE(nn.Module):
    """A VAE for images of shape ``image_shape = (C, H, W)`` with a ``latent_dim``-dimensional z.

    ``hidden`` sets the widths: the hidden layer sizes for ``"mlp"`` and
    ``"classic"`` (encoder order; the decoder mirrors them), or the two channel
    counts of the convolutions for ``"conv"``. ``None`` gives the defaults.
    """

    ARCHS = ("mlp", "conv", "classic")

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 8, 8),
        latent_dim: int = 8,
        arch: str = "mlp",
        hidden: tuple[int, ...] | None = None,
    ):
        super().__init__()
        if arch not in self.ARCHS:
            raise ValueError(f"Unknown arch {arch!r}; choose one of {self.ARCHS}.")
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be at least 1; got {latent_dim}.")
        if arch == "conv" and hidden is not None and len(hidden) != 2:
            raise ValueError(
                f"The conv VAE takes two channel counts, e.g. hidden=(32, 64); got {hidden}."
            )
        if len(image_shape) != 3:
            raise ValueError(f"image_shape must be (C, H, W); got {image_shape}.")
        self.image_shape, self.latent_dim, self.arch = tuple(image_shape), latent_dim, arch
        c, h, w = image_shape
        n_pixels = c * h * w
        if arch == "classic":
            hidden = hidden or (400,)
            self.encoder = mlp([n_pixels, *hidden], nn.ReLU)
            self.decoder_body = mlp([latent_dim, *hidden[::-1]], nn.ReLU)
            self.to_stats = nn.Linear(hidden[-1], 2 * latent_dim)
            self.to_logits = nn.Linear(hidden[0], n_pixels)
        elif arch == "mlp":
            hidden = hidden or (512, 256)
            self.encoder = mlp([n_pixels, *hidden], nn.SiLU)
            self.decoder_body = mlp([latent_dim, *hidden[::-1]], nn.SiLU)
            self.to_stats = nn.Linear(hidden[-1], 2 * latent_dim)
            self.to_logits = nn.Linear(hidden[0], n_pixels)
        else:
            if h % 4 or w % 4:
                raise ValueError(
                    f"The conv VAE needs a height and width divisible by 4; got {h}x{w}."
                )
            ch = hidden or (32, 64)
            feat = (ch[1], h // 4, w // 4)  # two stride-2 steps quarter the image
            n_feat = ch[1] * (h // 4) * (w // 4)
            self.encoder = nn.Sequential(
                nn.Conv2d(c, ch[0], 4, stride=2, padding=1),
                nn.SiLU(),  # (ch0, H/2, W/2)
                nn.Conv2d(ch[0], ch[1], 4, stride=2, padding=1),
                nn.SiLU(),  # (ch1, H/4, W/4)
                nn.Flatten(),
                nn.Linear(n_feat, 256),
                nn.SiLU(),
            )
            self.to_stats = nn.Linear(256, 2 * latent_dim)
            # latent -> (ch0, H/2, W/2)
            self.decoder_body = nn.Sequential(
                nn.Linear(latent_dim, 256),
                nn.SiLU(),
                nn.Linear(256, n_feat),
                nn.SiLU(),
                nn.Unflatten(1, feat),
                nn.ConvTranspose2d(ch[1], ch[0], 4, stride=2, padding=1),
                nn.SiLU(),
            )
            self.to_logits = nn.ConvTranspose2d(ch[0], c, 4, stride=2, padding=1)  # (C, H, W)

    def _check(self, x: Tensor) -> None:
        check_dtype("This VAE", x, self)
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(
                f"This VAE was built for images of shape (N, {', '.join(map(str, self.image_shape))}); "
                f"got {tuple(x.shape)}. Reshape with x.view(-1, *model.image_shape), or build the "
                f"VAE with image_shape={tuple(x.shape[1:]) if x.dim() == 4 else '...'}."
            )

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(N, C, H, W) -> (mu, logvar)``, each ``(N, latent_dim)``."""
        self._check(x)
        inputs = x if self.arch == "conv" else x.flatten(1)
        mu, logvar = self.to_stats(self.encoder(inputs)).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z: Tensor) -> Tensor:
        """``(..., latent_dim) -> logits (..., C, H, W)``; ``sigmoid(logits)`` is the probability of ink."""
        if z.shape[-1] != self.latent_dim:
            raise ValueError(
                f"Expected latent codes of size {self.latent_dim}; got shape {tuple(z.shape)}."
            )
        lead = z.shape[:-1]  # any leading shape: (N,), (K, N), ...
        logits = self.to_logits(self.decoder_body(z.reshape(-1, self.latent_dim)))
        return logits.view(*lead, *self.image_shape)

    def forward(self, x: Tensor) -> Tensor:
        """Reconstruction logits through the posterior mean: ``decode(mu(x))``."""
        return self.decode(self.encode(x)[0])

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` images from the prior: z ~ N(0, I), shown as pixel probabilities ``(n, C, H, W)``."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator).to(device)
        return torch.sigmoid(self.decode(z))


def mlp(sizes: list[int], activation: type[nn.Module]) -> nn.Sequential:
    """Linear layers of the given sizes, each followed by ``activation``."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), activation()]
    return nn.Sequential(*layers)
