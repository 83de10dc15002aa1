"""Checkers for chapter 02 (GANs)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from genai_lib import losses
from genai_lib.exercises import call, expect, passed


def check_optimal_discriminator(d_star_fn: Callable[[Tensor, Tensor], Tensor]) -> None:
    """``d_star_fn(log_p_data, log_p_g)``: D*(x) = p_data / (p_data + p_g) from log-densities, elementwise."""
    log_pd = torch.tensor([-1.0, -2.0, -0.5, -3.0, -1.2])
    log_pg = torch.tensor([-2.0, -1.0, -0.5, -0.1, -4.0])
    got = call(d_star_fn, log_pd, log_pg)
    expect(isinstance(got, Tensor), f"Return a tensor; got {type(got).__name__}.")
    expect(
        got.shape == log_pd.shape,
        f"Work elementwise: for inputs of shape {tuple(log_pd.shape)} return the "
        f"same shape; got {tuple(got.shape)}.",
    )
    want = losses.optimal_discriminator(log_pd.exp(), log_pg.exp())
    expect(
        not torch.allclose(got, 1 - want, atol=1e-5),
        "You computed p_g / (p_data + p_g): the probability that x is *fake*. D(x) is the probability "
        "that x is real, so p_data goes in the numerator.",
    )
    expect(
        not torch.allclose(got, (log_pd - log_pg).exp(), atol=1e-5),
        "That is the density ratio p_data / p_g, which can exceed 1. D* divides by p_data + p_g.",
    )
    expect(
        bool(((got >= 0) & (got <= 1)).all()),
        f"D*(x) is a probability, between 0 and 1; got {got.tolist()}. Did you pass log-densities where "
        "densities belong? Exponentiate them, or better, work with their difference.",
    )
    expect(
        torch.allclose(got, want, atol=1e-5),
        f"Not equal to p_data / (p_data + p_g) yet: yours {got.tolist()}, expected {want.tolist()}.",
    )
    equal = call(d_star_fn, torch.tensor([-7.0]), torch.tensor([-7.0]))
    expect(
        torch.allclose(equal, torch.tensor([0.5])),
        "Where the two densities are equal, D* must be 1/2.",
    )
    # Far in the tails both densities underflow: exp(-1000) is 0 in float32, and 0 / 0 is nan.
    far_pd, far_pg = (
        torch.tensor([-1000.0, -1002.0, -900.0]),
        torch.tensor([-1001.0, -1000.0, -1200.0]),
    )
    far = call(d_star_fn, far_pd, far_pg)
    expect(
        bool(torch.isfinite(far).all()),
        f"At log-densities around -1000 your answer is {far.tolist()}: exp underflows to 0 and you divide "
        "0 by 0. Divide numerator and denominator by p_data: D* = 1 / (1 + p_g / p_data) = "
        "sigmoid(log p_data - log p_g), which needs only the difference of the logs.",
    )
    expect(
        torch.allclose(far, torch.sigmoid(far_pd - far_pg), atol=1e-6),
        f"Finite in the tails, but not right there: yours {far.tolist()}, expected "
        f"{torch.sigmoid(far_pd - far_pg).tolist()}. D* depends only on log p_data - log p_g.",
    )
    passed(
        "D* = sigmoid(log p_data - log p_g): right, and finite where both densities underflow. "
        "So the optimal logit is the log density ratio."
    )


def check_nonsaturating_loss(loss_fn: Callable[[Tensor], Tensor]) -> None:
    """``loss_fn(fake_logits)``: -E[log D(G(z))] from the discriminator's logits on fakes, a scalar in nats."""
    g = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(64, generator=g)
    got = call(loss_fn, logits.clone())
    expect(isinstance(got, Tensor), f"Return a tensor; got {type(got).__name__}.")
    expect(
        got.dim() == 0,
        f"Return one number, the mean over the batch: a scalar; got shape {tuple(got.shape)}.",
    )
    want = losses.generator_loss(logits, "nonsaturating")
    saturating = torch.log1p(-torch.sigmoid(logits)).mean()
    expect(
        not torch.isclose(got, saturating, atol=1e-4),
        "This is the saturating loss E[log(1 - D(G(z)))]. The non-saturating one is -E[log D(G(z))]: "
        "the generator trains towards the label *real*.",
    )
    expect(
        not torch.isclose(got, -want, atol=1e-4),
        "Right size, wrong sign: a loss to *minimise* is -E[log D(G(z))].",
    )
    expect(
        not torch.isclose(got, want * len(logits), rtol=1e-3),
        "You summed over the batch; average it (the library and fit() expect a mean).",
    )
    expect(
        torch.isclose(got, want, atol=1e-4, rtol=1e-4),
        f"Not equal to -E[log sigmoid(logit)] yet: yours {got.item():.4f}, expected {want.item():.4f} nats. "
        "The input is a logit, not a probability: apply the sigmoid (inside a stable formula).",
    )
    extreme = torch.tensor([-1000.0, -100.0, 0.0, 100.0, 1000.0], requires_grad=True)
    value = call(loss_fn, extreme)
    expect(
        bool(torch.isfinite(value)),
        f"At logits ±100 and ±1000 your loss is {value.item()}: sigmoid(-1000) rounds to 0 and log(0) = -inf. "
        "Use -log sigmoid(l) = softplus(-l) (F.softplus, or F.binary_cross_entropy_with_logits).",
    )
    (grad,) = torch.autograd.grad(value, extreme)
    want_grad = -(1 - torch.sigmoid(extreme.detach())) / len(extreme)  # d/dl of mean(softplus(-l))
    expect(
        bool(torch.isfinite(grad).all()),
        f"The loss is finite at extreme logits, but its gradient is not: {grad.tolist()}. "
        "Clamping the probability hides the problem; softplus(-l) has a clean gradient everywhere.",
    )
    expect(
        torch.allclose(grad, want_grad, atol=1e-6),
        f"Gradient at logits {extreme.detach().tolist()}: yours {grad.tolist()}, expected {want_grad.tolist()}. "
        "A clamp kills the gradient exactly where the generator needs it most (very negative logits).",
    )
    torch.testing.assert_close(
        value.detach(), losses.generator_loss(extreme.detach(), "nonsaturating")
    )
    passed(
        "your loss matches genai_lib.losses.generator_loss, and stays finite, with the full gradient of "
        "-1/N per sample, even at a logit of -1000."
    )


def check_jsd(jsd_fn: Callable[[Tensor, Tensor], Tensor]) -> None:
    """``jsd_fn(p, q)``: the Jensen-Shannon divergence in nats of probability vectors along the last dimension."""
    g = torch.Generator().manual_seed(0)
    p = torch.softmax(torch.randn(5, 6, generator=g, dtype=torch.float64), dim=-1)
    q = torch.softmax(torch.randn(5, 6, generator=g, dtype=torch.float64), dim=-1)
    got = call(jsd_fn, p, q)
    expect(isinstance(got, Tensor), f"Return a tensor; got {type(got).__name__}.")
    expect(
        got.shape == (5,),
        f"Sum over the last dimension (the outcomes): for inputs of shape (5, 6) return "
        f"shape (5,); got {tuple(got.shape)}.",
    )
    m = (p + q) / 2
    kl = lambda a, b: (a * (a / b).log()).sum(-1)  # noqa: E731  (no zeros in these p and q)
    want = 0.5 * kl(p, m) + 0.5 * kl(q, m)
    expect(
        not torch.allclose(got, kl(p, q), atol=1e-6),
        "That is KL(p || q). The JSD compares each distribution with the mixture m = (p + q) / 2.",
    )
    expect(
        not torch.allclose(got, 2 * want, atol=1e-6),
        "Twice the JSD: average the two KLs, JSD = 1/2 KL(p || m) + 1/2 KL(q || m).",
    )
    expect(
        not torch.allclose(got, want / math.log(2), atol=1e-6),
        "That is the JSD in bits (log base 2). Use the natural log, to get nats, like every loss in the course.",
    )
    expect(
        torch.allclose(got, want, atol=1e-6),
        f"Not the JSD yet: yours {got[:3].tolist()}, expected {want[:3].tolist()} nats.",
    )
    expect(
        torch.allclose(call(jsd_fn, q, p), got, atol=1e-9),
        "The JSD is symmetric, JSD(p, q) = JSD(q, p); yours is not.",
    )
    expect(
        torch.allclose(call(jsd_fn, p, p), torch.zeros(5, dtype=p.dtype), atol=1e-9),
        "JSD(p, p) must be 0.",
    )
    disjoint_p = torch.tensor([0.5, 0.5, 0.0, 0.0], dtype=torch.float64)
    disjoint_q = torch.tensor([0.0, 0.0, 0.3, 0.7], dtype=torch.float64)
    d = call(jsd_fn, disjoint_p, disjoint_q)
    expect(
        bool(torch.isfinite(d)),
        f"For distributions with disjoint supports your JSD is {d.item()}: a term 0 * log(0 / m) gives nan. "
        "By convention 0 log 0 = 0: leave out (torch.where) the outcomes where the probability is 0.",
    )
    expect(
        abs(d.item() - math.log(2)) < 1e-9,
        f"Disjoint supports must give the maximum, log 2 = {math.log(2):.4f} nats; yours {d.item():.4f}. "
        "That flat maximum is why a GAN generator far from the data gets no useful signal from the JSD.",
    )
    passed(
        f"your JSD matches the definition, is symmetric, 0 for equal distributions, and log 2 = "
        f"{math.log(2):.4f} nats for disjoint ones."
    )
