"""Checkers for chapter 05 (diffusion: the forward process, a DDIM step, a DDPM step)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from genai_lib.diffusion import ddim_step, ddpm_step, noise_schedule, q_sample
from genai_lib.exercises import ExerciseError, call, expect, passed

# The forward-process check: a small cosine schedule, one timestep per sample, all different, both ends included.
# B, C, H, W are all different, so a per-sample factor of shape (B,) cannot broadcast against x0 by accident.
_T = 100
_TIMESTEPS = (0, 99, 10, 50, 75)
_SHAPE = (5, 2, 3, 4)


def _tensor_like(got: object, shape: tuple[int, ...], what: str) -> Tensor:
    if not isinstance(got, Tensor):
        raise ExerciseError(f"{what} should be a tensor; got {type(got).__name__}.")
    expect(
        tuple(got.shape) == tuple(shape),
        f"{what} should have the input's shape {tuple(shape)}; yours has {tuple(got.shape)}.",
    )
    expect(
        bool(torch.isfinite(got).all()),
        f"{what} contains NaN or inf: a square root of a negative number, or a division by 0?",
    )
    return got.detach().double()


def _close(a: Tensor, b: Tensor) -> bool:
    return torch.allclose(a, b, rtol=1e-4, atol=1e-5)


def check_q_sample(fn: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]) -> None:
    """``fn(x0 (B, C, H, W), t (B,) int64, noise like x0, alpha_bars (T,) float64) -> x_t`` like ``x0``.

    ``x_t = sqrt(alpha_bars[t]) x0 + sqrt(1 - alpha_bars[t]) noise``, each sample at its own ``t``.
    """
    schedule = noise_schedule("cosine", _T)
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(_SHAPE, generator=g), torch.randn(_SHAPE, generator=g)
    t = torch.tensor(_TIMESTEPS)
    expected = q_sample(schedule, x0, t, noise).double()
    try:
        got = call(fn, x0.clone(), t.clone(), noise.clone(), schedule.alpha_bars.clone())
    except RuntimeError as err:
        raise ExerciseError(
            f"Your function raised: {str(err).splitlines()[0]}\nalpha_bars[t] has shape (B,) = ({_SHAPE[0]},) and "
            f"x0 has shape {_SHAPE}. PyTorch lines shapes up from the right, so (B,) meets W, not B: reshape "
            f"the per-sample factors to (B, 1, 1, 1) first, e.g. alpha_bars[t].view(-1, 1, 1, 1)."
        ) from None
    if not isinstance(got, Tensor):
        raise ExerciseError(
            f"x_t should be a tensor of x0's shape {_SHAPE}; got {type(got).__name__}."
        )
    expect(
        got.dim() != x0.dim() + 1,
        f"x_t should have x0's shape {_SHAPE}; yours has {tuple(got.shape)}: one dimension too many. "
        f"alpha_bars[t] (B,) needs three trailing dimensions, (B, 1, 1, 1), not four.",
    )
    expect(
        got.shape == x0.shape,
        f"x_t should have x0's shape {_SHAPE}; yours has {tuple(got.shape)}. Reshape alpha_bars[t] to "
        f"(B, 1, 1, 1), one value per sample, so that it broadcasts over C, H and W.",
    )
    got = _tensor_like(got, _SHAPE, "x_t")
    if _close(got, expected):
        passed(
            "x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise, each sample at its own t: at t = 0 it is "
            "almost x0, at t = T-1 almost pure noise; the two squared coefficients always sum to 1."
        )
        return

    # Write each sample's x_t as a x0 + b noise (least squares over its pixels) and look at a and b.
    design = torch.stack([x0.flatten(1), noise.flatten(1)], dim=-1).double()  # (B, CHW, 2)
    coef = torch.linalg.lstsq(design, got.flatten(1).unsqueeze(-1)).solution  # (B, 2, 1)
    residual = float((design @ coef - got.flatten(1).unsqueeze(-1)).abs().max())
    a, b = coef[:, 0, 0], coef[:, 1, 0]
    ab = schedule.alpha_bars[t]
    expect(
        residual < 1e-4,
        "Each sample's x_t should be a mix of its own x0 and its own noise, a_i x0_i + b_i noise_i with one pair of "
        "numbers per sample; yours is not. Index alpha_bars[t] to get shape (B,), then view(-1, 1, 1, 1), and "
        "combine x0 and noise elementwise.",
    )
    expect(
        float(a.max() - a.min()) > 1e-6,
        f"All your samples got the same amount of noise, though their timesteps differ (t = {list(_TIMESTEPS)}). "
        f"Each sample has its own t: use alpha_bars[t] (shape (B,), one value per sample), reshaped to "
        f"(B, 1, 1, 1), not one t for the whole batch.",
    )
    # steps where little signal is left, one-step alphas are still near 1
    mid = (t > 0) & (t < _T - 1) & (ab < 0.5)
    one_step = ab / schedule.alpha_bars_prev[t]
    expect(
        not (
            torch.allclose(a, one_step.sqrt(), atol=1e-4)
            or (
                torch.allclose(a**2 + b**2, torch.ones_like(a), atol=1e-3)
                and bool((a[mid] > 0.9).all())
            )
        ),
        f"At t = 50 only sqrt(alpha_bar) = {ab[3].sqrt():.3f} of the signal is left, but your x_t keeps "
        f"{a[3]:.3f} of it: that is what one step's alpha_t keeps, step t alone. The jump from x0 to x_t "
        f"uses the cumulative product alpha_bar_t = alpha_0 alpha_1 ... alpha_t: use alpha_bars.",
    )
    expect(
        not torch.allclose(a, ab, atol=1e-4),
        "The signal is scaled by alpha_bar_t; it should be its square root, sqrt(alpha_bar_t). "
        "alpha_bar_t is the fraction of the *variance* of x0 that is left.",
    )
    expect(
        not torch.allclose(b, 1 - ab, atol=1e-4),
        "The noise is scaled by its variance, 1 - alpha_bar_t; scale it by the standard deviation, "
        "sqrt(1 - alpha_bar_t) (noise ~ N(0, I), so s * noise has variance s^2).",
    )
    expect(
        not (
            torch.allclose(a, (1 - ab).sqrt(), atol=1e-4)
            and torch.allclose(b, ab.sqrt(), atol=1e-4)
        ),
        "x0 and noise are swapped: x0 gets sqrt(alpha_bar_t) (near 1 at t = 0) and the noise sqrt(1 - alpha_bar_t).",
    )
    i = int((a - ab.sqrt()).abs().add((b - (1 - ab).sqrt()).abs()).argmax())
    raise ExerciseError(
        f"For the sample at t = {_TIMESTEPS[i]}, x_t should be {ab[i].sqrt():.4f} x0 + {(1 - ab[i]).sqrt():.4f} noise "
        f"(sqrt(alpha_bar_t) and sqrt(1 - alpha_bar_t)); yours is {a[i]:.4f} x0 + {b[i]:.4f} noise."
    )


def _ddim(x_t: Tensor, eps: Tensor, ab_t: float, ab_prev: float) -> Tensor:
    return ddim_step(x_t, eps, ab_t, ab_prev)  # the library's step, eta = 0, no clipping


def check_ddim_step(fn: Callable[[Tensor, Tensor, float, float], Tensor]) -> None:
    """``fn(x_t, eps_hat, ab_t, ab_prev) -> x_prev``: one deterministic DDIM step (eta = 0).

    ``ab_t`` and ``ab_prev`` are Python floats, alpha_bar at this step and at the next one visited (less noisy);
    ``ab_prev = 1`` after the last step.
    """
    g = torch.Generator().manual_seed(1)
    x_t, eps = torch.randn(3, 1, 4, 4, generator=g), torch.randn(3, 1, 4, 4, generator=g)
    x, e = x_t.double(), eps.double()
    for ab_t, ab_prev in ((0.5, 0.8), (0.02, 0.3), (0.9, 1.0)):
        try:
            got = call(fn, x_t.clone(), eps.clone(), ab_t, ab_prev)
        except TypeError as err:
            raise ExerciseError(
                f"Your function raised: {str(err).splitlines()[0]}\nab_t and ab_prev are Python "
                f"floats, not tensors: take their square roots with math.sqrt."
            ) from None
        got = _tensor_like(got, tuple(x_t.shape), "x_prev")
        expected = _ddim(x, e, ab_t, ab_prev)
        if _close(got, expected):
            continue
        where = f"With ab_t = {ab_t}, ab_prev = {ab_prev}: "
        x0_hat = _ddim(x, e, ab_t, 1.0)
        if ab_prev == 1.0:
            raise ExerciseError(
                where + "this is the last step (no noise left), so x_prev must be x0_hat = "
                "(x_t - sqrt(1 - ab_t) eps_hat) / sqrt(ab_t) itself."
            )
        expect(
            not _close(got, math.sqrt(ab_prev) * x0_hat),
            where
            + "you return sqrt(ab_prev) x0_hat only. DDIM re-adds the predicted noise at the new level: "
            "x_prev = sqrt(ab_prev) x0_hat + sqrt(1 - ab_prev) eps_hat; without it x_prev has too little "
            "noise for step ab_prev, and the images shrink towards 0.",
        )
        expect(
            not _close(got, math.sqrt(ab_prev) * x0_hat + math.sqrt(1 - ab_t) * e),
            where + "the noise term uses ab_t. Going to the less noisy step, eps_hat is scaled by "
            "sqrt(1 - ab_prev), the noise level of x_prev, not of x_t.",
        )
        expect(
            not _close(got, _ddim(x, e, ab_prev, ab_t)),
            where
            + "ab_t and ab_prev are swapped: x0_hat comes from x_t, so it uses ab_t; the step then goes "
            "to the level ab_prev (larger: less noise).",
        )
        expect(
            not _close(got, _ddim(e, x, ab_t, ab_prev)),
            where + "x_t and eps_hat are swapped: the arguments are (x_t, eps_hat, ab_t, ab_prev).",
        )
        start = [round(v, 4) for v in expected.flatten()[:3].tolist()]
        yours = [round(v, 4) for v in got.flatten()[:3].tolist()]
        raise ExerciseError(
            where + f"expected x_prev to start {start}, yours starts {yours}. First x0_hat = "
            f"(x_t - sqrt(1 - ab_t) eps_hat) / sqrt(ab_t), then x_prev = sqrt(ab_prev) "
            f"x0_hat + sqrt(1 - ab_prev) eps_hat."
        )
    passed(
        "predict x0_hat from x_t and eps_hat, then re-noise it to the level ab_prev along the same eps_hat; "
        "no randomness (eta = 0), and with ab_prev = 1 the last step returns x0_hat itself."
    )


def _ddpm_variant(
    x: Tensor,
    e: Tensor,
    t: int,
    betas: Tensor,
    z: Tensor,
    variance: str = "posterior",
    mean_sign: float = -1.0,
    divide_by: str = "alpha",
    noise_scale: str = "std",
    last: str = "one",
    noise_sign: float = 1.0,
) -> Tensor:
    """One DDPM step written with the mistakes a learner makes, each switched on by its argument."""
    alphas = 1 - betas
    alpha_bars = torch.cumprod(alphas, 0)
    beta, alpha, ab = betas[t].item(), alphas[t].item(), alpha_bars[t].item()
    ab_prev = alpha_bars[t - 1].item() if t > 0 or last == "wrap" else 1.0
    mean = (x + mean_sign * beta / math.sqrt(1 - ab) * e) / math.sqrt(
        alpha if divide_by == "alpha" else ab
    )
    var = (1 - ab_prev) / (1 - ab) * beta if variance == "posterior" else beta
    return mean + noise_sign * (math.sqrt(var) if noise_scale == "std" else var) * z


def check_ddpm_step(fn: Callable[[Tensor, Tensor, int, Tensor, Tensor], Tensor]) -> None:
    """``fn(x_t, eps_hat, t, betas (T,) float64, z) -> x_{t-1}``: one DDPM ancestral step.

    ``x_{t-1} = (x_t - beta_t / sqrt(1 - ab_t) eps_hat) / sqrt(alpha_t) + sqrt(beta_tilde_t) z``,
    ``beta_tilde_t = (1 - ab_{t-1}) / (1 - ab_t) beta_t``, ``ab_{t-1} = 1`` at ``t = 0``; the same
    as :func:`genai_lib.diffusion.ddpm_step` given the same ``z``.
    """
    schedule = noise_schedule("cosine", _T)
    g = torch.Generator().manual_seed(3)
    x_t, eps, z = (torch.randn(2, 1, 4, 4, generator=g) for _ in range(3))
    x, e, n = x_t.double(), eps.double(), z.double()
    for t in (60, 5, _T - 1, 0):
        try:
            got = call(fn, x_t.clone(), eps.clone(), t, schedule.betas.clone(), z.clone())
        except TypeError as err:
            raise ExerciseError(
                f"Your function raised: {str(err).splitlines()[0]}\nt is a Python int and betas a "
                f"tensor: take one step's numbers with .item() (betas[t].item()) before math.sqrt."
            ) from None
        except ValueError as err:
            raise ExerciseError(
                f"Your function raised: {str(err).splitlines()[0]}\nA square root of a negative "
                f"number: is 1 - alpha_bar_t below 0? alpha_bar_t is the product of alpha_0 ... "
                f"alpha_t (torch.cumprod), which stays between 0 and 1, not their sum."
            ) from None
        got = _tensor_like(got, tuple(x_t.shape), "x_{t-1}")
        expected = ddpm_step(schedule, x, e, t, n)
        if _close(got, expected):
            continue
        where = f"At t = {t}: "

        def like(got: Tensor = got, t: int = t, **mistake: object) -> bool:
            return _close(got, _ddpm_variant(x, e, t, schedule.betas, n, **mistake))

        if t == 0:
            expect(
                not like(last="wrap"),
                where + "this is the last step, so ab_{t-1} is 1 (the clean image) and no noise is "
                "added. alpha_bars[t - 1] at t = 0 is alpha_bars[-1], the *last* entry: use 1.0.",
            )
        expect(
            not like(variance="beta"),
            where + "the noise is scaled by sqrt(beta_t), the variance of the forward step. The "
            "reverse step's variance is beta_tilde_t = (1 - ab_{t-1}) / (1 - ab_t) beta_t.",
        )
        expect(
            not like(noise_scale="variance"),
            where + "the noise is scaled by its variance beta_tilde_t; scale it by the standard "
            "deviation, sqrt(beta_tilde_t) (z ~ N(0, I), so s z has variance s^2).",
        )
        expect(
            not like(mean_sign=1.0),
            where + "the sign of the noise term in the mean is wrong: the mean *removes* the "
            "predicted noise, x_t - beta_t / sqrt(1 - ab_t) eps_hat, then divides by sqrt(alpha_t).",
        )
        expect(
            not like(divide_by="alpha_bar"),
            where + "the mean is divided by sqrt(alpha_bar_t), which undoes all t steps at once. "
            "One step back divides by one step's sqrt(alpha_t) = sqrt(1 - beta_t).",
        )
        expect(
            not like(noise_sign=-1.0),
            where
            + "the random term is subtracted: add sqrt(beta_tilde_t) z, so that the checker's "
            "z and genai_lib's ddpm_step give the same x_{t-1}.",
        )
        expect(
            not _close(got, ddpm_step(schedule, x, e, t, torch.zeros_like(n))) or t == 0,
            where + "no noise is added: DDPM is a sampler, x_{t-1} = mean + sqrt(beta_tilde_t) z.",
        )
        start = [round(v, 4) for v in expected.flatten()[:3].tolist()]
        yours = [round(v, 4) for v in got.flatten()[:3].tolist()]
        raise ExerciseError(
            where + f"expected x_{{t-1}} to start {start}, yours starts {yours}. alpha_t = 1 - "
            f"beta_t, alpha_bar_t = the product of alpha_0 ... alpha_t (torch.cumprod), then "
            f"(x_t - beta_t / sqrt(1 - ab_t) eps_hat) / sqrt(alpha_t) + sqrt(beta_tilde_t) z."
        )
    passed(
        "one ancestral step: the model's mean (the predicted noise removed, one step's alpha "
        "undone) plus noise at the true reverse step's variance beta_tilde_t; none at t = 0. "
        "Applied T times from pure noise, it is ddpm_sample."
    )
