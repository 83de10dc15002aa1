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


def mixture_log_prob(x, w, m, s, combine="logsumexp"):
    log_components = torch.distributions.Normal(m, s).log_prob(x[:, None]) + w.log()  # (N, K)
    if combine == "log of sum":
        return log_components.exp().sum(1).log()
    if combine == "sum of logs":
        return log_components.sum(1)
    return torch.logsumexp(log_components, dim=1)


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
        welcome.check_mixture_log_prob,
        right=[mixture_log_prob],
        wrong=[
            Wrong(
                "log of a sum of densities: -inf far away",
                "logsumexp",
                lambda *a: mixture_log_prob(*a, combine="log of sum"),
            ),
            Wrong(
                "a sum of the logs",
                "not a sum of their logs",
                lambda *a: mixture_log_prob(*a, combine="sum of logs"),
            ),
        ],
    ),
]


# ---------------------------------------------------------------- 01: VAE


def kl_gaussians(mu_q, lv_q, mu_p, lv_p):
    return 0.5 * (lv_p - lv_q + (lv_q.exp() + (mu_q - mu_p) ** 2) / lv_p.exp() - 1).sum(-1)


def gaussian_log_likelihood(x, mean, sigma, reduce="sum", constant=True):
    per_pixel = -((x - mean) ** 2) / (2 * sigma**2)
    if constant:
        per_pixel = per_pixel - 0.5 * math.log(2 * math.pi * sigma**2)
    return per_pixel.flatten(1).sum(1) if reduce == "sum" else per_pixel.flatten(1).mean(1)


def mixture_log_joint(x):
    """log p(x, z) for a 3-component Gaussian mixture in 2-D: ``(N, 2) -> (N, 3)``, float64."""
    means = torch.tensor([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.5]], dtype=torch.float64)
    log_prior = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64).log()
    return log_prior - 0.5 * ((x[:, None, :] - means) ** 2).sum(-1) - math.log(2 * math.pi)


def posterior_points():
    return torch.randn(10, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2


@functools.cache
def trained_vae():
    """An MLP VAE of the 8x8 digits trained as in chapter 01b's fast mode (15 epochs), and 100
    held-out binary images."""
    from genai_lib.data import binarize, load_digits
    from genai_lib.losses import vae_loss
    from genai_lib.models import VAE
    from genai_lib.train import fit

    data = load_digits()
    seed_everything(0)
    model = VAE(image_shape=data.shape, latent_dim=16, arch="mlp")
    fit(
        model,
        lambda x: vae_loss(model, binarize(x)),
        data.train_images,
        steps=15 * 11,
        batch_size=128,
        lr=1e-3,
        warmup_steps=11,
        progress=False,
    )
    x_val = binarize(data.val_images, torch.Generator().manual_seed(1234))
    return model.eval(), x_val[:100]


def log_weights(model, x, k, prior=True):
    """log p(x|z_i) + log p(z_i) - log q(z_i|x) for k samples z_i ~ q(z|x): ``(k, N)``."""
    from genai_lib.losses import (
        bernoulli_log_likelihood,
        gaussian_log_prob,
        standard_normal_log_prob,
    )

    mu, logvar = model.encode(x)
    z = mu + (0.5 * logvar).exp() * torch.randn(k, *mu.shape)
    logits = model.decode(z.flatten(0, 1)).unflatten(0, (k, len(x)))
    log_w = bernoulli_log_likelihood(logits, x) - gaussian_log_prob(z, mu, logvar)
    return log_w + standard_normal_log_prob(z) if prior else log_w


def iwae(model, x, k):
    return torch.logsumexp(log_weights(model, x, k), dim=0) - math.log(k)


def iwae_one_at_a_time(model, x, k):
    """The same bound, drawing the k samples in a Python loop: right too."""
    log_w = torch.stack([log_weights(model, x, 1)[0] for _ in range(k)])
    return torch.logsumexp(log_w, dim=0) - math.log(k)


def run_iwae(check, fn, seed):
    model, x = trained_vae()
    check(fn, model, x, seed=seed)


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


def prior_probabilities(x):
    return torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64).expand(len(x), 3)


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
        vae.check_gaussian_log_likelihood,
        right=[gaussian_log_likelihood],
        wrong=[
            Wrong(
                "minus the squared error",
                "squared error",
                lambda x, m, s: -((x - m) ** 2).flatten(1).sum(-1),
            ),
            Wrong(
                "averaged over pixels",
                "Sum over the 64 pixels",
                lambda x, m, s: gaussian_log_likelihood(x, m, s, reduce="mean"),
            ),
            Wrong(
                "no normalising constant",
                "Per pixel",
                lambda x, m, s: gaussian_log_likelihood(x, m, s, constant=False),
            ),
        ],
    ),
    Case(
        vae.check_posterior,
        right=[
            lambda x: (
                mixture_log_joint(x) - torch.logsumexp(mixture_log_joint(x), 1, keepdim=True)
            ).exp(),
            lambda x: torch.softmax(mixture_log_joint(x), dim=1),
        ],
        wrong=[
            Wrong(
                "log-probabilities",
                "cannot be negative",
                lambda x: torch.log_softmax(mixture_log_joint(x), dim=1),
            ),
            Wrong("not normalised", "must sum to 1", lambda x: mixture_log_joint(x).exp()),
            Wrong(
                "normalised over the points",
                "must sum to 1",
                lambda x: torch.softmax(mixture_log_joint(x), dim=0),
            ),
            Wrong("the prior", "not the posterior", prior_probabilities),
        ],
        run=lambda check, fn, seed: check(fn, mixture_log_joint, posterior_points()),
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
        vae.check_iwae,
        right=[iwae, iwae_one_at_a_time],
        wrong=[
            Wrong(
                "mean of the log-weights",
                "not the mean of the log",
                lambda m, x, k: log_weights(m, x, k).mean(0),
            ),
            Wrong(
                "no - log k",
                "Subtract log k",
                lambda m, x, k: torch.logsumexp(log_weights(m, x, k), dim=0),
            ),
            Wrong(
                "log of a mean of exp: underflows",
                "underflows",
                lambda m, x, k: log_weights(m, x, k).exp().mean(0).log(),
            ),
            Wrong(
                "log p(z) left out",
                "three log-densities",
                lambda m, x, k: torch.logsumexp(log_weights(m, x, k, prior=False), 0) - math.log(k),
            ),
        ],
        run=run_iwae,
        seeds=(0, 1, 2),
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


def nonsaturating(logits):
    return F.softplus(-logits).mean()


def jsd(p, q, zero_safe=True, scale=1.0):
    m = (p + q) / 2

    def kl(a, b):
        terms = a * (a / b).log()
        return (torch.where(a > 0, terms, torch.zeros_like(a)) if zero_safe else terms).sum(-1)

    return scale * (0.5 * kl(p, m) + 0.5 * kl(q, m))


GAN_CASES = [
    Case(
        gan.check_optimal_discriminator,
        right=[lambda lpd, lpg: torch.sigmoid(lpd - lpg)],
        wrong=[
            Wrong(
                "probability of fake",
                "probability that x is \\*fake\\*",
                lambda lpd, lpg: torch.sigmoid(lpg - lpd),
            ),
            Wrong("density ratio", "density ratio", lambda lpd, lpg: (lpd - lpg).exp()),
            Wrong(
                "densities divided directly: 0 / 0 far out",
                "underflows",
                lambda lpd, lpg: lpd.exp() / (lpd.exp() + lpg.exp()),
            ),
        ],
    ),
    Case(
        gan.check_nonsaturating_loss,
        right=[
            nonsaturating,
            lambda logits: F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits)),
        ],
        wrong=[
            Wrong(
                "the saturating loss",
                "saturating loss",
                lambda l: torch.log1p(-torch.sigmoid(l)).mean(),
            ),
            Wrong("wrong sign", "wrong sign", lambda l: -nonsaturating(l)),
            Wrong("summed over the batch", "summed over the batch", lambda l: F.softplus(-l).sum()),
            Wrong(
                "log of a sigmoid: -inf", "rounds to 0", lambda l: -torch.sigmoid(l).log().mean()
            ),
            Wrong(
                "clamped probability",
                "clamp kills the gradient",
                lambda l: -torch.sigmoid(l).clamp_min(1e-7).log().mean(),
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


def covered(predicted, n_classes=10, min_share=0.01):
    shares = torch.bincount(predicted, minlength=n_classes).float() / len(predicted)
    return int((shares >= min_share).sum())


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
        gan_practice.check_covered_classes,
        right=[covered],
        wrong=[
            Wrong(
                "classes present, not classes with 1%",
                "\\*share\\*",
                lambda p, n_classes=10, min_share=0.01: len(p.unique()),
            ),
            Wrong(
                "sample counts against min_share",
                "\\*share\\*",
                lambda p, n_classes=10, min_share=0.01: int(
                    (torch.bincount(p, minlength=n_classes) >= min_share).sum()
                ),
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


def smoothed(c, a, total="right"):
    if total == "no alpha":  # alpha added to the counts, not to the total
        return (c + a) / (c.sum(1, keepdim=True) + a)
    if total == "columns":  # normalised over the wrong dimension
        return (c + a) / (c.sum(0, keepdim=True) + a * c.shape[0])
    if total == "no smoothing":
        return c / c.sum(1, keepdim=True)
    return (c + a) / (c.sum(1, keepdim=True) + a * c.shape[1])


def bits_and_perplexity(p):
    b = -torch.log2(p).mean().item()
    return b, 2**b


def context_windows(t, n, pad, right_pad=False, shift=0):
    padding = (0, n - 1) if right_pad else (n - 1 - shift, shift)
    return F.pad(t, padding, value=pad).unfold(1, n, 1)


def attention(q, k, v, mask="causal", scale=True):
    scores = q @ k.transpose(-2, -1) / (math.sqrt(q.shape[-1]) if scale else 1)
    ones = torch.ones(q.shape[-2], q.shape[-2], dtype=torch.bool)
    if mask == "causal":
        scores = scores.masked_fill(torch.triu(ones, 1), float("-inf"))
    elif mask == "past":  # the mask the wrong way round: the past hidden
        scores = scores.masked_fill(torch.tril(ones, -1), float("-inf"))
    return scores.softmax(dim=-1) @ v


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
        autoregressive.check_smoothed_bigram,
        right=[smoothed],
        wrong=[
            Wrong(
                "alpha added to the counts, not to the total",
                "must sum to 1",
                lambda c, a: smoothed(c, a, "no alpha"),
            ),
            Wrong("no smoothing", "must sum to 1", lambda c, a: smoothed(c, a, "no smoothing")),
            Wrong(
                "normalised over columns", "must sum to 1", lambda c, a: smoothed(c, a, "columns")
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
        autoregressive.check_causal_attention,
        right=[attention, lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)],
        wrong=[
            Wrong("no mask", "no causal mask", lambda q, k, v: attention(q, k, v, mask=None)),
            Wrong("no 1/sqrt(d)", "sqrt", lambda q, k, v: attention(q, k, v, scale=False)),
            Wrong(
                "the mask the wrong way round",
                "triu",
                lambda q, k, v: attention(q, k, v, mask="past"),
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


def freeze(model, n, with_embedding=True):
    from genai_lib.finetune import freeze_all_but

    freeze_all_but(
        model,
        [*model.blocks[-n:], model.norm, *([model.token_embedding] if with_embedding else [])],
    )


FINETUNING_CASES = [
    Case(
        finetuning.check_lora_update,
        right=[lambda A, B, alpha: (alpha / A.shape[0]) * B @ A],
        wrong=[
            Wrong("scaled by alpha", "alpha / r", lambda A, B, alpha: alpha * B @ A),
            Wrong(
                "transposed", "in that order", lambda A, B, alpha: (alpha / A.shape[0]) * (B @ A).T
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
    Case(
        finetuning.check_freeze,
        right=[freeze],
        wrong=[
            Wrong("nothing frozen", "Block 0", lambda m, n: None),
            Wrong(
                "the tied embedding frozen",
                "token_embedding",
                lambda m, n: freeze(m, n, with_embedding=False),
            ),
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
        diffusion.check_guidance,
        right=[lambda c, u, s: u + s * (c - u)],
        wrong=[
            Wrong("swapped", "swapped", lambda c, u, s: c + s * (u - c)),
            Wrong("Ho & Salimans' w = s", "w = s - 1", lambda c, u, s: (1 + s) * c - s * u),
            Wrong("conditional only", "whatever the scale", lambda c, u, s: c),
            Wrong("no eps_uncond term", "For s = 0.0", lambda c, u, s: s * (c - u)),
        ],
    ),
]


# ---------------------------------------------------------------- 06: scaling


def accumulate(model, loss_fn, batches, divide=True, zero_inside=False):
    model.zero_grad()
    for batch in batches:
        if zero_inside:
            model.zero_grad()
        loss = loss_fn(batch)
        (loss / len(batches) if divide else loss).backward()
    return [p.grad for p in model.parameters()]


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
        scaling.check_accumulated_gradients,
        right=[accumulate],
        wrong=[
            Wrong(
                "not divided by k",
                "3 times too large",
                lambda m, f, b: accumulate(m, f, b, divide=False),
            ),
            Wrong(
                "zeroed inside the loop",
                "last micro-batch's gradient only",
                lambda m, f, b: accumulate(m, f, b, zero_inside=True),
            ),
            Wrong(
                "a micro-batch left out",
                "Not the gradient of the whole",
                lambda m, f, b: accumulate(m, f, b[:2]),
            ),
            Wrong("nothing returned", "list of tensors", lambda m, f, b: None),
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


CASES: list[Case] = [
    *WELCOME,
    *VAE_CASES,
    *GAN_CASES,
    *GAN_PRACTICE_CASES,
    *AUTOREGRESSIVE_CASES,
    *FINETUNING_CASES,
    *DIFFUSION_CASES,
    *SCALING_CASES,
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
