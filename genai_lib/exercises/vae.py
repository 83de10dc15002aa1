"""Checkers for chapter 01 (variational autoencoders)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import functional as F

from genai_lib.exercises import call, expect, passed
from genai_lib.losses import gaussian_kl


def check_kl_two_gaussians(kl_fn: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]) -> None:
    """``kl_fn(mu_q, logvar_q, mu_p, logvar_p)``: KL(q || p) of diagonal Gaussians.

    Summed over the last (latent) dimension, in nats.
    """
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
        f"Not equal to the exact KL yet (first values: yours {got[:3].tolist()}, "
        f"expected {want[:3].tolist()}). "
        "Per dimension: 1/2 [log(s_p^2/s_q^2) + (s_q^2 + (m_q - m_p)^2) / s_p^2 - 1].",
    )
    passed("your KL matches torch.distributions.kl_divergence, is 0 for q = p, and never negative.")


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


def check_continuous_bernoulli(loglik_fn: Callable[[Tensor, Tensor], Tensor]) -> None:
    """``loglik_fn(logits, x)``: the continuous Bernoulli log-density per image, nats, ``(N,)``.

    Images ``(N, C, H, W)`` with grey values in [0, 1]; per pixel, with p = sigmoid(logit),
    x log p + (1 - x) log(1 - p) + log C(p), where C(p) = 1 / integral_0^1 p^x (1-p)^(1-x) dx
    = (log p - log(1 - p)) / (2p - 1), whose limit at p = 1/2 is 2 (Loaiza-Ganem & Cunningham,
    2019). Compared with ``torch.distributions.ContinuousBernoulli``; the check also integrates
    the density of one pixel over [0, 1], and tries logits of exactly 0 (p = 1/2, where the
    formula is 0/0).
    """
    g = torch.Generator().manual_seed(2)
    x = torch.rand(4, 1, 8, 8, generator=g)
    logits = torch.randn(4, 1, 8, 8, generator=g) * 3
    logits = torch.where(logits.abs() < 0.1, logits + 0.5, logits)  # away from p = 1/2 for now
    got = call(loglik_fn, logits, x)
    expect(
        isinstance(got, Tensor) and got.shape == (4,),
        f"Return one log-density per image, shape (4,) here; "
        f"got {getattr(got, 'shape', type(got))}.",
    )

    def reference(lg: Tensor, xs: Tensor) -> Tensor:
        return torch.distributions.ContinuousBernoulli(logits=lg).log_prob(xs).flatten(1).sum(1)

    want = reference(logits, x)
    # one pixel, p = 0.9: integrate its density over a grid of grey values
    grid = torch.linspace(0, 1, 2001)
    pixel_logit = torch.full((len(grid), 1, 1, 1), math.log(9.0))
    with torch.no_grad():
        density = call(loglik_fn, pixel_logit, grid.reshape(-1, 1, 1, 1)).exp()
    integral = torch.trapezoid(density, grid).item()
    bernoulli = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    expect(
        not torch.allclose(got, bernoulli, atol=1e-3),
        f"That is the Bernoulli formula of section 5 unchanged: over grey values it integrates to "
        f"{integral:.3f} for p = 0.9, not 1. Divide the density by that integral: add log C(p) "
        "per pixel, with C(p) = 1 / integral_0^1 p^x (1-p)^(1-x) dx.",
    )
    expect(
        not torch.allclose(got, want / 64, atol=1e-4),
        "Sum over the 64 pixels of an image; you averaged them (that gives nats per pixel).",
    )
    expect(
        abs(integral - 1) < 1e-3,
        f"For one pixel with p = 0.9 your density integrates to {integral:.3f} over [0, 1], not "
        "1. The integral of p^x (1-p)^(1-x) is (2p - 1) / (log p - log(1 - p)): add minus its "
        "log, per pixel, and sum over the pixels.",
    )
    expect(
        torch.allclose(got, want, atol=1e-3, rtol=1e-4),
        f"Not equal yet: yours {[round(v, 2) for v in got.tolist()]}, expected "
        f"{[round(v, 2) for v in want.tolist()]}. Per pixel: x log p + (1 - x) log(1 - p) + "
        "log C(p), summed over the pixels of each image.",
    )
    half = torch.zeros(2, 1, 8, 8)
    half[1, 0, 0, 0] = 1e-4  # and just beside it
    at_half = call(loglik_fn, half, x[:2])
    expect(
        bool(torch.isfinite(at_half).all()) and torch.allclose(at_half, reference(half, x[:2])),
        f"At logit 0 (p = 1/2) yours gives {at_half.tolist()}; the right value is 64 log(1/2) + "
        "64 log 2 = 0 for every image. There log p - log(1 - p) and 2p - 1 are both 0, and "
        "C(p) tends to 2: handle that point apart, e.g. torch.where(logit.abs() < 1e-3, 2, ...) "
        "on C, or a Taylor expansion.",
    )
    passed(
        "your continuous Bernoulli matches torch.distributions.ContinuousBernoulli, integrates "
        "to 1 over the grey values, and is finite at p = 1/2."
    )


def check_gaussian_posterior(posterior_fn: Callable[[Tensor, float, float], object]) -> None:
    """``posterior_fn(x, w, s) -> (mean, var)``: p(z|x) in the model z ~ N(0, 1), x|z ~ N(w z, s^2).

    ``x`` is ``(N,)``; the mean and variance of the Gaussian posterior are ``(N,)`` each (or a
    number for the variance, which does not depend on x). The check computes the ELBO with
    q = N(mean, var) in closed form, E_q[log p(x|z)] - KL(q || N(0, 1)), and compares it with the
    exact log p(x) = log N(x; 0, w^2 + s^2): the gap is KL(q || p(z|x)), zero only at the posterior.
    """
    x = torch.tensor([-3.0, -0.5, 0.0, 1.0, 2.5], dtype=torch.float64)
    w, s = 2.0, 0.5
    got = call(posterior_fn, x, w, s)
    expect(
        isinstance(got, (tuple, list)) and len(got) == 2,
        f"Return two things, (mean, var); got {type(got).__name__}.",
    )
    mean, var = (torch.as_tensor(v, dtype=torch.float64) for v in got)
    expect(
        mean.shape == x.shape and var.numel() in (1, len(x)),
        f"The mean should have one value per point, shape {tuple(x.shape)}, and the variance one "
        f"value or one per point; got shapes {tuple(mean.shape)} and {tuple(var.shape)}.",
    )
    var = var.expand_as(x)
    expect(bool((var > 0).all()), "A variance must be positive.")

    def gap(m: Tensor, v: Tensor) -> Tensor:
        """log p(x) - ELBO(q) for q = N(m, v), per point, in nats: KL(q || p(z|x))."""
        # E_q[(x - w z)^2] = (x - w m)^2 + w^2 v
        squared_error = (x - w * m) ** 2 + w**2 * v
        expected_log_lik = -0.5 * math.log(2 * math.pi * s**2) - squared_error / (2 * s**2)
        kl_to_prior = 0.5 * (m**2 + v - v.log() - 1)
        log_px = -0.5 * (math.log(2 * math.pi * (w**2 + s**2)) + x**2 / (w**2 + s**2))
        return log_px - (expected_log_lik - kl_to_prior)

    yours = gap(mean, var)
    shown = f"{yours.mean().item():.3f} nats below log p(x) (averaged over the points)"
    expect(
        not (torch.allclose(mean, torch.zeros_like(x)) and torch.allclose(var, torch.ones_like(x))),
        f"That is the prior N(0, 1): it ignores x. With it the ELBO is {shown}. "
        "Multiply the prior by the likelihood, N(z; 0, 1) N(x; w z, s^2), and complete the square "
        "in z.",
    )
    expect(
        not torch.allclose(mean, x / w),
        f"The mean x / w is the code that reconstructs x exactly, which ignores the prior: the "
        f"ELBO is {shown}. The prior pulls z towards 0, more so the noisier the "
        "decoder (the larger s).",
    )
    expect(
        bool((yours.abs() < 1e-8).all()),
        f"Not the posterior yet: with your q the ELBO is {shown}; the gap "
        "KL(q || p(z|x)) is zero only at the posterior. The precisions add: 1/v = 1 + w^2 / s^2; "
        "and the mean is v times w x / s^2.",
    )
    passed(
        "with q = your posterior the ELBO equals log p(x) exactly: a Gaussian encoder can be exact "
        "when the true posterior is Gaussian."
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


def _train_with_kl_term(
    kl_term: Callable[[Tensor, Tensor], Tensor], beta: float, epochs: int, seed: int
) -> dict[str, float]:
    """An MLP VAE of the 8x8 digits (latent_dim 16): recon NLL + beta * kl_term(mu, logvar).

    Chapter 01b's recipe, shortened: AdamW at 1e-3, one epoch of warmup, batches of 128 binarised
    afresh. Returns its held-out KL, -ELBO (nats per image, 5 draws of z over the 359 images) and
    the number of active latent dimensions (Var_x of the posterior mean above 0.01).
    """
    from genai_lib import seed_everything
    from genai_lib.data import binarize, load_digits
    from genai_lib.losses import bernoulli_log_likelihood, elbo, reparameterize
    from genai_lib.models import VAE
    from genai_lib.train import fit

    data = load_digits()
    seed_everything(seed)
    model = VAE(image_shape=data.shape, latent_dim=16, arch="mlp")

    def loss(batch: Tensor) -> Tensor:
        x = binarize(batch)
        mu, logvar = model.encode(x)
        recon = bernoulli_log_likelihood(model.decode(reparameterize(mu, logvar)), x)
        return -recon.mean() + beta * kl_term(mu, logvar)

    steps_per_epoch = len(data.train_images) // 128
    # One thread: the network is small, and on a busy 2-core machine two threads waiting for each
    # other made this 4 times slower (measured: 40 s against 9.5 s for the whole check).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fit(
            model,
            loss,
            data.train_images,
            steps=epochs * steps_per_epoch,
            batch_size=128,
            lr=1e-3,
            warmup_steps=steps_per_epoch,
            seed=seed,
            device="cpu",
            progress=False,
        )
    finally:
        torch.set_num_threads(threads)
    x_val = binarize(data.val_images, torch.Generator().manual_seed(1234))
    with torch.no_grad():
        model.eval()
        terms = [elbo(model, x_val) for _ in range(5)]
        mu, _ = model.encode(x_val)
    return {
        "kl": torch.stack([t["kl"] for t in terms]).mean().item(),
        "neg_elbo": -torch.stack([t["elbo"] for t in terms]).mean().item(),
        "active": int((mu.var(0) > 0.01).sum()),
    }


def check_free_bits(
    free_bits_fn: Callable[[Tensor, Tensor, float], Tensor], *, epochs: int = 15, seed: int = 0
) -> None:
    """``free_bits_fn(mu, logvar, free_nats)``: sum_j max(free_nats, mean_i KL_ij), one number.

    ``mu`` and ``logvar`` are ``(B, d)``; KL_ij is the KL of latent dimension j of image i from
    N(0, 1), in nats. The value and its gradients are compared with the formula (a dimension whose
    batch-mean KL is below ``free_nats`` gets no gradient). Then two MLP VAEs of the 8x8 digits are
    trained at beta = 4 for ``epochs`` epochs from ``seed``, one with the plain KL and one with
    ``free_bits_fn(mu, logvar, 0.5)``. Measured at 15 epochs, seeds 0 and 1: the plain KL
    collapses (held-out KL 0.01 nats, 0 of 16 dimensions active), free bits keep all 16 active
    (KL 6.5-6.7 nats); the check asks for at least 8 active dimensions and 2 nats.
    """
    g = torch.Generator().manual_seed(0)
    free_nats = 0.5
    # dimensions 0-2 carry little information (batch-mean KL below 0.5), 3-5 a lot
    spread = torch.tensor([0.1, 0.3, 0.5, 1.5, 2.0, 1.0])
    mu = (torch.randn(64, 6, generator=g) * spread).requires_grad_()
    logvar = (torch.randn(64, 6, generator=g) * 0.2 - spread * 0.5).requires_grad_()
    kl = 0.5 * (mu**2 + logvar.exp() - logvar - 1)  # (B, d)
    per_dim = kl.mean(0)
    assert bool((per_dim[:3] < free_nats).all() and (per_dim[3:] > free_nats).all()), per_dim
    want = per_dim.clamp(min=free_nats).sum()
    got = call(free_bits_fn, mu, logvar, free_nats)
    expect(
        isinstance(got, Tensor) and got.numel() == 1,
        "Return one number for the batch (a tensor with one element): the floored KLs summed over "
        f"the latent dimensions; got {getattr(got, 'shape', type(got).__name__)}.",
    )
    got = got.reshape(())
    plain = kl.sum(-1).mean()
    expect(
        not torch.isclose(got, plain, atol=1e-4),
        f"This is the plain KL ({plain:.3f} nats), with no floor: each dimension whose KL "
        f"(averaged over the batch) is below free_nats must be charged free_nats instead. Take "
        "the max per dimension, not of the total.",
    )
    expect(
        not torch.isclose(got, per_dim.clamp(max=free_nats).sum(), atol=1e-4),
        "That is a ceiling, not a floor: max(free_nats, KL_j), so a dimension never costs less "
        "than free_nats (torch.clamp(kl, min=free_nats)).",
    )
    expect(
        not torch.isclose(got, kl.clamp(min=free_nats).sum(-1).mean(), atol=1e-4),
        "The floor is applied to each image's KL here. Average each dimension's KL over the batch "
        "first, then apply the floor: max(free_nats, mean_i KL_ij), summed over j.",
    )
    expect(
        torch.isclose(got, want, atol=1e-4, rtol=1e-4),
        f"Not equal yet: yours {got.item():.4f}, expected {want.item():.4f} nats. Per dimension "
        "j: KL_ij = 1/2 (mu_ij^2 + exp(logvar_ij) - logvar_ij - 1), averaged over the batch "
        "(dim 0), floored at free_nats, then summed over j.",
    )
    expect(got.requires_grad, "No gradient reaches mu and logvar: don't detach anything.")
    grad_got = torch.autograd.grad(got, mu)[0]
    grad_want = torch.autograd.grad(want, mu)[0]
    expect(
        torch.allclose(grad_got, grad_want, atol=1e-5),
        "The value is right but the gradients are not: a dimension below the floor must get no "
        "gradient (its KL is free), and one above it the KL's own gradient. Use torch.clamp or "
        "torch.maximum rather than a smooth approximation, and don't detach.",
    )

    with torch.random.fork_rng():
        collapsed = _train_with_kl_term(lambda m, lv: gaussian_kl(m, lv).mean(), 4.0, epochs, seed)
        freed = _train_with_kl_term(
            lambda m, lv: call(free_bits_fn, m, lv, free_nats), 4.0, epochs, seed
        )
    expect(
        freed["active"] >= 8 and freed["kl"] >= 2.0,
        f"Trained at beta = 4 with your term, the VAE kept {freed['active']} of 16 latent "
        f"dimensions active and a held-out KL of {freed['kl']:.2f} nats (the plain KL: "
        f"{collapsed['active']} and {collapsed['kl']:.2f}); free bits should keep most of them "
        "in use.",
    )
    passed(
        f"at beta = 4 the plain KL collapsed ({collapsed['active']} of 16 dimensions active, KL "
        f"{collapsed['kl']:.2f} nats) and free bits kept {freed['active']} of 16 active (KL "
        f"{freed['kl']:.1f} nats). Held-out -ELBO: {collapsed['neg_elbo']:.1f} against "
        f"{freed['neg_elbo']:.1f} nats per image."
    )
