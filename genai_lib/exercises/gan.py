"""Checkers for chapter 02 (GANs)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from genai_lib.exercises import call, expect, passed


def check_smoothed_optimal_discriminator(
    d_star_fn: Callable[[Tensor, Tensor, float], Tensor],
) -> None:
    """``d_star_fn(log_p_data, log_p_g, real_label)``: the best discriminator when real samples
    are labelled ``real_label`` < 1 and fakes 0 (one-sided label smoothing), elementwise."""
    log_pd = torch.tensor([-1.0, -2.0, -0.5, -3.0, -1.2, -7.0])
    log_pg = torch.tensor([-2.0, -1.0, -0.5, -0.1, -4.0, -7.0])
    pd, pg = log_pd.exp(), log_pg.exp()
    for alpha in (0.9, 0.7):
        got = call(d_star_fn, log_pd, log_pg, alpha)
        expect(isinstance(got, Tensor), f"Return a tensor; got {type(got).__name__}.")
        expect(
            got.shape == log_pd.shape,
            f"Work elementwise: for inputs of shape {tuple(log_pd.shape)} return the same "
            f"shape; got {tuple(got.shape)}.",
        )
        want = alpha * pd / (pd + pg)
        expect(
            not torch.allclose(got, pd / (pd + pg), atol=1e-5),
            "That is D* without smoothing, p_data / (p_data + p_g). With the real samples "
            "labelled real_label, the real half of the loss is real_label log D(x) + "
            "(1 - real_label) log(1 - D(x)): redo the pointwise maximisation with it.",
        )
        expect(
            not torch.allclose(got, (alpha * pd + (1 - alpha) * pg) / (pd + pg), atol=1e-5),
            "You smoothed both labels (fakes labelled 1 - real_label). One-sided smoothing "
            "keeps the fakes' label at 0; only the real samples get real_label.",
        )
        expect(
            not torch.allclose(got, alpha * pd / (alpha * pd + pg), atol=1e-5),
            "The denominator is off. Pointwise you maximise a log y + b log(1 - y) with "
            "a = real_label p_data and b = (1 - real_label) p_data + p_g, so y = a / (a + b): "
            "a + b is p_data + p_g, not real_label p_data + p_g.",
        )
        expect(
            torch.allclose(got, want, atol=1e-5),
            f"Not the maximiser yet (real_label = {alpha}): yours {got.tolist()}, expected "
            f"{want.tolist()}. Maximise a log y + b log(1 - y) pointwise, as in section 1.",
        )
    far_pd, far_pg = (
        torch.tensor([-1000.0, -1002.0, -900.0]),
        torch.tensor([-1001.0, -1000.0, -1200.0]),
    )
    far = call(d_star_fn, far_pd, far_pg, 0.9)
    expect(
        bool(torch.isfinite(far).all()),
        f"At log-densities around -1000 your answer is {far.tolist()}: exp underflows to 0 and "
        "you divide 0 by 0. Write it with the difference of the logs: p_data / (p_data + p_g) = "
        "sigmoid(log p_data - log p_g).",
    )
    expect(
        torch.allclose(far, 0.9 * torch.sigmoid(far_pd - far_pg), atol=1e-6),
        f"Finite in the tails, but not right there: yours {far.tolist()}, expected "
        f"{(0.9 * torch.sigmoid(far_pd - far_pg)).tolist()}.",
    )
    passed(
        "D* = real_label p_data / (p_data + p_g) = real_label sigmoid(log p_data - log p_g). "
        "It never exceeds real_label: the smoothed discriminator is never sure a sample is "
        "real, and where p_g = 0 its logit stays finite, log(real_label / (1 - real_label)), "
        "instead of running off to infinity."
    )


def check_r1_penalty(penalty_fn: Callable[[nn.Module, Tensor], Tensor]) -> None:
    """``penalty_fn(critic, real)``: the R1 penalty E_real[||grad_x critic(x)||^2], a scalar that
    backpropagates into the critic's weights."""
    torch.manual_seed(0)
    linear = nn.Linear(3, 1)  # f(x) = w . x + b: its gradient is w at every x
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[0.6, -1.2, 2.0]]))
    critic = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1))
    real = torch.randn(32, 3)
    w_norm2 = linear.weight.pow(2).sum().item()  # 5.8

    got = call(penalty_fn, linear, real.clone())
    expect(isinstance(got, Tensor), f"Return a tensor; got {type(got).__name__}.")
    expect(
        got.numel() == 1,
        f"Return one number, the mean over the batch; got shape {tuple(got.shape)}.",
    )
    value = got.item()
    w_norm = math.sqrt(w_norm2)
    expect(
        abs(value - (w_norm - 1) ** 2) > 1e-3,
        "That is WGAN-GP's penalty, (||grad|| - 1)^2, which pulls the gradient norm towards 1. "
        "R1 pulls it towards 0 on the real data: ||grad_x D(x)||^2.",
    )
    expect(
        abs(value - w_norm) > 1e-3,
        f"For f(x) = w . x + b your penalty is {value:.4f} = ||w||: square the norm.",
    )
    expect(
        abs(value - len(real) * w_norm2) > 1e-2,
        f"For f(x) = w . x + b your penalty is {value:.2f}, {len(real)} times ||w||^2 = "
        f"{w_norm2:.2f}: you took the norm of the whole (batch, features) gradient. Take one "
        "norm per sample (over dim 1), square it, then average over the batch.",
    )
    expect(
        abs(value - w_norm2) < 1e-4,
        f"For f(x) = w . x + b the gradient is w at every x, so R1 = ||w||^2 = {w_norm2:.4f}; "
        f"yours {value:.4f}. Differentiate the critic's scores with respect to its *input*, "
        "torch.autograd.grad(critic(x).sum(), x), not with respect to its weights.",
    )

    x = real.clone().requires_grad_(True)
    (grads,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    want = grads.pow(2).sum(1).mean()
    critic.zero_grad()
    got = call(penalty_fn, critic, real.clone())
    expect(
        abs(got.item() - want.item()) < 1e-5 * max(1.0, want.item()),
        f"On a small tanh network your penalty is {got.item():.6f}, expected {want.item():.6f}.",
    )
    expect(
        got.requires_grad,
        "Your penalty has no graph back to the critic's weights, so adding it to the loss "
        "changes nothing: the critic is never pushed to be smooth. Pass create_graph=True to "
        "torch.autograd.grad, so that the gradient itself can be differentiated.",
    )
    got.backward()
    first = critic[0].weight.grad
    (want_grad,) = torch.autograd.grad(want, critic[0].weight)
    expect(
        first is not None and torch.allclose(first, want_grad, atol=1e-5),
        "Backpropagating your penalty does not give its gradient with respect to the critic's "
        "first layer. Use create_graph=True, and do not detach the input's gradient.",
    )
    passed(
        f"R1 = ||w||^2 = {w_norm2:.2f} for a linear critic, and on a tanh network your penalty "
        "matches autograd and backpropagates into the weights. Unlike WGAN-GP's penalty it "
        "wants a flat discriminator on the real data: there, at the optimum, nothing is left "
        "to push the generator."
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
