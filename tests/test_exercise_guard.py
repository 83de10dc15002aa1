"""Every exercise checker accepts right answers and rejects the wrong ones a learner would write.

One registry, ``CASES``, holds for each checker (each ``check_*`` function of each module in
``genai_lib.exercises``): one or more right answers, and the wrong answers, each with a regular
expression for the hint it must get (the mistakes the checker's hints name among them). The
tests read it:

- ``test_right_answer_is_accepted``: every right answer passes and prints "Correct:". Checkers
  that sample or train run for several seeds (``Case.seeds``): a learner may set any seed.
- ``test_wrong_answer_is_rejected_with_its_hint``: every wrong answer raises ExerciseError, and
  its message matches the hint.
- ``test_an_unfinished_answer_says_not_done``: the student edition's stub gets "Not done yet".
- ``test_every_checker_has_a_right_and_two_wrong_answers``: finds every ``check_*`` function by
  walking the package (pkgutil + inspect), so that a checker added later without a right answer
  and at least two wrong ones fails the suite.

A wrong answer that a checker cannot reject is a reason to fix the checker, not to drop the case.
The expensive contexts (a trained VAE, the GAN's data and classifier) are built once and cached.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import pytest
import torch
from torch.nn import functional as F

import genai_lib.exercises as exercises_package
from genai_lib import seed_everything
from genai_lib.data.bpe import _merge as bpe_merge
from genai_lib.data.instructions import IGNORE
from genai_lib.diffusion import noise_schedule
from genai_lib.exercises import (
    ExerciseError,
    autoregressive,
    diffusion,
    finetuning,
    gan,
    gan_practice,
    scaling,
    text_to_image,
    vae,
    welcome,
)


class Wrong(NamedTuple):
    """A wrong answer: what is wrong with it, a regex of the hint it must get, and the answer."""

    what: str
    hint: str
    answer: Any


@dataclass
class Case:
    """How to test one checker: right answers, wrong answers with their hints, how to call it."""

    checker: Callable[..., None]
    right: list[Any]
    wrong: list[Wrong]
    # run(checker, answer, seed) calls the checker; by default checker(answer)
    run: Callable[[Callable[..., None], Any, int], None] | None = None
    seeds: tuple[int, ...] = (0,)  # statistical checkers: each right answer for each seed
    takes_function: bool = True  # the answer is a function, so a stub says "Not done yet"

    def check(self, answer: Any, seed: int = 0) -> None:
        if self.run is None:
            self.checker(answer)
        else:
            self.run(self.checker, answer, seed)


def not_done(*args, **kwargs):
    raise NotImplementedError()


def identity(v):
    return v


# ---------------------------------------------------------------- 00: welcome


def gaussian_nll(x, mu, s, constant=True, sigma_is_variance=False):
    var = s if sigma_is_variance else s**2
    return (
        0.5 * math.log(2 * math.pi * var)
        - (0 if constant else 0.5 * math.log(2 * math.pi))
        + (x - mu) ** 2 / (2 * var)
    ).mean()


def sample_mixture(weights, means, stds, n, generator, pick_uniformly=False):
    probs = torch.ones_like(weights) / len(weights) if pick_uniformly else weights
    k = torch.multinomial(probs, n, replacement=True, generator=generator)
    return means[k] + stds[k] * torch.randn(n, generator=generator)


def log_prob_in_data_units(log_prob, x, mean, std, jacobian=-1.0, centre=True, log_of="std"):
    """log p(x) for a model ``log_prob`` of standardised points; the defaults are right."""
    u = ((x - mean) if centre else x) / std
    spread = std if log_of == "std" else std**2
    return log_prob(u) + jacobian * spread.log().sum()


WELCOME = [
    Case(
        welcome.check_gaussian_nll,
        right=[gaussian_nll],
        wrong=[
            Wrong(
                "no 1/sqrt(2 pi)",
                "constant is missing",
                lambda x, mu, s: gaussian_nll(x, mu, s, constant=False),
            ),
            Wrong(
                "sigma used as a variance",
                "not a variance",
                lambda x, mu, s: gaussian_nll(x, mu, s, sigma_is_variance=True),
            ),
        ],
    ),
    Case(
        welcome.check_sample_mixture,
        right=[sample_mixture],
        wrong=[
            Wrong(
                "components chosen uniformly",
                "probability pi_k",
                lambda *a: sample_mixture(*a, pick_uniformly=True),
            ),
            Wrong(
                "noise not scaled",
                "Scale the noise",
                lambda w, m, s, n, g: sample_mixture(w, m, torch.ones_like(s), n, g),
            ),
        ],
        run=lambda check, fn, seed: check(fn, seed=seed),
        seeds=(0, 1, 2),
    ),
    Case(
        welcome.check_log_prob_in_data_units,
        right=[
            log_prob_in_data_units,
            lambda lp, x, m, s: lp((x - m) / s) - torch.log(torch.prod(s)),
        ],
        wrong=[
            Wrong(
                "no change-of-variables term",
                "standardised point's score.*integrates to 0.45",
                lambda *a: log_prob_in_data_units(*a, jacobian=0.0),
            ),
            Wrong(
                "the correction added",
                "wrong way round",
                lambda *a: log_prob_in_data_units(*a, jacobian=1.0),
            ),
            Wrong(
                "x scored without standardising",
                "standardise x first",
                lambda lp, x, m, s: lp(x) - s.log().sum(),
            ),
            Wrong(
                "not centred", "wrong place", lambda *a: log_prob_in_data_units(*a, centre=False)
            ),
            Wrong(
                "log variance instead of log std",
                "integrates to 2.22",
                lambda *a: log_prob_in_data_units(*a, log_of="variance"),
            ),
        ],
    ),
]


# ---------------------------------------------------------------- 01: VAE


def kl_gaussians(mu_q, lv_q, mu_p, lv_p):
    return 0.5 * (lv_p - lv_q + (lv_q.exp() + (mu_q - mu_p) ** 2) / lv_p.exp() - 1).sum(-1)


def continuous_bernoulli(logits, x, normalise=1.0, at_half="limit", reduce="sum"):
    """sum over pixels of x log p + (1 - x) log(1 - p) + normalise * log C(p); right by default.

    C(p) = logit / (2p - 1) = logit / tanh(logit / 2), which tends to 2 at logit 0.
    """
    near_half = logits.abs() < 1e-3
    safe = torch.where(near_half, torch.ones_like(logits), logits)
    log_c = (safe / torch.tanh(safe / 2)).log()
    if at_half == "limit":
        log_c = torch.where(near_half, torch.full_like(logits, math.log(2)), log_c)
    else:  # the formula as written: 0/0 at logit 0
        log_c = (logits / torch.tanh(logits / 2)).log()
    per_pixel = -F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    per_pixel = per_pixel + normalise * log_c
    return per_pixel.flatten(1).sum(1) if reduce == "sum" else per_pixel.flatten(1).mean(1)


def gaussian_posterior(x, w, s):
    """p(z|x) for z ~ N(0, 1), x|z ~ N(w z, s^2): the precisions add, 1/v = 1 + w^2 / s^2."""
    var = s**2 / (s**2 + w**2)
    return var * w * x / s**2, var


def kl_per_dimension(mu, logvar):
    return 0.5 * (mu**2 + logvar.exp() - logvar - 1)  # (B, d)


def free_bits(mu, logvar, free_nats, floor="batch mean"):
    """sum_j max(free_nats, mean_i KL_ij); the other floors are the wrong answers."""
    kl = kl_per_dimension(mu, logvar)
    if floor == "each image":
        return kl.clamp(min=free_nats).sum(-1).mean()
    if floor == "ceiling":
        return kl.mean(0).clamp(max=free_nats).sum()
    if floor == "total":
        return kl.sum(-1).mean().clamp(min=free_nats)
    return kl.mean(0).clamp(min=free_nats).sum()


def one(beta: float) -> float:
    return 1.0


def inverse(beta: float) -> float:
    return 1 / beta


@functools.cache
def beta_sweep(
    seed: int, weight: Callable[[float], float] = identity, betas=(0.5, 2.0, 8.0), epochs=3
):
    """Chapter 01b's exercise 3 in fast mode: one MLP VAE per beta, its KL weighted by
    ``weight(beta)`` in the loss. Returns ``{beta: {"kl", "recon_nll"}}``, held-out means in nats
    per image (5 repeats over the 359 images)."""
    from genai_lib.data import binarize, load_digits
    from genai_lib.losses import elbo, vae_loss
    from genai_lib.models import VAE
    from genai_lib.train import fit

    data = load_digits()
    x_val = binarize(data.val_images, torch.Generator().manual_seed(1234))
    results = {}
    for beta in betas:
        seed_everything(seed)
        model = VAE(image_shape=data.shape, latent_dim=16, arch="mlp")
        fit(
            model,
            lambda x, model=model, beta=beta: vae_loss(model, binarize(x), beta=weight(beta)),
            data.train_images,
            steps=epochs * 11,
            batch_size=128,
            lr=1e-3,
            warmup_steps=11,
            progress=False,
        )
        with torch.no_grad():
            terms = [elbo(model.eval(), x_val) for _ in range(5)]
        results[beta] = {
            "kl": torch.stack([t["kl"] for t in terms]).mean().item(),
            "recon_nll": -torch.stack([t["recon"] for t in terms]).mean().item(),
        }
    return results


def swap_keys(results):
    return {b: {"kl": r["recon_nll"], "recon_nll": r["kl"]} for b, r in results.items()}


VAE_CASES = [
    Case(
        vae.check_kl_two_gaussians,
        right=[kl_gaussians],
        wrong=[
            Wrong(
                "KL against N(0, I)",
                "KL against N\\(0, I\\)",
                lambda mq, lq, mp, lp: 0.5 * (mq**2 + lq.exp() - lq - 1).sum(-1),
            ),
            Wrong("KL(p || q)", "swapped", lambda mq, lq, mp, lp: kl_gaussians(mp, lp, mq, lq)),
            Wrong(
                "the 1/2 left out",
                "Not equal to the exact KL",
                lambda mq, lq, mp, lp: 2 * kl_gaussians(mq, lq, mp, lp),
            ),
        ],
    ),
    Case(
        vae.check_continuous_bernoulli,
        right=[
            continuous_bernoulli,
            lambda lg, x: (
                torch.distributions.ContinuousBernoulli(logits=lg).log_prob(x).flatten(1).sum(1)
            ),
        ],
        wrong=[
            Wrong(
                "the Bernoulli formula unchanged",
                "integrates to 0.364",
                lambda lg, x: continuous_bernoulli(lg, x, normalise=0.0),
            ),
            Wrong(
                "log C subtracted",
                "integrates to 0.133",
                lambda lg, x: continuous_bernoulli(lg, x, normalise=-1.0),
            ),
            Wrong(
                "averaged over pixels",
                "Sum over the 64 pixels",
                lambda lg, x: continuous_bernoulli(lg, x, reduce="mean"),
            ),
            Wrong(
                "0/0 at p = 1/2",
                "At logit 0",
                lambda lg, x: continuous_bernoulli(lg, x, at_half="formula"),
            ),
        ],
    ),
    Case(
        vae.check_gaussian_posterior,
        right=[
            gaussian_posterior,
            lambda x, w, s: (w * x / (w**2 + s**2), torch.full_like(x, 1 / (1 + w**2 / s**2))),
        ],
        wrong=[
            Wrong("the prior", "That is the prior", lambda x, w, s: (0 * x, torch.ones_like(x))),
            Wrong("the prior left out", "ignores the prior", lambda x, w, s: (x / w, s**2 / w**2)),
            Wrong(
                "a standard deviation for the variance",
                "Not the posterior yet",
                lambda x, w, s: (gaussian_posterior(x, w, s)[0], s / math.sqrt(s**2 + w**2)),
            ),
            Wrong(
                "s left out",
                "Not the posterior yet",
                lambda x, w, s: (w * x / (1 + w**2), 1 / (1 + w**2)),
            ),
        ],
    ),
    Case(
        vae.check_active_units,
        right=[lambda mu, threshold=0.01: int((mu.var(dim=0) > threshold).sum())],
        wrong=[
            Wrong(
                "size instead of variation",
                "across images",
                lambda mu, t=0.01: int((mu.abs().mean(0) > t).sum()),
            ),
            Wrong(
                "standard deviation against the threshold",
                "not the standard deviation",
                lambda mu, t=0.01: int((mu.std(0) > t).sum()),
            ),
        ],
    ),
    Case(
        vae.check_free_bits,
        right=[
            free_bits,
            lambda mu, lv, f: torch.maximum(
                kl_per_dimension(mu, lv).mean(0), torch.tensor(f)
            ).sum(),
        ],
        wrong=[
            Wrong(
                "the floor on the total KL",
                "plain KL",
                lambda mu, lv, f: free_bits(mu, lv, f, floor="total"),
            ),
            Wrong(
                "a ceiling instead of a floor",
                "ceiling, not a floor",
                lambda mu, lv, f: free_bits(mu, lv, f, floor="ceiling"),
            ),
            Wrong(
                "the floor on each image's KL",
                "Average each dimension's KL over the batch",
                lambda mu, lv, f: free_bits(mu, lv, f, floor="each image"),
            ),
            Wrong(
                "detached",
                "No gradient reaches",
                lambda mu, lv, f: free_bits(mu.detach(), lv.detach(), f),
            ),
            Wrong(
                "one value per dimension",
                "Return one number",
                lambda mu, lv, f: kl_per_dimension(mu, lv).mean(0).clamp(min=f),
            ),
        ],
    ),
    # The answer to this exercise is a dict of results: each "answer" here makes one from a seed.
    Case(
        vae.check_beta_sweep,
        right=[beta_sweep],
        wrong=[
            Wrong(
                "beta not passed to the training",
                "barely changes",
                lambda seed: beta_sweep(seed, weight=one),
            ),
            Wrong(
                "KL divided by beta",
                "should fall as beta grows",
                lambda seed: beta_sweep(seed, weight=inverse),
            ),
            Wrong(
                "kl and recon_nll swapped",
                "should fall as beta grows",
                lambda seed: swap_keys(beta_sweep(seed)),
            ),
            Wrong(
                "betas too close",
                "at least a factor",
                lambda seed: beta_sweep(seed, betas=(0.8, 1.0, 1.25)),
            ),
        ],
        run=lambda check, make_results, seed: check(make_results(seed)),
        seeds=(0, 1, 2),
        takes_function=False,
    ),
]


# ---------------------------------------------------------------- 02a: GAN theory


def smoothed_d_star(lpd, lpg, real_label, how="right"):
    if how == "no smoothing":
        return torch.sigmoid(lpd - lpg)
    if how == "two-sided":  # fakes labelled 1 - real_label too
        return real_label * torch.sigmoid(lpd - lpg) + (1 - real_label) * torch.sigmoid(lpg - lpd)
    if how == "denominator":  # real_label p_data / (real_label p_data + p_g)
        return torch.sigmoid(math.log(real_label) + lpd - lpg)
    if how == "densities":  # exp of both: 0 / 0 far in the tails
        return real_label * lpd.exp() / (lpd.exp() + lpg.exp())
    if how == "fixed 0.9":
        return 0.9 * torch.sigmoid(lpd - lpg)
    return real_label * torch.sigmoid(lpd - lpg)


def r1(critic, real, how="right"):
    x = real.detach().clone().requires_grad_(True)
    if how == "weights":  # differentiated with respect to the weights, not the input
        grads = torch.autograd.grad(critic(x).sum(), list(critic.parameters()), create_graph=True)
        return sum(g.pow(2).sum() for g in grads)
    (grads,) = torch.autograd.grad(critic(x).sum(), x, create_graph=how != "no graph")
    norms = grads.flatten(1).norm(dim=1)
    if how == "wgan-gp":
        return (norms - 1).pow(2).mean()
    if how == "not squared":
        return norms.mean()
    if how == "whole batch":
        return grads.norm() ** 2
    return norms.pow(2).mean()


def jsd(p, q, zero_safe=True, scale=1.0):
    m = (p + q) / 2

    def kl(a, b):
        terms = a * (a / b).log()
        return (torch.where(a > 0, terms, torch.zeros_like(a)) if zero_safe else terms).sum(-1)

    return scale * (0.5 * kl(p, m) + 0.5 * kl(q, m))


GAN_CASES = [
    Case(
        gan.check_smoothed_optimal_discriminator,
        right=[smoothed_d_star, lambda lpd, lpg, a: a / (1 + torch.exp(lpg - lpd))],
        wrong=[
            Wrong(
                "smoothing ignored",
                "without smoothing",
                functools.partial(smoothed_d_star, how="no smoothing"),
            ),
            Wrong(
                "both labels smoothed",
                "smoothed both labels",
                functools.partial(smoothed_d_star, how="two-sided"),
            ),
            Wrong(
                "real_label in the denominator",
                "denominator is off",
                functools.partial(smoothed_d_star, how="denominator"),
            ),
            Wrong(
                "densities divided directly: 0 / 0 far out",
                "underflows",
                functools.partial(smoothed_d_star, how="densities"),
            ),
            Wrong(
                "real_label fixed at 0.9",
                "real_label = 0.7",
                functools.partial(smoothed_d_star, how="fixed 0.9"),
            ),
        ],
    ),
    Case(
        gan.check_r1_penalty,
        right=[r1],
        wrong=[
            Wrong("WGAN-GP's penalty", "WGAN-GP's penalty", functools.partial(r1, how="wgan-gp")),
            Wrong("norm not squared", "square the norm", functools.partial(r1, how="not squared")),
            Wrong(
                "one norm over the whole batch",
                "whole \\(batch, features\\) gradient",
                functools.partial(r1, how="whole batch"),
            ),
            Wrong("no create_graph", "create_graph=True", functools.partial(r1, how="no graph")),
            Wrong(
                "gradient with respect to the weights",
                "with respect to its \\*input\\*",
                functools.partial(r1, how="weights"),
            ),
        ],
    ),
    Case(
        gan.check_jsd,
        right=[jsd],
        wrong=[
            Wrong("KL(p || q)", "That is KL", lambda p, q: (p * (p / q).log()).sum(-1)),
            Wrong("twice the JSD", "Twice the JSD", lambda p, q: jsd(p, q, scale=2.0)),
            Wrong("in bits", "in bits", lambda p, q: jsd(p, q, scale=1 / math.log(2))),
            Wrong("0 log 0 not handled", "0 log 0 = 0", lambda p, q: jsd(p, q, zero_safe=False)),
        ],
    ),
]


# ---------------------------------------------------------------- 02b: GANs on digits


def gan_loop(
    generator,
    discriminator,
    real_images,
    steps,
    lr=2e-4,
    batch_size=64,
    *,
    one_optimizer=False,
    attached=False,
    regenerate=False,
    fake_label=False,
    sigmoid=False,
    no_real=False,
    detach_g=False,
    zero_d=True,
    zero_g=True,
    zero_after_step=False,
    stop_after=None,
):
    """Chapter 02b's loop with its four bugs fixed; each flag puts one mistake back."""
    if one_optimizer:
        both = list(generator.parameters()) + list(discriminator.parameters())
        opt_d = opt_g = torch.optim.Adam(both, lr=lr, betas=(0.5, 0.999))
    else:
        opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=(0.5, 0.999))
        opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=(0.5, 0.999))
    out = torch.sigmoid if sigmoid else identity
    for step in range(steps):
        real = real_images[torch.randint(len(real_images), (batch_size,))]
        fake = generator(torch.randn(batch_size, generator.latent_dim))
        ones, zeros = torch.ones(batch_size), torch.zeros(batch_size)
        d_fake = discriminator(fake if attached else fake.detach())
        d_loss = F.binary_cross_entropy_with_logits(out(d_fake), zeros)
        if not no_real:
            d_loss = d_loss + F.binary_cross_entropy_with_logits(out(discriminator(real)), ones)
        if zero_d and not zero_after_step:
            opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        if zero_after_step:
            opt_d.zero_grad()
        if regenerate:
            fake = generator(torch.randn(batch_size, generator.latent_dim))
        d_out = out(discriminator(fake.detach() if detach_g else fake))
        g_loss = F.binary_cross_entropy_with_logits(d_out, zeros if fake_label else ones)
        if zero_g and not zero_after_step:
            opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        if zero_after_step:
            opt_g.zero_grad()
        if stop_after is not None and step + 1 == stop_after:
            return


def gan_loop_variant(
    generator,
    discriminator,
    real_images,
    steps,
    lr=2e-4,
    batch_size=64,
    *,
    probabilities=False,
    two_backwards=False,
    generator_first=False,
    one_batch=False,
    no_grad_fakes=False,
):
    """Right loops written differently: BCE on sigmoid outputs (the same gradients, less
    stable); the real and fake terms backpropagated separately; the generator's step first;
    real and fake images in one batch; the discriminator's fakes made under no_grad."""
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=(0.5, 0.999))

    def bce(logits, label):
        target = torch.full_like(logits, float(label))
        if probabilities:
            return F.binary_cross_entropy(torch.sigmoid(logits), target)
        return F.binary_cross_entropy_with_logits(logits, target)

    def d_step():
        real = real_images[torch.randint(len(real_images), (batch_size,))]
        if no_grad_fakes:
            with torch.no_grad():
                fake = generator(torch.randn(batch_size, generator.latent_dim))
        else:
            fake = generator(torch.randn(batch_size, generator.latent_dim)).detach()
        opt_d.zero_grad()
        if one_batch:
            logits = discriminator(torch.cat([real, fake]))
            labels = torch.cat([torch.ones(batch_size), torch.zeros(batch_size)])
            F.binary_cross_entropy_with_logits(logits, labels).backward()
        elif two_backwards:
            bce(discriminator(real), 1).backward()
            bce(discriminator(fake), 0).backward()
        else:
            (bce(discriminator(real), 1) + bce(discriminator(fake), 0)).backward()
        opt_d.step()

    def g_step():
        opt_g.zero_grad()
        bce(discriminator(generator(torch.randn(batch_size, generator.latent_dim))), 1).backward()
        opt_g.step()

    for _ in range(steps):
        for step in (g_step, d_step) if generator_first else (d_step, g_step):
            step()


@functools.cache
def gan_context():
    """Chapter 02b's setup: the 8x8 digits in [-1, 1], and FD-digits of 359 samples against 359
    held-out images with the course's digit classifier."""
    from genai_lib.data import load_digits
    from genai_lib.gan import generate
    from genai_lib.metrics import fd_digits, held_out_sample, load_or_train_classifier

    data = load_digits()
    classifier = load_or_train_classifier(data)
    real_eval = held_out_sample(data, 359, seed=0)

    def score(generator, seed=0):
        return fd_digits(classifier, generate(generator, 359, seed=seed), real_eval)

    return data, data.train_images * 2 - 1, score


def gan_models(seed):
    from genai_lib.models.gan import DCDiscriminator, DCGenerator

    data, _, _ = gan_context()

    def make_models():
        seed_everything(seed)
        return DCGenerator(32, data.shape), DCDiscriminator(data.shape)

    return make_models


def run_fixed_training(check, fn, seed):
    _, x_train, score = gan_context()
    # steps=300 and the buggy loop's FD-digits as in the notebook's fast mode; the checker
    # trains for at least 1,000 steps itself
    check(fn, gan_models(seed), x_train, 300, lambda g: score(g, seed), 342.3)


def truncated(n, latent_dim, threshold, generator, how="right"):
    if how == "global rng":
        generator = None
    z = torch.randn(n, latent_dim, generator=generator)
    if how == "clamp":
        return z.clamp(-threshold, threshold)
    if how == "uniform":
        return (torch.rand(n, latent_dim, generator=generator) * 2 - 1) * threshold
    if how == "rescale":
        return z / z.abs().max() * threshold
    outside = z.abs() > threshold
    while outside.any():
        z[outside] = torch.randn(int(outside.sum()), generator=generator)
        outside = z.abs() > threshold
        if how == "redraw once":
            break
    return z


def fd_1d(a, b, variances=False, square_mean=True, root=False):
    spread = (a.var() - b.var()) if variances else (a.std() - b.std())
    mean = (a.mean() - b.mean()) ** 2 if square_mean else (a.mean() - b.mean()).abs()
    fd = mean + spread**2
    return float(fd.sqrt() if root else fd)


GAN_PRACTICE_CASES = [
    Case(
        gan_practice.check_fixed_training,
        right=[gan_loop],
        wrong=[
            Wrong(
                "one optimizer for both networks",
                "One optimizer holds the parameters of both",
                functools.partial(gan_loop, one_optimizer=True),
            ),
            Wrong(
                "fakes not detached (and reused)",
                "Detach the fakes",
                functools.partial(gan_loop, attached=True),
            ),
            Wrong(
                "fakes not detached (fresh fakes for G)",
                "Detach the fakes for the discriminator",
                functools.partial(gan_loop, attached=True, regenerate=True),
            ),
            Wrong(
                "generator trained towards fake",
                "towards the label 0",
                functools.partial(gan_loop, fake_label=True),
            ),
            Wrong(
                "sigmoid into a from-logits loss",
                "not torch.sigmoid",
                functools.partial(gan_loop, sigmoid=True),
            ),
            Wrong(
                "the discriminator never sees real images",
                "never sees a real image",
                functools.partial(gan_loop, no_real=True),
            ),
            Wrong(
                "fakes detached in the generator's step too",
                "does not reach the generator",
                functools.partial(gan_loop, detach_g=True),
            ),
            Wrong(
                "the generator's gradients never zeroed",
                "add up across steps. Call opt_g.zero_grad",
                functools.partial(gan_loop, zero_g=False),
            ),
            Wrong(
                "the discriminator's gradients never zeroed",
                "its gradients add up. Call opt_d.zero_grad",
                functools.partial(gan_loop, zero_d=False),
            ),
            Wrong(
                "gradients zeroed after each step: G's loss reaches D's next step",
                "the generator's loss, which also flows",
                functools.partial(gan_loop, zero_after_step=True),
            ),
            Wrong(
                "a return inside the loop", "indented", functools.partial(gan_loop, stop_after=1)
            ),
        ],
        run=run_fixed_training,
        seeds=(0, 1),
    ),
    Case(
        gan_practice.check_truncated_noise,
        right=[truncated],
        wrong=[
            Wrong("clamped", "clamping piles", functools.partial(truncated, how="clamp")),
            Wrong("uniform", "look uniform", functools.partial(truncated, how="uniform")),
            Wrong("rescaled", "Rescaling", functools.partial(truncated, how="rescale")),
            Wrong(
                "redrawn only once",
                "Redrawing once",
                functools.partial(truncated, how="redraw once"),
            ),
            Wrong(
                "the global random generator",
                "generator argument",
                functools.partial(truncated, how="global rng"),
            ),
        ],
    ),
    Case(
        gan_practice.check_fd_1d,
        right=[fd_1d],
        wrong=[
            Wrong("variances", "not variances", lambda a, b: fd_1d(a, b, variances=True)),
            Wrong(
                "mean difference not squared",
                "both differences squared",
                lambda a, b: fd_1d(a, b, square_mean=False),
            ),
            Wrong(
                "the square root (a distance, not its square)",
                "both differences squared",
                lambda a, b: fd_1d(a, b, root=True),
            ),
        ],
    ),
]


# ---------------------------------------------------------------- 03: autoregressive models


def interpolated(c, lam, how="right"):
    totals = c.sum(1, keepdim=True)
    u = c.sum(1 if how == "row sums" else 0) / c.sum()  # right: how often each token comes next
    if how == "counts mixed":  # the counts mixed with u, then normalised
        mixed = lam * c + (1 - lam) * u
        return mixed / mixed.sum(1, keepdim=True)
    if how == "empty row nan":
        bigram = c / totals
    else:
        bigram = torch.where(totals > 0, c / totals.clamp(min=1), u)
    if how == "lam on the unigram":
        lam = 1 - lam
    return lam * bigram + (1 - lam) * u


def bits_and_perplexity(p):
    b = -torch.log2(p).mean().item()
    return b, 2**b


def context_windows(t, n, pad, right_pad=False, shift=0):
    padding = (0, n - 1) if right_pad else (n - 1 - shift, shift)
    return F.pad(t, padding, value=pad).unfold(1, n, 1)


def top_p(logits, p, how="right"):
    probs = logits.softmax(-1)
    sorted_probs, order = probs.sort(-1, descending=how != "ascending")
    if how == "crossing token dropped":  # keeps only the tokens whose running total is <= p
        keep_sorted = sorted_probs.cumsum(-1) <= p
    else:
        keep_sorted = sorted_probs.cumsum(-1) - sorted_probs < p
    nucleus = probs * torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return nucleus if how == "not renormalised" else nucleus / nucleus.sum(-1, keepdim=True)


def library_top_p(logits, p):
    from genai_lib.sample import next_token_probs

    return next_token_probs(logits, top_p=p)


def top_k(logits, k, how="right"):
    if how == "one threshold":  # one threshold for the whole batch
        return logits.masked_fill(logits < logits.flatten().topk(k).values[-1], float("-inf"))
    if how == "smallest":
        kth = logits.topk(k, dim=-1, largest=False).values[:, -1:]
        return logits.masked_fill(logits > kth, float("-inf"))
    kth = logits.topk(k, dim=-1).values[:, -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def merge_overlapping(ids, pair, new_id):
    return [new_id if (a, b) == pair else a for a, b in zip(ids, ids[1:] + [None])]


def merge_first_only(ids, pair, new_id):
    for i in range(len(ids) - 1):
        if (ids[i], ids[i + 1]) == pair:
            return ids[:i] + [new_id] + ids[i + 2 :]
    return list(ids)


AUTOREGRESSIVE_CASES = [
    Case(
        autoregressive.check_interpolated_bigram,
        right=[interpolated],
        wrong=[
            Wrong(
                "an empty row left as 0/0",
                "0/0",
                lambda c, lam: interpolated(c, lam, "empty row nan"),
            ),
            Wrong(
                "lam on the unigram",
                "lam weights the bigram",
                lambda c, lam: interpolated(c, lam, "lam on the unigram"),
            ),
            Wrong(
                "unigram from the row sums",
                "column sums",
                lambda c, lam: interpolated(c, lam, "row sums"),
            ),
            Wrong(
                "the counts mixed, not the distributions",
                "not the counts",
                lambda c, lam: interpolated(c, lam, "counts mixed"),
            ),
        ],
    ),
    Case(
        autoregressive.check_bits_and_perplexity,
        right=[bits_and_perplexity],
        wrong=[
            Wrong("natural log", "log base 2", lambda p: (-torch.log(p).mean().item(), 4.0)),
            Wrong(
                "mean of per-token perplexities",
                "exponentiate",
                lambda p: (-torch.log2(p).mean().item(), (1 / p).mean().item()),
            ),
        ],
    ),
    Case(
        autoregressive.check_context_windows,
        right=[context_windows],
        wrong=[
            Wrong(
                "windows one too far: they hold the target",
                "t \\+ 1",
                lambda t, n, pad: context_windows(t, n, pad, shift=1),
            ),
            Wrong(
                "padded on the right",
                "padded on the left",
                lambda t, n, pad: context_windows(t, n, pad, right_pad=True),
            ),
        ],
    ),
    Case(
        autoregressive.check_top_p_probs,
        right=[top_p, library_top_p],
        wrong=[
            Wrong(
                "the token that crosses p dropped",
                "carries the total across p",
                lambda logits, p: top_p(logits, p, "crossing token dropped"),
            ),
            Wrong(
                "not renormalised",
                "Renormalise",
                lambda logits, p: top_p(logits, p, "not renormalised"),
            ),
            Wrong(
                "sorted in ascending order",
                "descending order",
                lambda logits, p: top_p(logits, p, "ascending"),
            ),
        ],
    ),
    Case(
        autoregressive.check_top_k_filter,
        right=[top_k],
        wrong=[
            Wrong(
                "one threshold for the whole batch",
                "its own",
                lambda logits, k: top_k(logits, k, "one threshold"),
            ),
            Wrong("the k smallest kept", "its own", lambda logits, k: top_k(logits, k, "smallest")),
        ],
    ),
    Case(
        autoregressive.check_bpe_merge,
        right=[bpe_merge],  # the library's own merge is a right answer
        wrong=[
            Wrong("overlapping pairs both merged", "skip both", merge_overlapping),
            Wrong("only the first occurrence", "should give", merge_first_only),
        ],
    ),
]


# ---------------------------------------------------------------- 04: fine-tuning


def masking(prompt, response, block_size, pad_id, masked_prompt_positions=None):
    ids = torch.tensor(prompt + response)
    inputs = torch.full((block_size,), pad_id)
    targets = torch.full((block_size,), IGNORE)
    inputs[: len(ids) - 1], targets[: len(ids) - 1] = ids[:-1], ids[1:]
    n = len(prompt) - 1 if masked_prompt_positions is None else masked_prompt_positions
    targets[:n] = IGNORE
    return inputs, targets


def pads_graded(p, r, b, pad):
    """labels = input_ids: the padding is graded (the seed recipe's error)."""
    inputs, targets = masking(p, r, b, pad)
    targets[len(p) + len(r) - 1 :] = pad
    return inputs, targets


def rank_r(delta, r, keep="largest", singular_values=True, extra=0):
    U, S, Vh = torch.linalg.svd(delta, full_matrices=False)
    k = slice(None, r + extra) if keep == "largest" else slice(len(S) - r, None)
    return (U[:, k] * (S[k] if singular_values else 1)) @ Vh[k]


def lora_embedding(ids, weight, A, B, alpha, scale=None, base=True):
    scale = alpha / A.shape[0] if scale is None else scale
    return (weight[ids] if base else 0) + scale * (A[:, ids].movedim(0, -1) @ B.T)


FINETUNING_CASES = [
    Case(
        finetuning.check_best_low_rank,
        right=[rank_r, lambda d, r: rank_r(d.double(), r).float()],
        wrong=[
            Wrong(
                "smallest kept", "smallest singular values", lambda d, r: rank_r(d, r, "smallest")
            ),
            Wrong(
                "no singular values",
                "singular values are missing",
                lambda d, r: rank_r(d, r, singular_values=False),
            ),
            Wrong("one too many", "should have rank", lambda d, r: rank_r(d, r, extra=1)),
            Wrong(
                "the factors returned",
                "not the factors",
                lambda d, r: torch.linalg.svd(d, full_matrices=False),
            ),
            Wrong(
                "rank r but not the best (the first r columns)",
                "not the closest one",
                lambda d, r: d[:, :r] @ torch.linalg.lstsq(d[:, :r], d).solution,
            ),
        ],
    ),
    Case(
        finetuning.check_lora_embedding,
        right=[
            lora_embedding,
            lambda ids, W, A, B, alpha: (
                torch.nn.functional.embedding(ids, W)
                + alpha / A.shape[0] * torch.nn.functional.embedding(ids, A.T) @ B.T
            ),
        ],
        wrong=[
            Wrong(
                "scaled by alpha",
                "alpha / r",
                lambda ids, W, A, B, alpha: lora_embedding(ids, W, A, B, alpha, scale=alpha),
            ),
            Wrong(
                "no scale",
                "not scaled",
                lambda ids, W, A, B, alpha: lora_embedding(ids, W, A, B, alpha, scale=1.0),
            ),
            Wrong(
                "no base",
                "base embedding",
                lambda ids, W, A, B, alpha: lora_embedding(ids, W, A, B, alpha, base=False),
            ),
            Wrong(
                "ids used as vectors",
                "ids are integers",
                lambda ids, W, A, B, alpha: W[ids] + alpha / A.shape[0] * (ids.float() @ A.T) @ B.T,
            ),
            Wrong(
                "flattened",
                "Keep the ids' shape",
                lambda ids, W, A, B, alpha: lora_embedding(ids.flatten(), W, A, B, alpha),
            ),
            Wrong(
                "detached",
                "No gradient reaches",
                lambda ids, W, A, B, alpha: lora_embedding(ids, W, A.detach(), B.detach(), alpha),
            ),
        ],
    ),
    Case(
        finetuning.check_prompt_masking,
        right=[masking],
        wrong=[
            Wrong(
                "one prompt position too many masked",
                "off-by-one",
                lambda p, r, b, pad: masking(p, r, b, pad, masked_prompt_positions=len(p)),
            ),
            Wrong(
                "no prompt mask",
                "not graded on the prompt",
                lambda p, r, b, pad: masking(p, r, b, pad, masked_prompt_positions=0),
            ),
            Wrong("padding graded", "padding", pads_graded),
        ],
    ),
]


# ---------------------------------------------------------------- 05: diffusion


def forward(x0, t, noise, alpha_bars, signal=torch.sqrt, noise_scale=torch.sqrt):
    ab = alpha_bars[t].view(-1, 1, 1, 1)
    return signal(ab) * x0 + noise_scale(1 - ab) * noise


def no_view(x0, t, noise, ab):
    return ab[t].sqrt() * x0 + (1 - ab[t]).sqrt() * noise


def one_dimension_too_many(x0, t, noise, ab):
    shape = (-1, 1, 1, 1, 1)
    return ab[t].sqrt().view(shape) * x0 + (1 - ab[t]).sqrt().view(shape) * noise


def ddim(x_t, eps, ab_t, ab_prev, second=None):
    x0_hat = (x_t - math.sqrt(1 - ab_t) * eps) / math.sqrt(ab_t)
    noise_level = ab_prev if second is None else second
    return math.sqrt(ab_prev) * x0_hat + math.sqrt(1 - noise_level) * eps


def ddpm_by_hand(
    x_t,
    eps,
    t,
    betas,
    z,
    last_prev=1.0,
    variance="posterior",
    std=True,
    sign=-1.0,
    divide_by_alpha_bar=False,
    cumulative=torch.cumprod,
):
    alphas = 1 - betas
    alpha_bars = cumulative(alphas, 0)
    beta, alpha, ab = betas[t].item(), alphas[t].item(), alpha_bars[t].item()
    ab_prev = alpha_bars[t - 1].item() if t > 0 or last_prev is None else last_prev
    mean = (x_t + sign * beta / math.sqrt(1 - ab) * eps) / math.sqrt(
        ab if divide_by_alpha_bar else alpha
    )
    var = (1 - ab_prev) / (1 - ab) * beta if variance == "posterior" else beta
    return mean + (math.sqrt(var) if std else var) * z


ALPHAS_1000 = noise_schedule("cosine", 1000).alphas
ALPHAS_100 = noise_schedule("cosine", 100).alphas

DIFFUSION_CASES = [
    Case(
        diffusion.check_q_sample,
        right=[forward, lambda x0, t, n, ab: forward(x0, t, n, ab.float())],  # float32 is fine
        wrong=[
            Wrong(
                "one step's alphas (the notebook's schedule)",
                "one step's alpha_t",
                lambda x0, t, n, ab: forward(x0, t, n, ALPHAS_1000),
            ),
            Wrong(
                "one step's alphas (the same schedule)",
                "one step's alpha_t",
                lambda x0, t, n, ab: forward(x0, t, n, ALPHAS_100),
            ),
            Wrong(
                "noise scaled by its variance",
                "standard deviation",
                lambda x0, t, n, ab: forward(x0, t, n, ab, noise_scale=identity),
            ),
            Wrong(
                "signal scaled by alpha_bar",
                "should be its square root",
                lambda x0, t, n, ab: forward(x0, t, n, ab, signal=identity),
            ),
            Wrong(
                "one t for the batch",
                "Each sample has its own t",
                lambda x0, t, n, ab: forward(x0, t[:1].expand(len(t)), n, ab),
            ),
            Wrong("(B,) against (B, C, H, W)", "view", no_view),
            Wrong("one dimension too many", "one dimension too many", one_dimension_too_many),
            Wrong("x0 and noise swapped", "swapped", lambda x0, t, n, ab: forward(n, t, x0, ab)),
            Wrong(
                "something else", "yours is", lambda x0, t, n, ab: forward(x0, t, n, ab) + 0.1 * n
            ),
        ],
    ),
    Case(
        diffusion.check_ddim_step,
        right=[ddim],
        wrong=[
            Wrong(
                "no noise re-added",
                "sqrt\\(ab_prev\\) x0_hat only",
                lambda x, e, a, p: ddim(x, e, a, p, second=1.0),
            ),
            Wrong(
                "noise at the old level",
                "noise term uses ab_t",
                lambda x, e, a, p: ddim(x, e, a, p, second=a),
            ),
            Wrong(
                "levels swapped",
                "ab_t and ab_prev are swapped",
                lambda x, e, a, p: ddim(x, e, p, a),
            ),
            Wrong(
                "x_t and eps swapped",
                "x_t and eps_hat are swapped",
                lambda x, e, a, p: ddim(e, x, a, p),
            ),
            Wrong(
                "never returns x0_hat", "last step", lambda x, e, a, p: ddim(x, e, a, min(p, 0.99))
            ),
            Wrong("torch.sqrt on a float", "math.sqrt", lambda x, e, a, p: torch.sqrt(p) * x),
        ],
    ),
    Case(
        diffusion.check_ddpm_step,
        right=[
            ddpm_by_hand,
            lambda x, e, t, b, z: ddpm_by_hand(x.double(), e.double(), t, b, z.double()).float(),
        ],
        wrong=[
            Wrong(
                "alpha_bars[t - 1] at t = 0",
                "alpha_bars\\[-1\\]",
                lambda x, e, t, b, z: ddpm_by_hand(x, e, t, b, z, last_prev=None),
            ),
            Wrong(
                "the forward step's variance",
                "variance of the forward step",
                lambda x, e, t, b, z: ddpm_by_hand(x, e, t, b, z, variance="beta"),
            ),
            Wrong(
                "noise scaled by its variance",
                "standard\ndeviation|standard deviation",
                lambda x, e, t, b, z: ddpm_by_hand(x, e, t, b, z, std=False),
            ),
            Wrong(
                "sign of the noise term in the mean",
                "sign of the noise term",
                lambda x, e, t, b, z: ddpm_by_hand(x, e, t, b, z, sign=1.0),
            ),
            Wrong(
                "alpha_bar where alpha belongs",
                "one step's sqrt\\(alpha_t\\)",
                lambda x, e, t, b, z: ddpm_by_hand(x, e, t, b, z, divide_by_alpha_bar=True),
            ),
            Wrong(
                "no noise added",
                "no noise is added",
                lambda x, e, t, b, z: ddpm_by_hand(x, e, t, b, torch.zeros_like(z)),
            ),
            Wrong(
                "alpha_bar as a cumulative sum",
                "torch.cumprod",
                lambda x, e, t, b, z: ddpm_by_hand(x, e, t, b, z, cumulative=torch.cumsum),
            ),
        ],
    ),
]


# ---------------------------------------------------------------- 06: scaling


def unscale_or_skip(grads, scale, check=torch.isfinite, unscale=True, on_overflow=0.5):
    if all(check(g).all() for g in grads):
        return [g / scale if unscale else g for g in grads], scale
    return None, scale * on_overflow


def combine(grads, counts, divide=True):
    total = sum(n * g for n, g in zip(counts, grads))
    return total / sum(counts) if divide else total


def bf16_round(x, how="nearest even"):
    bits = x.view(torch.int32)
    if how == "truncate":
        return (bits & -65536).view(torch.float32)
    if how == "half up":
        return ((bits + 0x8000) & -65536).view(torch.float32)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) & -65536).view(torch.float32)


SCALING_CASES = [
    Case(
        scaling.check_unscale_or_skip,
        right=[
            unscale_or_skip,
            lambda g, s: unscale_or_skip(g, s, lambda t: ~(t.isinf() | t.isnan())),
        ],
        wrong=[
            Wrong(
                "not unscaled",
                "still multiplied",
                lambda g, s: unscale_or_skip(g, s, unscale=False),
            ),
            Wrong("inf not caught", "Skip the step", lambda g, s: ([t / s for t in g], s)),
            Wrong(
                "only inf caught",
                "a NaN.*Skip the step",
                lambda g, s: unscale_or_skip(g, s, lambda t: ~t.isinf()),
            ),
            Wrong(
                "scale doubled on overflow",
                "halve the scale",
                lambda g, s: unscale_or_skip(g, s, on_overflow=2.0),
            ),
            Wrong(
                "scale halved after a good step",
                "keep the scale",
                lambda g, s: (unscale_or_skip(g, s)[0], s / 2),
            ),
            Wrong("always skips", "not None", lambda g, s: (None, s / 2)),
        ],
    ),
    Case(
        scaling.check_combine_rank_gradients,
        right=[combine],
        wrong=[
            Wrong(
                "plain mean (what DDP computes)",
                "plain mean of the ranks' gradients",
                lambda grads, counts: torch.stack(grads).mean(dim=0),
            ),
            Wrong(
                "not divided by the total",
                "not the mean over all examples",
                lambda grads, counts: combine(grads, counts, divide=False),
            ),
            Wrong("the list itself", "one tensor", lambda grads, counts: grads),
        ],
    ),
    Case(
        scaling.check_bf16_round,
        right=[bf16_round],
        wrong=[
            Wrong("truncation", "rounds toward zero", lambda x: bf16_round(x, "truncate")),
            Wrong("ties rounded up", "It is a tie", lambda x: bf16_round(x, "half up")),
            Wrong("a bfloat16 tensor returned", "float32", lambda x: x.to(torch.bfloat16)),
        ],
    ),
]


# ---------------------------------------------------------------- 07: text to image


def grouped_infonce(
    image, text, groups, temperature, multiply=False, diagonal=False, one_way=False, add=False
):
    """The grouped contrastive loss written with loops over rows: the defaults are right."""
    logits = image @ text.T
    logits = logits * temperature if multiply else logits / temperature

    def rows_loss(lg):
        total = 0.0
        for i in range(len(lg)):
            matches = [
                j for j in range(len(lg)) if (j == i if diagonal else groups[j] == groups[i])
            ]
            log_p = lg[i] - torch.logsumexp(lg[i], 0)
            total = total - sum(log_p[j] for j in matches) / len(matches)
        return total / len(lg)

    a, b = rows_loss(logits), rows_loss(logits.T)
    if one_way:
        return a
    return a + b if add else (a + b) / 2


def cross_attention_answer(
    x, words, wq, wk, wv, mask, heads, keys_from=None, scale=True, mask_on=True, over="words"
):
    """Multi-head cross-attention through F.scaled_dot_product_attention: the defaults are right."""
    B, N, C = x.shape
    d = C // heads
    src = words if keys_from is None else x
    q = (x @ wq).view(B, N, heads, d).transpose(1, 2)
    k = (src @ wk).view(B, -1, heads, d).transpose(1, 2)
    v = (src @ wv).view(B, -1, heads, d).transpose(1, 2)
    if over.startswith("pixels"):
        w = (
            (q @ k.transpose(-1, -2) / math.sqrt(d))
            .masked_fill(~mask[:, None, None, :], float("-inf"))
            .softmax(-2)
        )
        out = (w if over == "pixels-nan" else w.nan_to_num()) @ v
    else:
        attn_mask = mask[:, None, None, :] if (mask_on and keys_from is None) else None
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, scale=None if scale else 1.0
        )
    return out.transpose(1, 2).reshape(B, N, C)


def composed(eps_u, eps, scales, sign=1, ho_salimans=False, no_base=False, average=False):
    if ho_salimans:
        return sum((1 + s) * e - s * eps_u for s, e in zip(scales, eps))
    if no_base:
        return sum(s * e for s, e in zip(scales, eps))
    pull = sum(s * sign * (e - eps_u) for s, e in zip(scales, eps))
    return eps_u + (pull / len(eps) if average else pull)


TEXT_TO_IMAGE_CASES = [
    Case(
        text_to_image.check_grouped_contrastive_loss,
        right=[grouped_infonce, lambda i, t, g, tau: grouped_infonce(i.float(), t.float(), g, tau)],
        wrong=[
            Wrong(
                "temperature multiplied",
                "wrong side",
                lambda i, t, g, tau: grouped_infonce(i, t, g, tau, multiply=True),
            ),
            Wrong(
                "plain diagonal targets",
                "diagonal alone",
                lambda i, t, g, tau: grouped_infonce(i, t, g, tau, diagonal=True),
            ),
            Wrong(
                "image -> text only",
                "Only one direction",
                lambda i, t, g, tau: grouped_infonce(i, t, g, tau, one_way=True),
            ),
            Wrong(
                "directions summed",
                "summed",
                lambda i, t, g, tau: grouped_infonce(i, t, g, tau, add=True),
            ),
            Wrong(
                "a loss per pair", "one value per pair", lambda i, t, g, tau: torch.zeros(len(g))
            ),
            Wrong(
                "something else",
                "Expected",
                lambda i, t, g, tau: grouped_infonce(i, t, g, tau) + 0.1,
            ),
        ],
    ),
    Case(
        text_to_image.check_cross_attention,
        right=[cross_attention_answer],
        wrong=[
            Wrong(
                "keys and values from the image",
                "self-attention",
                lambda *a: cross_attention_answer(*a, keys_from="image"),
            ),
            Wrong(
                "padding attended",
                "padding is attended",
                lambda *a: cross_attention_answer(*a, mask_on=False),
            ),
            Wrong("no 1/sqrt(d)", "not scaled", lambda *a: cross_attention_answer(*a, scale=False)),
            Wrong(
                "one head",
                "one head",
                lambda x, w, q, k, v, m, h: cross_attention_answer(x, w, q, k, v, m, 1),
            ),
            Wrong(
                "softmax over the pixels",
                "over the pixels",
                lambda *a: cross_attention_answer(*a, over="pixels"),
            ),
            Wrong(
                "softmax over the pixels, NaN kept",
                "NaN",
                lambda *a: cross_attention_answer(*a, over="pixels-nan"),
            ),
            Wrong("wrong shape", "shape", lambda x, *a: x[:, :, :4]),
        ],
    ),
    Case(
        text_to_image.check_composed_guidance,
        right=[composed],
        wrong=[
            Wrong("sign flipped", "sign is flipped", lambda u, e, s: composed(u, e, s, sign=-1)),
            Wrong(
                "(1 + w) form per prompt",
                "Ho & Salimans",
                lambda u, e, s: composed(u, e, s, ho_salimans=True),
            ),
            Wrong(
                "no unconditional base", "missing", lambda u, e, s: composed(u, e, s, no_base=True)
            ),
            Wrong("pulls averaged", "averaged", lambda u, e, s: composed(u, e, s, average=True)),
        ],
    ),
]


CASES: list[Case] = [
    *WELCOME,
    *VAE_CASES,
    *GAN_CASES,
    *GAN_PRACTICE_CASES,
    *AUTOREGRESSIVE_CASES,
    *FINETUNING_CASES,
    *DIFFUSION_CASES,
    *SCALING_CASES,
    *TEXT_TO_IMAGE_CASES,
]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Train on one CPU thread. The networks here are small (8x8 images), and when the cores are
    busy with other work two OpenMP threads wait for each other: measured on a shared 2-core
    machine, 960 ms per GAN step with two threads against 33 ms with one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def name(checker: Callable[..., None]) -> str:
    return f"{checker.__module__.rsplit('.', 1)[-1]}.{checker.__name__}"


RIGHT = [
    pytest.param(case, answer, seed, id=f"{name(case.checker)}-right{i}-seed{seed}")
    for case in CASES
    for i, answer in enumerate(case.right)
    for seed in case.seeds
]
WRONG = [
    pytest.param(case, wrong, id=f"{name(case.checker)}-{wrong.what}")
    for case in CASES
    for wrong in case.wrong
]


@pytest.mark.parametrize(("case", "answer", "seed"), RIGHT)
def test_right_answer_is_accepted(case, answer, seed, capsys):
    case.check(answer, seed)
    assert "Correct:" in capsys.readouterr().out


@pytest.mark.parametrize(("case", "wrong"), WRONG)
def test_wrong_answer_is_rejected_with_its_hint(case, wrong):
    with pytest.raises(ExerciseError, match=wrong.hint):
        case.check(wrong.answer)


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=name(c.checker)) for c in CASES if c.takes_function]
)
def test_an_unfinished_answer_says_not_done(case):
    with pytest.raises(ExerciseError, match="Not done yet"):
        case.check(not_done)


def all_checkers() -> list[Callable[..., None]]:
    """Every ``check_*`` function defined in a module of ``genai_lib.exercises``."""
    found = []
    for info in pkgutil.iter_modules(exercises_package.__path__):
        module = importlib.import_module(f"{exercises_package.__name__}.{info.name}")
        found += [
            fn
            for fn_name, fn in inspect.getmembers(module, inspect.isfunction)
            if fn_name.startswith("check_") and fn.__module__ == module.__name__
        ]
    return found


def test_every_checker_has_a_right_and_two_wrong_answers():
    checkers = all_checkers()
    assert len(checkers) >= 30, [name(c) for c in checkers]  # the walk itself finds them
    registered = {case.checker: case for case in CASES}
    assert len(registered) == len(CASES), "a checker is registered twice"
    missing = [name(c) for c in checkers if c not in registered]
    assert not missing, f"checkers with no case in tests/test_exercise_guard.py: {missing}"
    thin = [name(c) for c in checkers if not registered[c].right or len(registered[c].wrong) < 2]
    assert not thin, f"checkers with no right answer or fewer than 2 wrong ones: {thin}"


def test_the_fd_verdict_rejects_an_untrained_generator():
    """The FD-digits rule of check_fixed_training (its probe rejects the four bugs before it
    trains): a generator the loop failed to train is rejected."""
    from genai_lib.models.gan import DCGenerator

    data, x_train, score = gan_context()
    seed_everything(0)
    untrained = DCGenerator(32, data.shape).eval()
    with pytest.raises(ExerciseError, match="not below .* half-way from uniform noise"):
        gan_practice._fd_verdict(untrained, score, x_train, 1000, 300, 342.3)


@pytest.mark.parametrize(
    "variant", ["probabilities", "two_backwards", "generator_first", "one_batch", "no_grad_fakes"]
)
def test_the_gan_probe_accepts_right_loops_written_differently(variant):
    """The probe must not mistake a right loop for a bug (the full check, with its training,
    runs on gan_loop above)."""
    _, x_train, _ = gan_context()
    loop = functools.partial(gan_loop_variant, **{variant: True})
    gan_practice._probe(loop, gan_models(0), x_train)
