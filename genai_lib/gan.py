"""GAN training as two objectives for the shared training loop.

Each step of :func:`genai_lib.train.fit` runs the discriminator's objective,
then the generator's, on the same batch of real data:

1. **discriminator**: fresh noise -> fakes, made *without* gradients to the
   generator (the generator is not being trained in this half-step); the
   discriminator learns real -> 1, fake -> 0;
2. **generator**: fresh noise -> fakes, *with* gradients; the generator learns
   to make the discriminator say *real*. The discriminator's weights get
   gradients here but are not stepped: each objective has its own optimizer,
   and the loop zeroes each optimizer's gradients before its own step.

Data batches are images scaled to [-1, 1] (the generators end in tanh), or
``(images, labels)`` for a conditional GAN.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genai_lib import losses
from genai_lib.losses import check_signed_images
from genai_lib.models.inputs import class_labels
from genai_lib.train import Objective

LOSSES = ("nonsaturating", "saturating", "wgan-gp")


def _split(batch) -> tuple[Tensor, Tensor | None]:
    if isinstance(batch, (tuple, list)):
        return batch[0], (batch[1] if len(batch) > 1 else None)
    return batch, None


def gan_objectives(
    generator: nn.Module,
    discriminator: nn.Module,
    *,
    loss: str = "nonsaturating",
    lr: float = 2e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    critic_steps: int = 1,
    gp_weight: float = 10.0,
) -> list[Objective]:
    """The discriminator's and the generator's objectives, each with its own Adam optimizer.

    ``loss``: ``"nonsaturating"`` (the default, Goodfellow et al. 2014),
    ``"saturating"`` (the minimax loss as written; for experiments), or
    ``"wgan-gp"`` (a Wasserstein critic with a gradient penalty; use
    ``critic_steps=5`` and ``betas=(0.0, 0.9)`` as Gulrajani et al. did).
    ``critic_steps=k`` steps the generator once every k steps.
    A conditional GAN (``generator.n_classes`` set) uses the real batch's
    labels for its fakes, so both see the data's class frequencies.
    """
    if loss not in LOSSES:
        raise ValueError(f"Unknown GAN loss {loss!r}; choose one of {LOSSES}.")
    if critic_steps < 1:
        raise ValueError(
            f"critic_steps must be at least 1; got {critic_steps}. It is how many discriminator "
            f"(critic) steps come before each generator step."
        )
    latent_dim = generator.latent_dim

    def fakes(real: Tensor, labels: Tensor | None) -> Tensor:
        z = torch.randn(len(real), latent_dim, device=real.device)
        return generator(z, labels) if labels is not None else generator(z)

    def scores(x: Tensor, labels: Tensor | None) -> Tensor:
        return discriminator(x, labels) if labels is not None else discriminator(x)

    def discriminator_step(batch) -> dict[str, Tensor]:
        real, labels = _split(batch)
        check_signed_images(real, "GAN training (the generator ends in tanh)")
        with torch.no_grad():  # no graph through G: it is not trained here
            fake = fakes(real, labels)
        real_scores, fake_scores = scores(real, labels), scores(fake, labels)
        if loss == "wgan-gp":
            extra = (labels,) if labels is not None else ()
            gp = losses.gradient_penalty(discriminator, real, fake, *extra)
            return {
                "loss": losses.wasserstein_critic_loss(real_scores, fake_scores) + gp_weight * gp,
                "wasserstein": real_scores.mean() - fake_scores.mean(),
                "gp": gp,
            }
        return {
            "loss": losses.discriminator_loss(real_scores, fake_scores),
            "d_real": torch.sigmoid(real_scores).mean(),
            "d_fake": torch.sigmoid(fake_scores).mean(),
        }

    def generator_step(batch) -> dict[str, Tensor]:
        real, labels = _split(batch)
        fake_scores = scores(fakes(real, labels), labels)
        if loss == "wgan-gp":
            return {"loss": -fake_scores.mean()}
        return {"loss": losses.generator_loss(fake_scores, loss)}

    return [
        Objective(
            "disc",
            discriminator,
            discriminator_step,
            torch.optim.Adam(discriminator.parameters(), lr=lr, betas=betas),
        ),
        Objective(
            "gen",
            generator,
            generator_step,
            torch.optim.Adam(generator.parameters(), lr=lr, betas=betas),
            every=critic_steps,
        ),
    ]


@torch.no_grad()
def generate(
    generator: nn.Module,
    n: int,
    labels: Tensor | int | list[int] | None = None,
    seed: int | None = None,
    to_unit: bool = True,
) -> Tensor:
    """``n`` samples from ``generator`` in eval mode, on the CPU.

    ``labels (n,)`` for a conditional generator, or one int for n samples of
    that class (as the diffusion samplers take them); ``seed`` fixes the noise;
    ``to_unit`` maps tanh outputs from [-1, 1] to [0, 1] (for images).
    """
    device = next(generator.parameters()).device
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    z = torch.randn(n, generator.latent_dim, generator=g).to(device)
    was_training = generator.training
    generator.eval()
    try:
        labels = class_labels(labels, n, device)
        out = generator(z, labels) if labels is not None else generator(z)
    finally:
        generator.train(was_training)
    out = out.cpu()
    return (out + 1) / 2 if to_unit else out
