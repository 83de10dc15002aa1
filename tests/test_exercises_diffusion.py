"""Chapter 05's exercise checkers accept a right answer and reject the usual wrong ones with a hint."""
import math

import pytest
import torch

from genai_lib.diffusion import noise_schedule
from genai_lib.exercises import ExerciseError
from genai_lib.exercises import diffusion as ex


def not_done(*args):
    raise NotImplementedError()


def forward(x0, t, noise, alpha_bars, signal=torch.sqrt, noise_scale=torch.sqrt):
    ab = alpha_bars[t].view(-1, 1, 1, 1)
    return signal(ab) * x0 + noise_scale(1 - ab) * noise


def keep(v):
    return v


def test_q_sample_checker(capsys):
    ex.check_q_sample(forward)
    assert capsys.readouterr().out.startswith("Correct:")
    ex.check_q_sample(lambda x0, t, n, ab: forward(x0, t, n, ab.float()))  # float32 is fine too
    with pytest.raises(ExerciseError, match="one step's alpha_t"):  # the notebook's schedule.alphas, not alpha_bars
        alphas = noise_schedule("cosine", 1000).alphas
        ex.check_q_sample(lambda x0, t, n, ab: forward(x0, t, n, alphas))
    with pytest.raises(ExerciseError, match="one step's alpha_t"):  # the same schedule's alphas
        alphas = noise_schedule("cosine", 100).alphas
        ex.check_q_sample(lambda x0, t, n, ab: forward(x0, t, n, alphas))
    with pytest.raises(ExerciseError, match="standard deviation"):
        ex.check_q_sample(lambda x0, t, n, ab: forward(x0, t, n, ab, noise_scale=keep))
    with pytest.raises(ExerciseError, match="should be its square root"):
        ex.check_q_sample(lambda x0, t, n, ab: forward(x0, t, n, ab, signal=keep))
    with pytest.raises(ExerciseError, match="Each sample has its own t"):  # one t for the whole batch
        ex.check_q_sample(lambda x0, t, n, ab: forward(x0, t[:1].expand(len(t)), n, ab))
    with pytest.raises(ExerciseError, match="view"):  # (B,) against (B, C, H, W): a broadcasting error
        ex.check_q_sample(lambda x0, t, n, ab: ab[t].sqrt() * x0 + (1 - ab[t]).sqrt() * n)
    with pytest.raises(ExerciseError, match="one dimension too many"):
        ex.check_q_sample(lambda x0, t, n, ab: ab[t].sqrt().view(-1, 1, 1, 1, 1) * x0
                          + (1 - ab[t]).sqrt().view(-1, 1, 1, 1, 1) * n)
    with pytest.raises(ExerciseError, match="swapped"):
        ex.check_q_sample(lambda x0, t, n, ab: forward(n, t, x0, ab))
    with pytest.raises(ExerciseError, match="yours is"):  # anything else: the coefficients, side by side
        ex.check_q_sample(lambda x0, t, n, ab: forward(x0, t, n, ab) + 0.1 * n)
    with pytest.raises(ExerciseError, match="Not done yet"):
        ex.check_q_sample(not_done)


def ddim(x_t, eps, ab_t, ab_prev, second=None):
    x0_hat = (x_t - math.sqrt(1 - ab_t) * eps) / math.sqrt(ab_t)
    return math.sqrt(ab_prev) * x0_hat + math.sqrt(1 - (ab_prev if second is None else second)) * eps


def test_ddim_step_checker(capsys):
    ex.check_ddim_step(ddim)
    assert capsys.readouterr().out.startswith("Correct:")
    with pytest.raises(ExerciseError, match="sqrt\\(ab_prev\\) x0_hat only"):
        ex.check_ddim_step(lambda x, e, a, p: ddim(x, e, a, p, second=1.0))
    with pytest.raises(ExerciseError, match="noise term uses ab_t"):
        ex.check_ddim_step(lambda x, e, a, p: ddim(x, e, a, p, second=a))
    with pytest.raises(ExerciseError, match="ab_t and ab_prev are swapped"):
        ex.check_ddim_step(lambda x, e, a, p: ddim(x, e, p, a))
    with pytest.raises(ExerciseError, match="x_t and eps_hat are swapped"):
        ex.check_ddim_step(lambda x, e, a, p: ddim(e, x, a, p))
    with pytest.raises(ExerciseError, match="last step"):  # right, except that it never returns x0_hat
        ex.check_ddim_step(lambda x, e, a, p: ddim(x, e, a, min(p, 0.99)))
    with pytest.raises(ExerciseError, match="math.sqrt"):  # torch.sqrt on a Python float
        ex.check_ddim_step(lambda x, e, a, p: torch.sqrt(p) * x)
    with pytest.raises(ExerciseError, match="Not done yet"):
        ex.check_ddim_step(not_done)


def test_guidance_checker(capsys):
    ex.check_guidance(lambda c, u, s: u + s * (c - u))
    out = capsys.readouterr().out
    assert out.startswith("Correct:") and "s = 1 gives the conditional" in out
    with pytest.raises(ExerciseError, match="swapped"):
        ex.check_guidance(lambda c, u, s: c + s * (u - c))
    with pytest.raises(ExerciseError, match="w = s - 1"):  # Ho & Salimans' form with w = s
        ex.check_guidance(lambda c, u, s: (1 + s) * c - s * u)
    with pytest.raises(ExerciseError, match="whatever the scale"):
        ex.check_guidance(lambda c, u, s: c)
    with pytest.raises(ExerciseError, match="For s = 0.0"):
        ex.check_guidance(lambda c, u, s: s * (c - u))
    with pytest.raises(ExerciseError, match="Not done yet"):
        ex.check_guidance(not_done)
