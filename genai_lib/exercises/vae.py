"""Checkers for chapter 01 (variational autoencoders)."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from genai_lib.exercises import call, expect, passed
from genai_lib.losses import LatentVariableModel, elbo


def check_kl_two_gaussians(kl_fn: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]) -> None:
    """``kl_fn(mu_q, logvar_q, mu_p, logvar_p)``: KL(q || p) of diagonal Gaussians, summed over the last dim."""
    g = torch.Generator().manual_seed(0)
    mu_q, mu_p = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    lv_q, lv_p = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    got = call(kl_fn, mu_q, lv_q, mu_p, lv_p)
    expect(isinstance(got, Tensor), f"Return a tensor; got {type(got).__name__}.")
    expect(got.shape == (5,), f"Sum over the last (latent) dimension: for inputs of shape (5, 3) return shape (5,); "
                              f"got {tuple(got.shape)}.")
    q = torch.distributions.Normal(mu_q, (0.5 * lv_q).exp())
    p = torch.distributions.Normal(mu_p, (0.5 * lv_p).exp())
    want = torch.distributions.kl_divergence(q, p).sum(-1)
    expect(bool((got > -1e-6).all()), "A KL divergence is never negative, and yours is for some inputs. "
                                      "Check the sign of each term.")
    standard = 0.5 * (mu_q.pow(2) + lv_q.exp() - lv_q - 1).sum(-1)
    expect(not torch.allclose(got, standard, atol=1e-4),
           "This is the KL against N(0, I): the prior's mean and variance must appear in the formula.")
    same = call(kl_fn, mu_q, lv_q, mu_q, lv_q)
    expect(torch.allclose(same, torch.zeros(5), atol=1e-5), "KL(q || q) must be 0; yours is not.")
    expect(torch.allclose(got, want, atol=1e-4, rtol=1e-4),
           f"Not equal to the exact KL yet (first values: yours {got[:3].tolist()}, expected {want[:3].tolist()}). "
           "Per dimension: 1/2 [log(s_p^2/s_q^2) + (s_q^2 + (m_q - m_p)^2) / s_p^2 - 1].")
    passed("your KL matches torch.distributions.kl_divergence, is 0 for q = p, and never negative.")


def check_iwae(iwae_fn: Callable[[LatentVariableModel, Tensor, int], Tensor], model: LatentVariableModel,
               x: Tensor) -> None:
    """``iwae_fn(model, x, k)``: the IWAE bound per image, in nats, shape (N,)."""
    torch.manual_seed(0)
    with torch.no_grad():
        got = call(iwae_fn, model, x, 1)
        expect(isinstance(got, Tensor) and got.shape == (len(x),),
               f"Return one bound per image: shape ({len(x)},); got {getattr(got, 'shape', type(got))}.")
        # Statistical comparisons: averages over the batch and 20 repeats. The tolerances
        # are several standard errors of the difference, so a right answer fails rarely.
        k1 = torch.stack([call(iwae_fn, model, x, 1) for _ in range(20)]).mean(0)
        ref = torch.stack([elbo(model, x)["elbo"] for _ in range(20)]).mean(0)
        diff = (k1 - ref)
        se = diff.std() / len(x) ** 0.5
        expect(diff.mean().abs() < 5 * se + 0.05,
               f"With k=1 the IWAE bound is the ELBO, on average; yours differs by {diff.mean():.2f} nats. "
               "Check the three log-densities in the weight: log p(x|z) + log p(z) - log q(z|x).")
        k50 = call(iwae_fn, model, x, 50)
        expect(k50.mean() >= ref.mean() - 0.05,
               f"The bound must not fall as k grows: k=50 gives {k50.mean():.2f}, the ELBO {ref.mean():.2f}. "
               "Did you forget to subtract log k, or use a mean of logs instead of a log of means (logsumexp)?")
        expect(k50.mean() <= ref.mean() + 15,
               f"k=50 gives {k50.mean():.2f} nats against an ELBO of {ref.mean():.2f}: far too high to be a bound. "
               "Subtract log k after the logsumexp.")
    passed(f"k=1 matches the ELBO on average, and k=50 raises the bound from {ref.mean():.2f} "
           f"to {k50.mean():.2f} nats per image.")


def check_active_units(active_fn: Callable[[Tensor, float], int]) -> None:
    """``active_fn(mu, threshold)``: how many latent dimensions have Var_x(mu(x)) > threshold."""
    g = torch.Generator().manual_seed(0)
    spread = torch.tensor([2.0, 1.0, 0.5, 0.2, 0.05, 0.0])  # standard deviations
    mu = torch.randn(4000, 6, generator=g) * spread + 3.0  # a constant offset must not count
    got = call(active_fn, mu, 0.01)
    expect(isinstance(got, int) or (isinstance(got, Tensor) and got.numel() == 1),
           f"Return one number (an int); got {type(got).__name__}.")
    got = int(got)
    expect(got != 6, "All 6 dimensions counted: measure how much mu varies *across images* (the variance over "
                     "the batch dimension, dim=0), not its size.")
    expect(got == 4, f"Expected 4 active dimensions (their variances across images are 4, 1, 0.25 and 0.04, "
                     f"above the threshold 0.01; the others are 0.0025 and 0); got {got}. Compare the variance, "
                     f"not the standard deviation, with the threshold.")
    passed("4 of the 6 dimensions are active: their posterior means vary across the data.")


def check_gaussian_log_likelihood(loglik_fn: Callable[[Tensor, Tensor, float], Tensor]) -> None:
    """``loglik_fn(x, mean, sigma)``: log N(x; mean, sigma^2 I) per image in nats, shape (N,)."""
    g = torch.Generator().manual_seed(1)
    x, mean = torch.rand(4, 1, 8, 8, generator=g), torch.rand(4, 1, 8, 8, generator=g)
    got = call(loglik_fn, x, mean, 0.3)
    expect(isinstance(got, Tensor) and got.shape == (4,),
           f"Return one log-likelihood per image, shape (4,) here; got {getattr(got, 'shape', type(got))}.")
    want = torch.distributions.Normal(mean, 0.3).log_prob(x).flatten(1).sum(-1)
    mse_only = -((x - mean) ** 2).flatten(1).sum(-1)
    expect(not torch.allclose(got, mse_only, atol=1e-3),
           "That is minus the squared error: a Gaussian log-likelihood also divides by 2 sigma^2 "
           "and has a normalising constant, -D/2 log(2 pi sigma^2).")
    expect(not torch.allclose(got, want / 64, atol=1e-4),
           "Sum over the 64 pixels of an image; you averaged them (that gives nats per pixel).")
    expect(torch.allclose(got, want, atol=1e-3, rtol=1e-4),
           f"Not equal yet: yours {got.tolist()}, expected {want.tolist()}. "
           "Per pixel: -(x - mean)^2 / (2 sigma^2) - 1/2 log(2 pi sigma^2), summed over pixels.")
    passed("your Gaussian log-likelihood matches torch.distributions.Normal, constants included.")


def check_posterior(posterior_fn: Callable[[Tensor], Tensor], log_joint: Callable[[Tensor], Tensor],
                    x: Tensor) -> None:
    """``posterior_fn(x)``: p(z|x) for a discrete z, shape (N, K); ``log_joint(x)`` gives log p(x, z), (N, K)."""
    post = call(posterior_fn, x)
    lj = log_joint(x)
    expect(isinstance(post, Tensor) and post.shape == lj.shape,
           f"Return probabilities of shape {tuple(lj.shape)} (one row per point, one column per state); "
           f"got {getattr(post, 'shape', type(post))}.")
    expect(bool((post >= 0).all()), "Probabilities cannot be negative. Did you return log-probabilities?")
    expect(torch.allclose(post.sum(-1), torch.ones(len(x), dtype=post.dtype), atol=1e-6),
           "Each row must sum to 1: divide p(x, z) by p(x) = sum_z p(x, z) (in logs: subtract a logsumexp).")
    log_px = torch.logsumexp(lj, dim=-1)
    elbo_at_posterior = (post * (lj - post.clamp_min(1e-300).log())).sum(-1)
    expect(torch.allclose(elbo_at_posterior, log_px, atol=1e-6),
           "Rows sum to 1, but the ELBO with this q is not log p(x): this is not the posterior. "
           "Use Bayes' rule: p(z|x) = p(x, z) / p(x).")
    passed("with q = your posterior, the ELBO equals log p(x) exactly: the gap KL(q || p(z|x)) is 0.")


def check_beta_sweep(results: dict[float, dict[str, float]]) -> None:
    """``results[beta] = {"kl": ..., "recon_nll": ...}``, held-out means in nats per image."""
    expect(isinstance(results, dict) and len(results) >= 3,
           "Return a dict with at least three betas as keys, e.g. {0.5: {...}, 1.0: {...}, 4.0: {...}}.")
    betas = sorted(results)
    for b in betas:
        expect({"kl", "recon_nll"} <= set(results[b]), f"results[{b}] needs the keys 'kl' and 'recon_nll'.")
    kls = [results[b]["kl"] for b in betas]
    recons = [results[b]["recon_nll"] for b in betas]
    # Small trainings are noisy: allow each step 0.5 nats against the trend.
    expect(all(a >= b - 0.5 for a, b in zip(kls, kls[1:])),
           f"The KL should fall as beta grows (a larger beta prices information in z higher); got {kls}. "
           "Did you weight the KL by beta in the loss, and measure the KL without the beta?")
    expect(all(a <= b + 0.5 for a, b in zip(recons, recons[1:])),
           f"The reconstruction NLL should rise as beta grows (less information gets through z); got {recons}.")
    passed(f"as beta goes {betas[0]} -> {betas[-1]}, the KL falls {kls[0]:.1f} -> {kls[-1]:.1f} nats and the "
           f"reconstruction NLL rises {recons[0]:.1f} -> {recons[-1]:.1f}: the rate-distortion trade-off.")
