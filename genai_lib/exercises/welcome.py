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
        f"{what} should return one number (a float or a one-element tensor); "
        f"got {type(value).__name__}.",
    )
    return float(value)  # type: ignore[arg-type]


def check_gaussian_nll(fn: Callable[[Tensor, float, float], object]) -> None:
    """``fn(x, mu, sigma)``: the average negative log-likelihood of the points ``x`` (N,).

    Under N(mu, sigma^2), in nats per point.
    """
    x = torch.tensor([0.0, 1.0, -2.0, 0.5])
    got = _number(call(fn, x, 0.5, 2.0), "gaussian_nll")
    expected = float(-torch.distributions.Normal(0.5, 2.0).log_prob(x).mean())
    without_constant = expected - 0.5 * math.log(2 * math.pi)
    expect(
        abs(got - without_constant) > 1e-4,
        "Close, but the constant is missing: the density has a factor 1 / sqrt(2 pi sigma^2), "
        "so each point adds 0.5 * log(2 pi) + log(sigma) to its negative log-likelihood.",
    )
    expect(
        abs(got - expected) < 1e-4,
        f"For x = {x.tolist()}, mu = 0.5, sigma = 2 the average negative log-likelihood is "
        f"{expected:.4f} nats; yours is {got:.4f}. Check that sigma is a standard deviation "
        "(not a variance) and that you average.",
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
        f"The samples' mean should be sum_k pi_k mu_k = {mean:.2f}; yours is "
        f"{float(got.mean()):.3f}. Pick each sample's component with probability pi_k "
        "(torch.multinomial), then draw from that component.",
    )
    expect(
        abs(float(got.var()) - var) < 0.05 * var,
        f"The samples' variance should be {var:.2f} (the spread within each component plus the "
        f"spread between their means); yours is {float(got.var()):.3f}. Scale the noise by each "
        "component's std.",
    )
    share_left = float((got < -0.5).float().mean())
    expect(
        abs(share_left - 0.2) < 0.01,
        f"About 20% of the samples should come from the component at -3; "
        f"{share_left:.1%} of yours lie there.",
    )
    passed("the mixture's mean, variance and component shares come out right.")


def _integral(log_density: Tensor, cell_area: float) -> float:
    """The integral over the plane of exp(log_density), from its values on a square grid."""
    return float(log_density.exp().sum() * cell_area)


def check_log_prob_in_data_units(
    fn: Callable[[Callable[[Tensor], Tensor], Tensor, Tensor, Tensor], Tensor],
) -> None:
    """``fn(log_prob, x, mean, std) -> (N,)``: the log-density of raw points ``x`` (N, d), in nats.

    ``log_prob`` scores *standardised* points u = (x - mean) / std, ``(N, d) -> (N,)``: the
    chapter's model, fitted after centring and scaling each axis. The answer scores the raw points;
    by the change of variables it is ``log_prob(u) - sum_j log std_j``. The check compares it with
    the Gaussian that a Gaussian model of u becomes in the raw coordinates, and integrates
    ``exp(fn)`` over a grid of the raw plane: a density integrates to 1.
    """
    mean, std = torch.tensor([0.5, 0.25]), torch.tensor([0.9, 0.5])  # about make_moons' own
    m_u = torch.tensor([0.3, -0.2])
    cov_u = torch.tensor([[1.0, 0.4], [0.4, 0.8]])
    log_prob = torch.distributions.MultivariateNormal(m_u, covariance_matrix=cov_u).log_prob
    # x = mean + std * u: Gaussian again, with the mean and covariance mapped the same way
    scale = torch.diag(std)
    raw = torch.distributions.MultivariateNormal(
        mean + std * m_u, covariance_matrix=scale @ cov_u @ scale
    )
    x = torch.tensor([[0.5, 0.25], [1.4, 0.0], [-0.3, 0.6], [0.9, -0.4], [2.0, 1.0]])
    got = call(fn, log_prob, x, mean, std)
    expect(
        isinstance(got, Tensor) and got.shape == (len(x),),
        f"Return one log-density per point: shape ({len(x)},); got "
        f"{tuple(got.shape) if isinstance(got, Tensor) else type(got).__name__}.",
    )
    expected = raw.log_prob(x)
    u = (x - mean) / std
    log_std = float(std.log().sum())
    side = torch.linspace(-6, 6, 481)
    grid = torch.stack(torch.meshgrid(side, side, indexing="xy"), -1).reshape(-1, 2)
    cell_area = float(side[1] - side[0]) ** 2
    with torch.no_grad():
        total = _integral(call(fn, log_prob, grid, mean, std), cell_area)
    said = f"yours integrates to {total:.2f} over the plane, not 1"
    expect(
        not torch.allclose(got, log_prob(u), atol=1e-4),
        f"Close, but this is the standardised point's score, and {said}. A density is "
        "probability per unit area: standardising divided axis j by std_j, so one unit square "
        "of the raw plane is 1 / (std_1 std_2) unit squares of the standardised one. Subtract "
        "sum_j log std_j, the log of the change of variables' Jacobian.",
    )
    expect(
        not torch.allclose(got, log_prob(u) + log_std, atol=1e-4),
        f"The sign of the correction is the wrong way round: {said}. Here std_j < 1, so the raw "
        "points are packed more tightly than the standardised ones, and their density is higher: "
        "subtract sum_j log std_j.",
    )
    expect(
        not torch.allclose(got, log_prob(x) - log_std, atol=1e-4),
        "The model scores standardised points: standardise x first, u = (x - mean) / std, "
        "then score u and correct for the change of units.",
    )
    values = (
        f"expected {[round(v, 3) for v in expected.tolist()]}, yours "
        f"{[round(v, 3) for v in got.tolist()]}"
    )
    expect(
        torch.allclose(got, expected, atol=1e-4, rtol=1e-4) or abs(total - 1) > 0.01,
        f"Yours integrates to 1, but it puts the probability in the wrong place ({values}). "
        "Standardise exactly as the model was fitted, u = (x - mean) / std, centring first.",
    )
    expect(
        torch.allclose(got, expected, atol=1e-4, rtol=1e-4),
        f"Not right yet: {values}, and {said}. log p_x(x) = log p_u(u) + "
        "log |du/dx| with u = (x - mean) / std, and du_j/dx_j = 1 / std_j.",
    )
    passed(
        f"your density of the raw points integrates to {total:.3f} and matches the Gaussian the "
        "model becomes in raw units: the same model scores differently in other units, by "
        "sum_j log std_j nats per point."
    )
