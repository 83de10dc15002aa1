"""Checkers for chapter 00 (a density model fitted by maximum likelihood)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from genai_lib.exercises import call, expect, passed


def _number(value: object, what: str) -> float:
    expect(
        isinstance(value, (Tensor, float, int))
        and (not isinstance(value, Tensor) or value.numel() == 1),
        f"{what} should return one number (a float or a one-element tensor); got {type(value).__name__}.",
    )
    return float(value)  # type: ignore[arg-type]


def check_gaussian_nll(fn: Callable[[Tensor, float, float], object]) -> None:
    """``fn(x, mu, sigma)``: the average negative log-likelihood of the points ``x`` (N,) under N(mu, sigma^2), nats."""
    x = torch.tensor([0.0, 1.0, -2.0, 0.5])
    got = _number(call(fn, x, 0.5, 2.0), "gaussian_nll")
    expected = float(-torch.distributions.Normal(0.5, 2.0).log_prob(x).mean())
    without_constant = expected - 0.5 * math.log(2 * math.pi)
    expect(
        abs(got - without_constant) > 1e-4,
        "Close, but the constant is missing: the density has a factor 1 / sqrt(2 pi sigma^2), so each point "
        "adds 0.5 * log(2 pi) + log(sigma) to its negative log-likelihood.",
    )
    expect(
        abs(got - expected) < 1e-4,
        f"For x = {x.tolist()}, mu = 0.5, sigma = 2 the average negative log-likelihood is {expected:.4f} nats; "
        f"yours is {got:.4f}. Check that sigma is a standard deviation (not a variance) and that you average.",
    )
    passed("the average negative log-likelihood matches, constant and all.")


def check_sample_mixture(fn: Callable[..., Tensor], *, seed: int = 0) -> None:
    """``fn(weights (K,), means (K,), stds (K,), n, generator) -> (n,)``: a 1-D Gaussian mixture.

    ``n`` samples; ``seed`` seeds the generator handed to ``fn``.
    """
    weights, means, stds = (
        torch.tensor([0.2, 0.8]),
        torch.tensor([-3.0, 2.0]),
        torch.tensor([0.5, 0.25]),
    )
    n = 200_000
    got = call(fn, weights, means, stds, n, torch.Generator().manual_seed(seed))
    expect(
        isinstance(got, Tensor) and got.shape == (n,),
        f"Return a tensor of shape ({n},); got "
        f"{tuple(got.shape) if isinstance(got, Tensor) else type(got).__name__}.",
    )
    mean = float((weights * means).sum())  # -0.6 + 1.6 = 1.0
    var = float((weights * (stds**2 + means**2)).sum()) - mean**2  # the law of total variance
    # 5 standard errors: a right answer fails this less than once in a million seeds
    expect(
        abs(float(got.mean()) - mean) < 5 * math.sqrt(var / n),
        f"The samples' mean should be sum_k pi_k mu_k = {mean:.2f}; yours is {float(got.mean()):.3f}. Pick each "
        f"sample's component with probability pi_k (torch.multinomial), then draw from that component.",
    )
    expect(
        abs(float(got.var()) - var) < 0.05 * var,
        f"The samples' variance should be {var:.2f} (the spread within each component plus the spread between "
        f"their means); yours is {float(got.var()):.3f}. Scale the noise by each component's std.",
    )
    share_left = float((got < -0.5).float().mean())
    expect(
        abs(share_left - 0.2) < 0.01,
        f"About 20% of the samples should come from the component at -3; "
        f"{share_left:.1%} of yours lie there.",
    )
    passed("the mixture's mean, variance and component shares come out right.")


def check_mixture_log_prob(fn: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]) -> None:
    """``fn(x (N,), weights (K,), means (K,), stds (K,)) -> (N,)``: log sum_k pi_k N(x; mu_k, sigma_k^2)."""
    weights, means, stds = (
        torch.tensor([0.3, 0.7]),
        torch.tensor([-1.0, 2.0]),
        torch.tensor([0.5, 1.5]),
    )
    x = torch.tensor([0.0, -1.0, 3.0])
    got = call(fn, x, weights, means, stds)
    expect(
        isinstance(got, Tensor) and got.shape == (3,),
        "Return one log-density per point: a tensor of shape (N,).",
    )
    components = torch.distributions.Normal(means, stds).log_prob(x[:, None]) + weights.log()
    expected = torch.logsumexp(components, dim=1)
    expect(
        torch.allclose(got, expected, atol=1e-5),
        f"Expected {[round(v, 4) for v in expected.tolist()]}; yours {[round(v, 4) for v in got.tolist()]}. "
        f"It is the log of a weighted sum of the component densities (not a sum of their logs).",
    )
    far = call(fn, torch.tensor([60.0]), weights, means, stds)
    expected_far = torch.logsumexp(
        torch.distributions.Normal(means, stds).log_prob(torch.tensor([[60.0]])) + weights.log(),
        dim=1,
    )
    expect(
        bool(torch.isfinite(far).all()) and torch.allclose(far, expected_far, rtol=1e-4),
        f"At x = 60 every density underflows to 0 in float32, so log(sum(...)) gives -inf; the true value is "
        f"{expected_far.item():.1f}. Work with log-densities and combine them with torch.logsumexp.",
    )
    passed("the log-density is right, and it stays finite far from every component (logsumexp).")
