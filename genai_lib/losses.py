"""The math of the losses, testable on its own.

Everything here is in **nats**. The likelihoods and bounds are summed over the
dimensions of one example (per image, per point) and returned per example, so
the caller chooses how to average; the GAN losses at the end are batch means,
as their optimisers use them. A latent-variable model is anything with

    model.encode(x) -> (mu, logvar)      # q(z|x) = N(mu, diag(exp(logvar)))
    model.decode(z) -> logits            # p(x|z) = Bernoulli(sigmoid(logits)), pixel by pixel
    model.latent_dim

such as :class:`genai_lib.models.VAE`.
"""

from __future__ import annotations

import math
import warnings
from typing import Protocol

import torch
from torch import Tensor
from torch.nn import functional as F

LOG_2PI = math.log(2 * math.pi)


class LatentVariableModel(Protocol):
    latent_dim: int

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]: ...
    def decode(self, z: Tensor) -> Tensor: ...


# ---------------------------------------------------------------- Gaussians


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL( N(mu, diag exp(logvar)) || N(0, I) ) in nats, summed over the last dimension.

    Closed form, per dimension: 1/2 (mu^2 + sigma^2 - log sigma^2 - 1).
    Shapes: ``(..., D) -> (...)``.
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(-1)


def gaussian_log_prob(x: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(x; mu, diag exp(logvar)) in nats, summed over the last dimension. ``(..., D) -> (...)``."""
    return -0.5 * (LOG_2PI + logvar + (x - mu).pow(2) / logvar.exp()).sum(-1)


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """log N(z; 0, I) in nats, summed over the last dimension. ``(..., D) -> (...)``."""
    return -0.5 * (LOG_2PI + z.pow(2)).sum(-1)


def reparameterize(mu: Tensor, logvar: Tensor, n_samples: int | None = None) -> Tensor:
    """z = mu + sigma * eps with eps ~ N(0, I): a sample that gradients flow through.

    ``(N, D) -> (N, D)``, or ``(n_samples, N, D)`` when ``n_samples`` is given.
    """
    std = (0.5 * logvar).exp()
    shape = mu.shape if n_samples is None else (n_samples, *mu.shape)
    return mu + std * torch.randn(shape, device=mu.device, dtype=mu.dtype)


# ---------------------------------------------------------------- decoders


def bernoulli_log_likelihood(logits: Tensor, x: Tensor) -> Tensor:
    """log p(x | z) for pixels x in {0, 1} under Bernoulli(sigmoid(logits)), in nats per image.

    This is minus the binary cross-entropy, summed over pixels. It is a true
    log-probability only for binary x; see chapter 01 for grey values.
    Shapes: ``logits`` and ``x`` ``(..., C, H, W) -> (...)``.
    """
    bce = F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")
    return -bce.flatten(start_dim=-3).sum(-1)


# ---------------------------------------------------------------- bounds on log p(x)


def _check_images(x: Tensor) -> None:
    if x.dim() != 4:
        raise ValueError(f"Expected a batch of images (N, C, H, W); got shape {tuple(x.shape)}.")
    # the Bernoulli likelihood needs pixels in [0, 1]; checked where that is free (no GPU sync)
    if x.device.type != "cpu" or not x.numel():
        return
    lo, hi = x.min().item(), x.max().item()
    if not (lo >= 0 and hi <= 1):  # written so that NaN fails it too
        raise ValueError(
            f"The VAE's Bernoulli likelihood needs pixel values in [0, 1]; these range over "
            f"[{lo:.3g}, {hi:.3g}]. Divide 0..255 images by 255 "
            f"(genai_lib.data loads them in [0, 1]) and binarise them (genai_lib.data.binarize)."
        )


def check_signed_images(x: Tensor, who: str) -> None:
    """Refuse images ``(N, C, H, W)`` outside [-1, 1], the range of a tanh output and of diffusion's data.

    Warns when nothing in the batch is below 0: scaled digits always reach -1
    (their background), so such a batch is almost surely images in [0, 1]
    that missed ``2 * images - 1``. Other shapes (2-D toy points) may take
    any value and are not checked; nor are tensors off the CPU, where reading
    the range would make the host wait for the device at every step.
    """
    if x.dim() != 4 or x.device.type != "cpu" or not x.numel() or not x.is_floating_point():
        return
    lo, hi = x.min().item(), x.max().item()
    if not (lo >= -1 - 1e-3 and hi <= 1 + 1e-3):  # written so that NaN fails it too
        raise ValueError(
            f"{who} takes images in [-1, 1]; these range over [{lo:.3g}, {hi:.3g}]. For images "
            f"in [0, 1] use 2 * images - 1; divide 0..255 images by 255 first."
        )
    if lo >= 0:
        warnings.warn(
            f"{who} takes images in [-1, 1], but nothing in this batch is below 0 (they range "
            f"over [{lo:.3g}, {hi:.3g}]): images in [0, 1]? Scale them with 2 * images - 1.",
            stacklevel=3,
        )


def elbo(model: LatentVariableModel, x: Tensor, beta: float = 1.0) -> dict[str, Tensor]:
    """The evidence lower bound, one sample of z per image.

        ELBO(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x) || p(z))  <=  log p(x)

    Returns per-image tensors ``(N,)`` in nats: ``"elbo"`` (with ``beta``
    weighting the KL: since KL >= 0, for ``beta >= 1`` it is still a lower
    bound on log p(x), a looser one as ``beta`` grows; for ``beta < 1`` it can
    exceed log p(x) and is no bound), ``"recon"`` (the log-likelihood term,
    one-sample estimate) and ``"kl"`` (exact).
    """
    _check_images(x)
    mu, logvar = model.encode(x)
    z = reparameterize(mu, logvar)
    recon = bernoulli_log_likelihood(model.decode(z), x)
    kl = gaussian_kl(mu, logvar)
    return {"elbo": recon - beta * kl, "recon": recon, "kl": kl}


def vae_loss(model: LatentVariableModel, x: Tensor, beta: float = 1.0) -> dict[str, Tensor]:
    """The training loss for :func:`genai_lib.train.fit`: mean negative ELBO in nats per image.

    Also returns the mean reconstruction term (as a negative log-likelihood,
    ``recon_nll``) and the mean KL, for plotting them separately.
    """
    terms = elbo(model, x, beta)
    return {
        "loss": -terms["elbo"].mean(),
        "recon_nll": -terms["recon"].mean(),
        "kl": terms["kl"].mean(),
    }


def iwae_bound(model: LatentVariableModel, x: Tensor, k: int, chunk: int = 100) -> Tensor:
    """The importance-weighted bound (Burda et al. 2015) with ``k`` samples, per image ``(N,)``, in nats.

        log p(x) >= E[ log (1/k) sum_i p(x, z_i) / q(z_i|x) ],   z_i ~ q(z|x)

    It equals the ELBO for k = 1, grows with k, and tends to log p(x) as k
    grows. Samples are drawn in chunks of ``chunk`` to bound memory.
    """
    for name, value in (("k", k), ("chunk", chunk)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1; got {value}.")
    _check_images(x)
    mu, logvar = model.encode(x)
    log_weights = []
    for start in range(0, k, chunk):
        n = min(chunk, k - start)
        z = reparameterize(mu, logvar, n)  # (n, N, D)
        logits = model.decode(z.flatten(0, 1)).unflatten(0, (n, len(x)))
        # - log q(z|x)
        log_w = (
            bernoulli_log_likelihood(logits, x)  # log p(x|z)
            + standard_normal_log_prob(z)  # + log p(z)
            - gaussian_log_prob(z, mu, logvar)
        )
        log_weights.append(log_w)
    return torch.logsumexp(torch.cat(log_weights), dim=0) - math.log(k)


# ---------------------------------------------------------------- GANs
#
# The discriminator outputs a *logit* l; D(x) = sigmoid(l) is its probability that
# x is real. Every loss takes logits: sigmoid + log in one step is numerically safe,
# while log(sigmoid(l)) computed in two steps underflows to log(0) = -inf.


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """-E[log D(x)] - E[log(1 - D(G(z)))], in nats: binary cross-entropy, real -> 1, fake -> 0."""
    return F.binary_cross_entropy_with_logits(
        real_logits, torch.ones_like(real_logits)
    ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def generator_loss(fake_logits: Tensor, kind: str = "nonsaturating") -> Tensor:
    """The generator's loss on the discriminator's logits for generated samples.

    - ``"saturating"``: E[log(1 - D(G(z)))], the minimax game as written. Its
      gradient vanishes when D confidently rejects the fakes, early in training.
    - ``"nonsaturating"``: -E[log D(G(z))] (Goodfellow et al. 2014): the same
      fixed point, strong gradients when the fakes are bad. The generator is
      trained towards the label *real*, never *fake*.
    """
    if kind == "nonsaturating":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    if kind == "saturating":
        return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    raise ValueError(f"Unknown generator loss {kind!r}; use 'nonsaturating' or 'saturating'.")


def optimal_discriminator(p_data: Tensor, p_model: Tensor) -> Tensor:
    """D*(x) = p_data(x) / (p_data(x) + p_model(x)): the best discriminator against a fixed generator."""
    return p_data / (p_data + p_model)


def wasserstein_critic_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """E[f(G(z))] - E[f(x)]: the WGAN critic maximises the gap between real and fake scores."""
    return fake_scores.mean() - real_scores.mean()


def gradient_penalty(critic, real: Tensor, fake: Tensor, *extra: Tensor) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017): E[(||grad f(x_hat)|| - 1)^2] at random mixes of real and fake.

    ``extra`` inputs (a class label, say) are passed to the critic unchanged.
    """
    alpha = torch.rand(len(real), *[1] * (real.dim() - 1), device=real.device, dtype=real.dtype)
    mixed = (alpha * real + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic(mixed, *extra)
    (grads,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    return (grads.flatten(1).norm(dim=1) - 1).pow(2).mean()


# ---------------------------------------------------------------- language models


def next_token_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Cross-entropy of the true next tokens, in nats per token (the mean over all positions).

    ``logits`` ``(B, T, vocab_size)`` score the token after each position;
    ``targets`` ``(B, T)`` are those tokens (the input shifted left by one).
    This is the negative log-likelihood the model assigns to the text, per
    token; divide by ln 2 for bits per token. Targets equal to -100 (a masked
    prompt, padding: :data:`genai_lib.data.instructions.IGNORE`) are skipped,
    and the mean is over the other positions.
    """
    if logits.dim() != 3 or targets.shape != logits.shape[:2]:
        raise ValueError(
            f"next_token_loss takes logits (B, T, V) and targets (B, T); "
            f"got {tuple(logits.shape)} and {tuple(targets.shape)}."
        )
    if targets.is_floating_point() or targets.dtype == torch.bool:
        raise ValueError(f"targets must be integer token ids; got {targets.dtype}.")
    targets = targets.long()  # int32 ids (from numpy, say) too: cross_entropy takes int64 only
    # -100 is cross_entropy's ignore_index; the count is read only on the CPU (no GPU sync)
    if targets.device.type == "cpu" and not (targets != -100).any():
        raise ValueError(
            "Every target is IGNORE (-100), so this batch has nothing to predict and its mean "
            "loss is NaN. Check the prompt masking and the padding (an empty response?)."
        )
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())


# ---------------------------------------------------------------- contrastive (CLIP)


def contrastive_loss(logits: Tensor, matches: Tensor | None = None) -> Tensor:
    """The symmetric InfoNCE loss of CLIP, in nats per pair: the mean of image->text and text->image cross-entropy.

    ``logits (B, B)``: ``logits[i, j]`` scores caption ``j`` for image ``i``,
    already divided by the temperature (``exp(logit_scale) * cosine``).
    Without ``matches`` the right answer for image ``i`` is caption ``i`` alone.

    ``matches (B, B)`` bool: ``matches[i, j]`` is True when caption ``j`` is
    true of image ``i`` (two images of a thin seven; or "a 7", which is true of
    every seven). Row ``i``'s target then spreads evenly over the captions true
    of image ``i``, and column ``j``'s over the images caption ``j`` is true of,
    so the loss never pushes apart a caption and an image it describes. With
    only the diagonal True this is the plain loss. Each pair must match itself.
    A random guess scores ``log B``; the best possible score is the targets'
    entropy, 0 with the diagonal alone.
    """
    if logits.dim() != 2 or logits.shape[0] != logits.shape[1] or logits.shape[0] == 0:
        raise ValueError(
            f"contrastive_loss takes square logits (B, B), one row per image and one column per caption; "
            f"got shape {tuple(logits.shape)}."
        )
    B = len(logits)
    if matches is None:
        target = torch.arange(B, device=logits.device)
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    if matches.shape != (B, B) or matches.dtype != torch.bool:
        raise ValueError(
            f"matches must be bool of shape ({B}, {B}), True where caption j is true of image i; "
            f"got {matches.dtype} of shape {tuple(matches.shape)}."
        )
    if not matches.diagonal().all():
        raise ValueError(
            "matches must be True on the diagonal: every caption is true of its own image."
        )
    m = matches.to(logits.dtype)
    image_to_text = F.cross_entropy(logits, m / m.sum(1, keepdim=True))
    text_to_image = F.cross_entropy(logits.T, m.T / m.T.sum(1, keepdim=True))
    return (image_to_text + text_to_image) / 2
