"""Checkers for chapter 01 (variational autoencoders)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from genai_lib.exercises import ExerciseError, call, expect, passed
from genai_lib.losses import LatentVariableModel, elbo, iwae_bound


def check_kl_two_gaussians(kl_fn: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]) -> None:
    """``kl_fn(mu_q, logvar_q, mu_p, logvar_p)``: KL(q || p) of diagonal Gaussians, summed over the last dim."""
    g = torch.Generator().manual_seed(0)
    mu_q, mu_p = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    lv_q, lv_p = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    got = call(kl_fn, mu_q, lv_q, mu_p, lv_p)
    expect(isinstance(got, Tensor), f"Return a tensor; got {type(got).__name__}.")
    expect(
        got.shape == (5,),
        f"Sum over the last (latent) dimension: for inputs of shape (5, 3) return shape (5,); "
        f"got {tuple(got.shape)}.",
    )
    q = torch.distributions.Normal(mu_q, (0.5 * lv_q).exp())
    p = torch.distributions.Normal(mu_p, (0.5 * lv_p).exp())
    want = torch.distributions.kl_divergence(q, p).sum(-1)
    expect(
        bool((got > -1e-6).all()),
        "A KL divergence is never negative, and yours is for some inputs. "
        "Check the sign of each term.",
    )
    standard = 0.5 * (mu_q.pow(2) + lv_q.exp() - lv_q - 1).sum(-1)
    expect(
        not torch.allclose(got, standard, atol=1e-4),
        "This is the KL against N(0, I): the prior's mean and variance must appear in the formula.",
    )
    reversed_kl = torch.distributions.kl_divergence(p, q).sum(-1)
    expect(
        not torch.allclose(got, reversed_kl, atol=1e-4, rtol=1e-4),
        "This is KL(p || q): the two distributions are swapped. The KL is an expectation "
        "under q, E_q[log q - log p], so q's variance is the one divided by p's: "
        "(s_q^2 + (m_q - m_p)^2) / s_p^2.",
    )
    same = call(kl_fn, mu_q, lv_q, mu_q, lv_q)
    expect(torch.allclose(same, torch.zeros(5), atol=1e-5), "KL(q || q) must be 0; yours is not.")
    expect(
        torch.allclose(got, want, atol=1e-4, rtol=1e-4),
        f"Not equal to the exact KL yet (first values: yours {got[:3].tolist()}, expected {want[:3].tolist()}). "
        "Per dimension: 1/2 [log(s_p^2/s_q^2) + (s_q^2 + (m_q - m_p)^2) / s_p^2 - 1].",
    )
    passed("your KL matches torch.distributions.kl_divergence, is 0 for q = p, and never negative.")


def check_iwae(
    iwae_fn: Callable[[LatentVariableModel, Tensor, int], Tensor],
    model: LatentVariableModel,
    x: Tensor,
    *,
    k: int = 50,
    repeats: int = 5,
    seed: int = 0,
) -> None:
    """``iwae_fn(model, x, k)``: the IWAE bound per image, in nats, shape (N,).

    Compares the learner's bound with :func:`genai_lib.losses.iwae_bound` on the same model and
    images, at k = 1 (where it is the ELBO) and at ``k``, each averaged over ``repeats`` calls,
    then checks that it stays finite where the weights underflow. The two mistakes the hints
    name miss the bound by known amounts: without the - log k term the answer is log k too high
    (3.91 nats for k = 50); a mean of the log-weights instead of the log of the mean weight has
    the ELBO's expectation for every k, so it misses the bound's gain over the ELBO. Measured on
    chapter 01b's VAE of the 8x8 digits (15 or 150 epochs, two seeds each, 100 held-out images),
    that gain is 0.2-0.5 nats per image for k = 50, and the mean of the log-weights lands 0.26-0.37
    nats below the bound, 34-43 standard errors of the comparison (about 0.008 nats) away.
    The check draws from its own random stream (``seed``) and leaves the caller's alone.
    """
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(seed)
        got = call(iwae_fn, model, x, 1)
        expect(
            isinstance(got, Tensor) and got.shape == (len(x),),
            f"Return one bound per image: shape ({len(x)},); "
            f"got {getattr(got, 'shape', type(got))}.",
        )
        n = len(x)

        def mean_and_se(ours: Tensor, reference: Tensor) -> tuple[float, float]:
            """The mean over images of the difference of two (repeats, N) estimates, and its SE.

            When both estimate the same bound each image's expected difference is 0, so the
            standard error comes from the spread of the repeats within each image, not from the
            spread between images.
            """
            diff = (ours.mean(0) - reference.mean(0)).mean().item()
            var = ours.var(0).mean() / len(ours) + reference.var(0).mean() / len(reference)
            return diff, (var / n).sqrt().item()

        # 5 standard errors: a right answer fails with probability below 1e-6 (a mean over 100
        # images is Gaussian to a good approximation). + 0.01 nats keeps a zero standard error
        # (the same random draws) from failing a right answer; it is far below every gap told apart.
        # k = 1: the IWAE bound is the ELBO. The reference uses the exact KL, so it is less noisy.
        ones = torch.stack([got] + [call(iwae_fn, model, x, 1) for _ in range(2 * repeats - 1)])
        elbos = torch.stack([elbo(model, x)["elbo"] for _ in range(10 * repeats)])
        diff, se = mean_and_se(ones, elbos)
        tolerance = 5 * se + 0.01
        expect(
            abs(diff) < tolerance,
            f"With k=1 the IWAE bound is the ELBO, on average; yours differs by {diff:+.2f} "
            f"nats per image (± {tolerance:.2f} allowed). Check the three log-densities in "
            "the weight: log p(x|z) + log p(z) - log q(z|x).",
        )

        ours = torch.stack([call(iwae_fn, model, x, k) for _ in range(repeats)])
        expect(
            bool(torch.isfinite(ours).all()),
            f"With k={k} some of your bounds are not finite (NaN or inf).",
        )
        bounds = torch.stack([iwae_bound(model, x, k) for _ in range(repeats)])
        diff, se = mean_and_se(ours, bounds)
        tolerance = 5 * se + 0.01
        gain, _ = mean_and_se(bounds, elbos)
        if abs(diff) >= tolerance:
            versus_elbo, se_elbo = mean_and_se(ours, elbos)
            expect(
                abs(diff - math.log(k)) >= tolerance,
                f"With k={k} yours is {diff:.2f} nats per image above the IWAE bound: that "
                f"is log k = {math.log(k):.2f}. Subtract log k after the logsumexp: the bound "
                "is the log of the *mean* weight, log (1/k) sum_i w_i, not of their sum.",
            )
            expect(
                abs(versus_elbo) >= 5 * se_elbo + 0.01,
                f"With k={k} yours is the ELBO again ({versus_elbo:+.2f} nats from it), while "
                f"the IWAE bound is {gain:.2f} nats above it. Take the log of the mean weight, "
                "logsumexp(log_w, dim=0) - log k, not the mean of the log-weights: a mean of "
                "logs has the ELBO's expectation for every k (Jensen's inequality is the gap "
                "that the IWAE bound closes).",
            )
            raise ExerciseError(
                f"With k={k} yours differs from the IWAE bound by {diff:+.2f} nats per image "
                f"(± {tolerance:.2f} allowed; the bound is {gain:.2f} nats above the ELBO). The "
                "bound is the logsumexp over the k samples of log w_i, minus log k, with log w_i = "
                "log p(x|z_i) + log p(z_i) - log q(z_i|x) and each z_i drawn from q(z|x): k "
                "samples for each image."
            )

        # The same model on inverted digits, which it finds very unlikely: the log-weights lie far
        # below -103, the log of float32's smallest number, so exp() underflows to 0.
        unlikely = 1 - x
        far = call(iwae_fn, model, unlikely, k)
        reference = iwae_bound(model, unlikely, k)
        bad = ~torch.isfinite(far)
        if bad.any():
            raise ExerciseError(
                f"On images the model finds very unlikely (the digits inverted: log p(x) about "
                f"{reference.mean():.0f} nats) your bound is {far[bad][0].item()} for "
                f"{int(bad.sum())} of {n} images: exp(log_w) underflows to 0 in float32 below "
                "about -103 nats. Compute the log of the mean weight from the log-weights: "
                "torch.logsumexp(log_w, dim=0) - math.log(k)."
            )
    passed(
        f"k=1 matches the ELBO on average, k={k} matches genai_lib's IWAE bound and raises it "
        f"by {gain:.2f} nats per image, and it stays finite where the weights underflow."
    )


def check_active_units(active_fn: Callable[[Tensor, float], int]) -> None:
    """``active_fn(mu, threshold)``: how many latent dimensions have Var_x(mu(x)) > threshold."""
    g = torch.Generator().manual_seed(0)
    spread = torch.tensor([2.0, 1.0, 0.5, 0.2, 0.05, 0.0])  # standard deviations
    mu = torch.randn(4000, 6, generator=g) * spread + 3.0  # a constant offset must not count
    got = call(active_fn, mu, 0.01)
    expect(
        isinstance(got, int) or (isinstance(got, Tensor) and got.numel() == 1),
        f"Return one number (an int); got {type(got).__name__}.",
    )
    got = int(got)
    expect(
        got != 6,
        "All 6 dimensions counted: measure how much mu varies *across images* (the variance over "
        "the batch dimension, dim=0), not its size.",
    )
    expect(
        got == 4,
        f"Expected 4 active dimensions (their variances across images are 4, 1, 0.25 and 0.04, "
        f"above the threshold 0.01; the others are 0.0025 and 0); got {got}. Compare the variance, "
        f"not the standard deviation, with the threshold.",
    )
    passed("4 of the 6 dimensions are active: their posterior means vary across the data.")


def check_gaussian_log_likelihood(loglik_fn: Callable[[Tensor, Tensor, float], Tensor]) -> None:
    """``loglik_fn(x, mean, sigma)``: log N(x; mean, sigma^2 I) per image in nats, shape (N,)."""
    g = torch.Generator().manual_seed(1)
    x, mean = torch.rand(4, 1, 8, 8, generator=g), torch.rand(4, 1, 8, 8, generator=g)
    got = call(loglik_fn, x, mean, 0.3)
    expect(
        isinstance(got, Tensor) and got.shape == (4,),
        f"Return one log-likelihood per image, shape (4,) here; got {getattr(got, 'shape', type(got))}.",
    )
    want = torch.distributions.Normal(mean, 0.3).log_prob(x).flatten(1).sum(-1)
    mse_only = -((x - mean) ** 2).flatten(1).sum(-1)
    expect(
        not torch.allclose(got, mse_only, atol=1e-3),
        "That is minus the squared error: a Gaussian log-likelihood also divides by 2 sigma^2 "
        "and has a normalising constant, -D/2 log(2 pi sigma^2).",
    )
    expect(
        not torch.allclose(got, want / 64, atol=1e-4),
        "Sum over the 64 pixels of an image; you averaged them (that gives nats per pixel).",
    )
    expect(
        torch.allclose(got, want, atol=1e-3, rtol=1e-4),
        f"Not equal yet: yours {got.tolist()}, expected {want.tolist()}. "
        "Per pixel: -(x - mean)^2 / (2 sigma^2) - 1/2 log(2 pi sigma^2), summed over pixels.",
    )
    passed("your Gaussian log-likelihood matches torch.distributions.Normal, constants included.")


def check_posterior(
    posterior_fn: Callable[[Tensor], Tensor], log_joint: Callable[[Tensor], Tensor], x: Tensor
) -> None:
    """``posterior_fn(x)``: p(z|x) for a discrete z, shape (N, K); ``log_joint(x)`` gives log p(x, z), (N, K)."""
    post = call(posterior_fn, x)
    lj = log_joint(x)
    expect(
        isinstance(post, Tensor) and post.shape == lj.shape,
        f"Return probabilities of shape {tuple(lj.shape)} (one row per point, one column per state); "
        f"got {getattr(post, 'shape', type(post))}.",
    )
    expect(
        bool((post >= 0).all()),
        "Probabilities cannot be negative. Did you return log-probabilities?",
    )
    expect(
        torch.allclose(post.sum(-1), torch.ones(len(x), dtype=post.dtype), atol=1e-6),
        "Each row must sum to 1: divide p(x, z) by p(x) = sum_z p(x, z) (in logs: subtract a logsumexp).",
    )
    log_px = torch.logsumexp(lj, dim=-1)
    elbo_at_posterior = (post * (lj - post.clamp_min(1e-300).log())).sum(-1)
    expect(
        torch.allclose(elbo_at_posterior, log_px, atol=1e-6),
        "Rows sum to 1, but the ELBO with this q is not log p(x): this is not the posterior. "
        "Use Bayes' rule: p(z|x) = p(x, z) / p(x).",
    )
    passed(
        "with q = your posterior, the ELBO equals log p(x) exactly: the gap KL(q || p(z|x)) is 0."
    )


def check_beta_sweep(results: dict[float, dict[str, float]]) -> None:
    """``results[beta] = {"kl": ..., "recon_nll": ...}``, held-out means in nats per image.

    The betas must span a factor of 4 or more. Then: the KL must not rise with beta, nor the
    reconstruction NLL fall (each step may go 0.5 nats against the trend), and the KL at the
    largest beta must be at most half the KL at the smallest. Measured with chapter 01b's sweep
    (betas 0.5, 2 and 8; an MLP VAE of the 8x8 digits; each beta trained from the same seed):
    over 5 seeds at 3 epochs (fast mode) the KL fell from 0.68-1.67 to 0.00-0.01 nats and the
    reconstruction NLL rose from 27.8-28.1 to 28.6-29.0; over 3 seeds at 30 epochs, from 6.1-6.3
    to 0.00 and from 18.6-19.0 to 26.7. Every step went with the trend, so 0.5 nats against it
    is slack for noisier setups (the KL at beta = 0.5 varied by 1 nat between seeds in fast
    mode). A sweep whose training ignores beta gives the same KL at every beta: ratio 1, not 1/2.
    """
    expect(
        isinstance(results, dict) and len(results) >= 3,
        "Return a dict with at least three betas as keys, e.g. {0.5: {...}, 2.0: {...}, "
        "8.0: {...}}.",
    )
    betas = sorted(results)
    for b in betas:
        expect(
            isinstance(results[b], dict) and {"kl", "recon_nll"} <= set(results[b]),
            f"results[{b}] needs the keys 'kl' and 'recon_nll'.",
        )
    expect(
        betas[0] > 0 and betas[-1] >= 4 * betas[0],
        f"Your betas {betas} span a factor of {betas[-1] / betas[0]:.2g}: use betas spanning at "
        "least a factor of 4, e.g. (0.5, 2.0, 8.0), so that the trade-off shows above the "
        "noise of short trainings.",
    )
    kls = [float(results[b]["kl"]) for b in betas]
    recons = [float(results[b]["recon_nll"]) for b in betas]
    shown = ", ".join(f"{v:.2f}" for v in kls)
    expect(
        all(a >= b - 0.5 for a, b in zip(kls, kls[1:])),
        f"The KL should fall as beta grows (a larger beta prices information in z higher); got "
        f"[{shown}] nats. Did you weight the KL by beta in the loss (recon + beta * KL, not "
        "KL / beta), and measure the KL without the beta? Are 'kl' and 'recon_nll' the right "
        "way round?",
    )
    expect(
        kls[-1] <= kls[0] / 2,
        f"The KL barely changes across betas: [{shown}] nats. Is beta passed to the training "
        "loss? Each model must be trained with its own beta (if every beta gives a KL near 0, "
        "include betas below 1, e.g. 0.5).",
    )
    expect(
        all(a <= b + 0.5 for a, b in zip(recons, recons[1:])),
        f"The reconstruction NLL should rise as beta grows (less information gets through z); "
        f"got [{', '.join(f'{v:.2f}' for v in recons)}] nats.",
    )
    passed(
        f"as beta goes {betas[0]} -> {betas[-1]}, the KL falls {kls[0]:.1f} -> {kls[-1]:.1f} "
        f"nats and the reconstruction NLL rises {recons[0]:.1f} -> {recons[-1]:.1f}: the "
        "rate-distortion trade-off."
    )
