"""Generators and discriminators for GANs, as networks only.

A generator maps noise ``z (N, latent_dim)`` (and, if conditional, class
labels ``(N,)``) to samples; a discriminator maps samples (and labels) to
**logits** ``(N,)``: D(x) = sigmoid(logit) is its probability that x is real.
There is no sigmoid inside the discriminator: the losses in
:mod:`genai_lib.losses` take logits, which is numerically safe.

Two families:

- MLPs, for 2-D toy data and flattened images, including four commonly
  published MNIST GANs (see :func:`published_gan`);
- DCGAN-style convolutional networks (Radford et al. 2015) for 8x8 and
  28x28 images: two stride-2 (transposed) convolutions.

Conditional versions (Mirza & Osindero 2014) append a one-hot label to z, and
give the discriminator the label as extra constant image channels (or extra
inputs for an MLP).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from genai_lib.models.inputs import check_dtype


def _check(name: str, x: Tensor, shape: tuple[int, ...], module: nn.Module) -> None:
    check_dtype(name, x, module)
    if tuple(x.shape[1:]) != tuple(shape):
        raise ValueError(
            f"{name} expects inputs of shape (N, {', '.join(map(str, shape))}); got {tuple(x.shape)}."
        )


def _labels(name: str, labels: Tensor | None, n_classes: int | None, n: int) -> Tensor | None:
    if n_classes is None:
        if labels is not None:
            raise ValueError(
                f"This {name} is unconditional; build it with n_classes=... to pass labels."
            )
        return None
    if labels is None or labels.shape != (n,):
        raise ValueError(
            f"This conditional {name} needs one class label per sample, shape ({n},); "
            f"got {None if labels is None else tuple(labels.shape)}."
        )
    if labels.is_floating_point() or labels.is_complex():
        raise ValueError(
            f"Class labels must be whole numbers (an integer tensor, e.g. torch.long); got "
            f"{labels.dtype}. A float label such as 2.7 has no class: .long() would quietly "
            f"make it 2."
        )
    # a range check needs the values on the host: done where that is free (no GPU sync)
    if (
        labels.device.type == "cpu"
        and len(labels)
        and (labels.min() < 0 or labels.max() >= n_classes)
    ):
        raise ValueError(
            f"Class labels must lie in 0..{n_classes - 1}; got values from {labels.min().item()} "
            f"to {labels.max().item()}."
        )
    return F.one_hot(labels.long(), n_classes).float()


class MLPGenerator(nn.Module):
    """z -> hidden layers -> a sample of shape ``out_shape``.

    ``output="tanh"`` for images scaled to [-1, 1]; ``None`` for unbounded data (2-D points).
    """

    def __init__(
        self,
        latent_dim: int = 100,
        out_shape: tuple[int, ...] = (1, 28, 28),
        hidden: tuple[int, ...] = (256, 512, 1024),
        n_classes: int | None = None,
        batchnorm: bool = False,
        activation: str = "leaky_relu",
        output: str | None = "tanh",
        bias: bool = True,
    ):
        super().__init__()
        self.latent_dim, self.out_shape, self.n_classes = latent_dim, tuple(out_shape), n_classes
        act = {"leaky_relu": lambda: nn.LeakyReLU(0.2), "relu": nn.ReLU}[activation]
        layers: list[nn.Module] = []
        n_in = latent_dim + (n_classes or 0)
        for width in hidden:
            # BN has its own shift
            layers.append(nn.Linear(n_in, width, bias=bias and not batchnorm))
            if batchnorm:
                layers.append(nn.BatchNorm1d(width))
            layers.append(act())
            n_in = width
        layers.append(nn.Linear(n_in, math.prod(out_shape)))
        if output == "tanh":
            layers.append(nn.Tanh())
        elif output is not None:
            raise ValueError(f"output must be 'tanh' or None; got {output!r}.")
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        _check("MLPGenerator", z, (self.latent_dim,), self)
        onehot = _labels("generator", labels, self.n_classes, len(z))
        if onehot is not None:
            z = torch.cat([z, onehot], dim=1)
        return self.net(z).view(-1, *self.out_shape)


class MLPDiscriminator(nn.Module):
    """A sample of shape ``in_shape`` -> hidden layers (LeakyReLU, dropout) -> one logit."""

    def __init__(
        self,
        in_shape: tuple[int, ...] = (1, 28, 28),
        hidden: tuple[int, ...] = (1024, 512, 256),
        dropout: float = 0.3,
        n_classes: int | None = None,
        spectral_norm: bool = False,
    ):
        super().__init__()
        self.in_shape, self.n_classes = tuple(in_shape), n_classes
        wrap = _spectral_norm if spectral_norm else (lambda m: m)
        layers: list[nn.Module] = []
        n_in = math.prod(in_shape) + (n_classes or 0)
        for width in hidden:
            layers += [wrap(nn.Linear(n_in, width)), nn.LeakyReLU(0.2)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            n_in = width
        layers.append(wrap(nn.Linear(n_in, 1)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        _check("MLPDiscriminator", x, self.in_shape, self)
        h = x.flatten(1)
        onehot = _labels("discriminator", labels, self.n_classes, len(x))
        if onehot is not None:
            h = torch.cat([h, onehot], dim=1)
        return self.net(h).squeeze(1)


def _check_side(image_shape: tuple[int, int, int]) -> None:
    if len(image_shape) != 3 or image_shape[1] % 4 or image_shape[2] % 4:
        raise ValueError(
            f"DCGAN networks need image_shape (C, H, W) with H and W divisible by 4; got {image_shape}."
        )


class DCGenerator(nn.Module):
    """z -> linear -> (c0, H/4, W/4) -> transposed conv -> (c1, H/2, W/2) -> transposed conv -> tanh image."""

    def __init__(
        self,
        latent_dim: int = 32,
        image_shape: tuple[int, int, int] = (1, 8, 8),
        channels: tuple[int, int] = (128, 64),
        n_classes: int | None = None,
    ):
        super().__init__()
        _check_side(image_shape)
        self.latent_dim, self.image_shape, self.n_classes = (
            latent_dim,
            tuple(image_shape),
            n_classes,
        )
        c, h, w = image_shape
        self.start = (channels[0], h // 4, w // 4)
        self.project = nn.Sequential(
            nn.Linear(latent_dim + (n_classes or 0), math.prod(self.start), bias=False),
            nn.BatchNorm1d(math.prod(self.start)),
            nn.ReLU(),
        )
        # (C, H, W)
        self.upsample = nn.Sequential(
            # (c1, H/2, W/2)
            nn.ConvTranspose2d(channels[0], channels[1], 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(channels[1]),
            nn.ReLU(),
            nn.ConvTranspose2d(channels[1], c, 4, stride=2, padding=1),
            nn.Tanh(),
        )

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        _check("DCGenerator", z, (self.latent_dim,), self)
        onehot = _labels("generator", labels, self.n_classes, len(z))
        if onehot is not None:
            z = torch.cat([z, onehot], dim=1)
        return self.upsample(self.project(z).view(-1, *self.start))


class DCDiscriminator(nn.Module):
    """Image (+ label channels) -> two stride-2 convolutions with LeakyReLU -> one logit.

    No batch norm: it would couple the samples of a batch, which the gradient
    penalty of WGAN-GP assumes away. ``spectral_norm=True`` bounds each
    layer's Lipschitz constant (Miyato et al. 2018), a stabiliser.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 8, 8),
        channels: tuple[int, int] = (64, 128),
        n_classes: int | None = None,
        spectral_norm: bool = False,
    ):
        super().__init__()
        _check_side(image_shape)
        self.image_shape, self.n_classes = tuple(image_shape), n_classes
        c, h, w = image_shape
        wrap = _spectral_norm if spectral_norm else (lambda m: m)
        self.net = nn.Sequential(
            wrap(nn.Conv2d(c + (n_classes or 0), channels[0], 4, stride=2, padding=1)),
            nn.LeakyReLU(0.2),
            wrap(nn.Conv2d(channels[0], channels[1], 4, stride=2, padding=1)),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            wrap(nn.Linear(channels[1] * (h // 4) * (w // 4), 1)),
        )

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        _check("DCDiscriminator", x, self.image_shape, self)
        onehot = _labels("discriminator", labels, self.n_classes, len(x))
        if onehot is not None:  # the label as constant image planes, one per class
            x = torch.cat([x, onehot[:, :, None, None].expand(-1, -1, *x.shape[2:])], dim=1)
        return self.net(x).squeeze(1)


PUBLISHED_GANS = ("mlp", "pytorch", "keras", "keras-narrow")


def published_gan(
    name: str, latent_dim: int = 100, image_shape: tuple[int, int, int] = (1, 28, 28)
) -> tuple[nn.Module, nn.Module]:
    """The MLP GANs of four commonly published MNIST examples, made to work in PyTorch.

    Every discriminator returns a logit (no sigmoid): the published sigmoid +
    binary cross-entropy becomes BCE-with-logits in :mod:`genai_lib.losses`.

    - ``"mlp"``: latent -> 4 hidden ReLU layers of 256 -> pixels, tanh added
      so the output matches images in [-1, 1] (the published version gives
      no output activation and no discriminator; we pair it with the
      ``"pytorch"`` discriminator).
    - ``"pytorch"``: G 100-256-512-1024-784 (LeakyReLU 0.2, tanh),
      D 784-1024-512-256-1 (LeakyReLU 0.2, dropout 0.3).
    - ``"keras"`` (wide discriminator): G 100 -> 256 -> BN -> LeakyReLU ->
      512 -> BN -> LeakyReLU -> 784 tanh, hidden Linears without bias;
      D 784 -> 1024 -> 512 -> 1 with LeakyReLU 0.2 and dropout 0.2.
    - ``"keras-narrow"`` (deeper batch-norm generator, narrow discriminator):
      G 100 -> 256 -> 512 -> 1024, each Linear without bias, then BN and
      LeakyReLU 0.2, -> 784 tanh; D 784 -> 256 -> LeakyReLU 0.2 -> dropout
      0.3 -> 128 -> LeakyReLU 0.2 -> dropout 0.3 -> 1. (Published with batches
      of 256; the batch size is the training loop's choice, not the network's.)

    A hidden Linear followed by batch norm has no bias: BN subtracts the
    batch mean, which would cancel it, and adds its own learned shift.
    Returns ``(generator, discriminator)``; images of shape ``image_shape``.
    """
    if name == "mlp":
        return (
            MLPGenerator(latent_dim, image_shape, hidden=(256, 256, 256, 256), activation="relu"),
            MLPDiscriminator(image_shape),
        )
    if name == "pytorch":
        return MLPGenerator(latent_dim, image_shape), MLPDiscriminator(image_shape)
    if name == "keras":
        return (
            MLPGenerator(latent_dim, image_shape, hidden=(256, 512), batchnorm=True),
            MLPDiscriminator(image_shape, hidden=(1024, 512), dropout=0.2),
        )
    if name == "keras-narrow":
        return (
            MLPGenerator(latent_dim, image_shape, hidden=(256, 512, 1024), batchnorm=True),
            MLPDiscriminator(image_shape, hidden=(256, 128), dropout=0.3),
        )
    raise ValueError(f"Unknown published GAN {name!r}; choose one of {PUBLISHED_GANS}.")


seed_system = published_gan  # the name it had before; kept so old code keeps working
