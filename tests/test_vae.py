"""The VAE: its math (KL, log-densities, reparameterisation, ELBO and IWAE bounds) and its networks.

Statistical tests state their tolerance in standard errors (SE) of a Monte
Carlo mean. Every random draw is seeded, so a run is repeatable; the
tolerances say how unlikely a failure would be for a correct implementation
under a fresh seed. Everything runs on the CPU in a few seconds.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn
from torch.distributions import Bernoulli, Normal, kl_divergence

from genai_lib import seed_everything
from genai_lib.data import binarize, load_digits
from genai_lib.losses import (
    bernoulli_log_likelihood,
    elbo,
    gaussian_kl,
    gaussian_log_prob,
    iwae_bound,
    reparameterize,
    standard_normal_log_prob,
    vae_loss,
)
from genai_lib.models import VAE
from genai_lib.train import History, fit


def mean_and_se(values: Tensor) -> tuple[float, float]:
    """The mean of i.i.d. values ``(n,)`` and its standard error, std / sqrt(n)."""
    return values.mean().item(), (values.std() / math.sqrt(len(values))).item()


# ---------------------------------------------------------------- KL divergence


def kl_cases() -> list[tuple[Tensor, Tensor]]:
    """(mu, logvar) pairs ``(D,)`` in float64: hand-picked, then random with sigma from 0.37 to 2.7."""
    # the variance alone
    cases = [
        (torch.tensor([1.5, -0.7, 0.3, 0.0]), torch.tensor([-1.2, 0.8, 0.0, -0.1])),
        (torch.tensor([3.0, 0.0]), torch.tensor([0.0, 0.0])),  # the mean alone: KL = 9/2
        (torch.tensor([0.0, 0.0]), torch.tensor([1.5, -1.5])),
    ]
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        cases.append((2 * torch.randn(4, generator=g), 4 * torch.rand(4, generator=g) - 2))
    return [(mu.double(), logvar.double()) for mu, logvar in cases]


@pytest.mark.parametrize("case", range(len(kl_cases())))
def test_gaussian_kl_matches_a_monte_carlo_estimate(case):
    """KL(q || p) = E_q[log q(z) - log p(z)]: the closed form must agree with the sample average.

    With n = 200,000 samples the sample mean is Gaussian to a very good
    approximation (central limit theorem), so a correct closed form lies
    farther than 5 standard errors from it with probability below 1e-6.
    The log-densities come from torch.distributions, not from genai_lib.
    """
    mu, logvar = kl_cases()[case]
    q, p = Normal(mu, (0.5 * logvar).exp()), Normal(torch.zeros_like(mu), torch.ones_like(mu))
    torch.manual_seed(case)
    z = q.sample((200_000,))  # (n, D)
    log_ratio = q.log_prob(z).sum(-1) - p.log_prob(z).sum(-1)  # (n,) nats
    estimate, se = mean_and_se(log_ratio)
    closed_form = gaussian_kl(mu, logvar).item()
    assert abs(closed_form - estimate) < 5 * se, (closed_form, estimate, se)


def test_gaussian_kl_matches_torch_distributions_and_keeps_batch_shape():
    """Same formula, two implementations, float64: they agree to rounding (torch's default tolerance)."""
    g = torch.Generator().manual_seed(1)
    mu = torch.randn(3, 5, 6, generator=g, dtype=torch.float64)
    logvar = torch.randn(3, 5, 6, generator=g, dtype=torch.float64)
    kl = gaussian_kl(mu, logvar)
    assert kl.shape == (3, 5)
    expected = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(kl, expected)


def test_gaussian_kl_is_zero_exactly_at_the_prior_and_positive_elsewhere():
    assert torch.equal(gaussian_kl(torch.zeros(4, 7), torch.zeros(4, 7)), torch.zeros(4))
    g = torch.Generator().manual_seed(2)
    mu = 3 * torch.randn(10_000, 5, generator=g)
    logvar = 10 * torch.rand(10_000, 5, generator=g) - 5  # sigma from 0.08 to 12
    assert (gaussian_kl(mu, logvar) > 0).all()


# ---------------------------------------------------------------- log-densities


def test_gaussian_log_prob_matches_torch_distributions_with_broadcasting():
    """z of shape (S, N, D) against a posterior (N, D): the shapes iwae_bound uses."""
    g = torch.Generator().manual_seed(3)
    z = 2 * torch.randn(7, 5, 4, generator=g, dtype=torch.float64)
    mu = torch.randn(5, 4, generator=g, dtype=torch.float64)
    logvar = torch.randn(5, 4, generator=g, dtype=torch.float64)
    log_q = gaussian_log_prob(z, mu, logvar)
    assert log_q.shape == (7, 5)
    torch.testing.assert_close(log_q, Normal(mu, (0.5 * logvar).exp()).log_prob(z).sum(-1))
    torch.testing.assert_close(standard_normal_log_prob(z), Normal(0.0, 1.0).log_prob(z).sum(-1))


def test_bernoulli_log_likelihood_matches_torch_distributions():
    """Binary images (N, C, H, W) under logits (S, N, C, H, W): summed over pixels -> (S, N).

    Logits up to about +-30 check that it stays finite and exact where
    sigmoid(logits) rounds to 0 or 1.
    """
    g = torch.Generator().manual_seed(4)
    logits = 10 * torch.randn(3, 4, 2, 5, 6, generator=g, dtype=torch.float64)
    x = torch.randint(0, 2, (4, 2, 5, 6), generator=g).double()
    log_lik = bernoulli_log_likelihood(logits, x)
    assert log_lik.shape == (3, 4)
    expected = Bernoulli(logits=logits).log_prob(x.expand_as(logits)).sum((-3, -2, -1))
    torch.testing.assert_close(log_lik, expected)
    assert (log_lik <= 0).all()  # a probability of a discrete outcome is at most 1


# ---------------------------------------------------------------- reparameterisation


def test_reparameterize_draws_from_the_right_gaussian():
    """Sample mean and variance of 200,000 draws, each within 5 standard errors.

    SE of the mean: sigma / sqrt(n). SE of the sample variance of Gaussian
    draws: sigma^2 sqrt(2 / (n - 1)).
    """
    mu = torch.tensor([[0.5, -2.0, 1.0]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, -1.5, 1.2]], dtype=torch.float64)
    torch.manual_seed(5)
    n = 200_000
    z = reparameterize(mu, logvar, n_samples=n)
    assert z.shape == (n, 1, 3) and z.dtype == torch.float64
    var = logvar.exp()
    assert ((z.mean(0) - mu).abs() < 5 * (var / n).sqrt()).all(), (z.mean(0), mu)
    assert ((z.var(0) - var).abs() < 5 * var * math.sqrt(2 / (n - 1))).all(), (z.var(0), var)


def test_reparameterize_shapes_and_gradients():
    """z = mu + exp(logvar / 2) eps, so dz/dmu = 1 and dz/dlogvar = (z - mu) / 2, exactly."""
    mu = torch.randn(4, 3, requires_grad=True)
    logvar = torch.randn(4, 3, requires_grad=True)
    z = reparameterize(mu, logvar)
    assert z.shape == (4, 3)
    z.sum().backward()
    torch.testing.assert_close(mu.grad, torch.ones(4, 3))
    torch.testing.assert_close(logvar.grad, 0.5 * (z - mu).detach())

    mu.grad, logvar.grad = None, None
    z = reparameterize(mu, logvar, n_samples=6)
    assert z.shape == (6, 4, 3)
    z.sum().backward()
    torch.testing.assert_close(mu.grad, torch.full((4, 3), 6.0))
    torch.testing.assert_close(logvar.grad, 0.5 * (z - mu).detach().sum(0))


# ---------------------------------------------------------------- bounds on log p(x)


class ExactPosterior(nn.Module):
    """A model whose q(z|x) is its exact posterior, so every bound equals log p(x) for every sample.

    The decoder ignores z, so p(z|x) = p(z) = N(0, I), and the encoder returns
    exactly that. Then every importance weight p(x, z) / q(z|x) equals p(x),
    and log p(x) = log p(x | any z) is known in closed form. Float64 throughout.
    """

    latent_dim = 3

    def __init__(self, logits: Tensor):
        super().__init__()
        self.logits = logits  # (C, H, W)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        zeros = torch.zeros(len(x), self.latent_dim, dtype=torch.float64)
        return zeros, zeros.clone()

    def decode(self, z: Tensor) -> Tensor:
        return self.logits.expand(len(z), *self.logits.shape)


def test_bounds_are_exact_when_q_is_the_posterior():
    """ELBO = IWAE_K = log p(x) for every K, up to float64 rounding (1e-9 nats on values near -40).

    K = 250 with chunk = 100 spans three chunks, the last one partial. A
    missing or wrong -log K, or a chunk drawn at the wrong size, moves the
    result by log(K) or more.
    """
    g = torch.Generator().manual_seed(6)
    logits = 2 * torch.randn(1, 8, 8, generator=g, dtype=torch.float64)
    x = torch.randint(0, 2, (5, 1, 8, 8), generator=g).double()
    model = ExactPosterior(logits)
    log_px = bernoulli_log_likelihood(logits.expand_as(x), x)  # (N,)
    torch.manual_seed(6)
    torch.testing.assert_close(elbo(model, x)["elbo"], log_px, atol=1e-9, rtol=0)
    for k in (1, 7, 250):
        torch.testing.assert_close(iwae_bound(model, x, k, chunk=100), log_px, atol=1e-9, rtol=0)


@pytest.fixture(scope="module")
def digits() -> tuple[Tensor, Tensor]:
    """Training images in [0, 1] (1438, 1, 8, 8) and held-out images binarised once (359, 1, 8, 8)."""
    data = load_digits()
    return data.train_images, binarize(data.val_images, torch.Generator().manual_seed(1))


def train_vae(x_train: Tensor, latent_dim: int, steps: int) -> tuple[VAE, History]:
    """A small mlp VAE trained with vae_loss on dynamically binarised images, on the CPU."""
    seed_everything(0)
    model = VAE((1, 8, 8), latent_dim=latent_dim, arch="mlp")
    history = fit(
        model,
        lambda x: vae_loss(model, binarize(x)),
        x_train,
        steps=steps,
        batch_size=64,
        lr=3e-3,
        log_every=20,
        device="cpu",
        progress=False,
    )
    return model, history


@pytest.fixture(scope="module")
def trained(digits):
    """An 8-dimensional VAE after 400 steps (about 18 epochs), and its training history."""
    return train_vae(digits[0], latent_dim=8, steps=400)


def test_vae_loss_falls_and_the_vae_beats_every_model_that_ignores_z(trained, digits):
    """Training lowers the loss, and the held-out ELBO beats the best latent-free model.

    A decoder that ignores z can at best give each pixel its own ink
    probability; the best such probabilities are the training set's mean
    pixel values. Beating that baseline (about 26.8 nats per image here) on
    held-out images shows the decoder uses z. The margin, 1 nat, is about
    5 standard errors of the held-out mean (per-image spread about 3.9 nats,
    sampling noise included, over 359 images: SE 0.21 nats), and well under
    the measured gap of about 3.1 nats (23.7 against 26.8).
    """
    model, history = trained
    x_train, x_val = digits
    losses = history.get("loss")[1]  # nats per image, means over 20 steps
    assert losses[-1] < losses[0] - 5, losses  # measured: 31.4 -> 23.5
    assert {"loss", "recon_nll", "kl"} <= history.keys()

    ink = x_train.mean(0).clamp(1e-3, 1 - 1e-3)  # (1, 8, 8)
    baseline = -bernoulli_log_likelihood(torch.logit(ink).expand_as(x_val), x_val).mean().item()
    torch.manual_seed(7)
    with torch.no_grad():
        neg_elbo = -elbo(model, x_val)["elbo"].mean().item()
    assert neg_elbo < baseline - 1.0, (neg_elbo, baseline)


def test_elbo_below_iwae_below_iwae_with_more_samples(trained, digits):
    """E[ELBO] <= E[IWAE_5] <= E[IWAE_50]: each gap is positive, by more than 3 standard errors.

    Each held-out image is scored 8 times and its scores averaged, then the
    paired differences are averaged over the 359 images. The SE is that of
    the mean over images. The true gaps are positive unless q(z|x) is the
    exact posterior; a correct implementation shows them (measured: 0.19
    and 0.064 nats, at 5.6 and 8.8 SE), and an IWAE that averaged log-weights
    instead of weights (the ELBO again) would fail.
    """
    model, _ = trained
    x_val = digits[1]
    repeats = 8
    x = x_val.repeat(repeats, 1, 1, 1)
    torch.manual_seed(8)
    with torch.no_grad():
        scores = {
            "elbo": elbo(model, x)["elbo"],
            "iwae5": iwae_bound(model, x, 5),
            "iwae50": iwae_bound(model, x, 50),
        }
    # (N,) nats
    per_image = {name: s.view(repeats, len(x_val)).mean(0) for name, s in scores.items()}
    for low, high in [("elbo", "iwae5"), ("iwae5", "iwae50")]:
        gap, se = mean_and_se(per_image[high] - per_image[low])
        assert gap > 3 * se, f"{high} - {low} = {gap:.3f} nats, SE {se:.3f}"


def test_iwae_with_one_sample_is_the_elbo_in_expectation(trained, digits):
    """IWAE_1 uses a one-sample Monte Carlo KL where the ELBO uses the exact KL: same mean.

    50 scores per image; the mean difference must be within 4 SE of zero
    (a false alarm has probability below 1e-4). The SE is about 0.015 nats,
    so an error of 0.1 nats or more would show.
    """
    model, _ = trained
    x_val = digits[1]
    repeats = 50
    x = x_val.repeat(repeats, 1, 1, 1)
    torch.manual_seed(9)
    with torch.no_grad():
        diff = iwae_bound(model, x, 1) - elbo(model, x)["elbo"]
    mean, se = mean_and_se(diff.view(repeats, len(x_val)).mean(0))
    assert abs(mean) < 4 * se, (mean, se)
    assert se < 0.03, se


@pytest.fixture(scope="module")
def one_d_model_and_log_px(digits) -> tuple[VAE, Tensor, Tensor]:
    """A VAE with a 1-D latent, 150 held-out images and their exact log p(x), ``(N,)``.

    With a 1-D latent, log p(x) = log integral p(x|z) N(z; 0, 1) dz is a sum
    over a fine grid. The grid spans [-8, 8] (prior mass outside: 1e-15) in
    steps of 0.002, much finer than the posteriors (standard deviations 0.15
    to 0.65); halving the step changes log p(x) by under 1e-5 nats.
    """
    model, _ = train_vae(digits[0], latent_dim=1, steps=300)
    x = digits[1][:150]
    with torch.no_grad():
        grid = torch.linspace(-8, 8, 8001)  # (G,)
        logits = model.decode(grid[:, None])  # (G, 1, 8, 8)
        # (G, N)
        log_lik = bernoulli_log_likelihood(logits[:, None].expand(-1, len(x), -1, -1, -1), x)
        log_px = torch.logsumexp(
            log_lik + standard_normal_log_prob(grid[:, None, None]), dim=0
        ) + math.log(grid[1] - grid[0])  # (N,)
    return model, x, log_px


def test_iwae_approaches_log_px_computed_by_quadrature(one_d_model_and_log_px):
    """Averaged over 150 held-out images, against log p(x) by quadrature.

    The ELBO lies below log p(x) (by more than 3 SE), IWAE_1000 does not lie
    above it (by more than 3 SE), and IWAE_1000 closes at least 80% of the
    ELBO's gap (measured: an ELBO gap of 0.26 +- 0.05 nats, and 0.004 +- 0.006
    left). A missing -log K would put IWAE_1000 log(1000) = 6.9 nats above
    log p(x).
    """
    model, x, log_px = one_d_model_and_log_px
    with torch.no_grad():
        torch.manual_seed(10)
        repeats = 20
        elbos = elbo(model, x.repeat(repeats, 1, 1, 1))["elbo"].view(repeats, len(x)).mean(0)
        iwae = iwae_bound(model, x, 1000, chunk=500)

    elbo_gap, elbo_se = mean_and_se(log_px - elbos)
    iwae_gap, iwae_se = mean_and_se(log_px - iwae)
    assert elbo_gap > 3 * elbo_se, (elbo_gap, elbo_se)
    assert iwae_gap > -3 * iwae_se, (iwae_gap, iwae_se)
    assert iwae_gap < 0.2 * elbo_gap, (iwae_gap, elbo_gap)


def test_beta_above_1_is_a_looser_bound_and_below_1_is_no_bound(one_d_model_and_log_px):
    """E[log p(x|z)] - beta KL against the exact log p(x), averaged over 150 held-out images.

    Since KL >= 0, beta = 2 gives a lower bound below the ELBO: it lies below
    log p(x) by more than the ELBO does (each by more than 3 SE). beta = 0.25
    is no bound: for this model it lies *above* log p(x) (by more than 3 SE;
    measured: 0.49 +- 0.07 nats above, as 0.75 of its KL of 0.98 nats
    outweighs the ELBO's gap of 0.24). A docstring or code that called every
    beta a bound, or that applied beta the wrong way round, fails one of them.
    """
    model, x, log_px = one_d_model_and_log_px
    repeats = 20
    objective = {}
    with torch.no_grad():
        for beta in (0.25, 1.0, 2.0):
            torch.manual_seed(12)  # the same z draws for every beta
            terms = elbo(model, x.repeat(repeats, 1, 1, 1), beta=beta)["elbo"]
            objective[beta] = terms.view(repeats, len(x)).mean(0)
    looser_gap, looser_se = mean_and_se(objective[1.0] - objective[2.0])
    below_gap, below_se = mean_and_se(log_px - objective[2.0])
    above_gap, above_se = mean_and_se(objective[0.25] - log_px)
    assert looser_gap > 3 * looser_se, (looser_gap, looser_se)
    assert below_gap > 3 * below_se, (below_gap, below_se)
    assert above_gap > 3 * above_se, (above_gap, above_se)


# ---------------------------------------------------------------- the networks


@pytest.mark.parametrize("arch", VAE.ARCHS)
@pytest.mark.parametrize("image_shape", [(1, 8, 8), (1, 28, 28)])
def test_shapes(arch, image_shape):
    torch.manual_seed(11)
    n, latent_dim = 5, 6
    model = VAE(image_shape, latent_dim=latent_dim, arch=arch)
    x = torch.rand(n, *image_shape).round()
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (n, latent_dim)
    assert model.decode(mu).shape == (n, *image_shape)
    assert model(x).shape == (n, *image_shape)
    samples = model.sample(3)
    assert samples.shape == (3, *image_shape)
    assert samples.min() >= 0 and samples.max() <= 1
    terms = elbo(model, x)
    assert all(terms[key].shape == (n,) for key in ("elbo", "recon", "kl"))
    assert iwae_bound(model, x, k=3).shape == (n,)


def test_sample_is_repeatable_with_a_generator():
    model = VAE((1, 8, 8), latent_dim=4)
    first = model.sample(4, generator=torch.Generator().manual_seed(0))
    again = model.sample(4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(first, again)


def test_a_flattened_batch_is_refused_with_advice():
    model = VAE((1, 8, 8), latent_dim=8)
    with pytest.raises(
        ValueError, match=r"built for images of shape \(N, 1, 8, 8\); got \(5, 64\)"
    ) as info:
        model.encode(torch.rand(5, 64))
    assert "x.view(-1, *model.image_shape)" in str(info.value)


def test_the_wrong_image_size_is_refused_with_advice():
    model = VAE((1, 8, 8), latent_dim=8)
    with pytest.raises(ValueError, match=r"got \(5, 1, 28, 28\).*image_shape=\(1, 28, 28\)"):
        model.encode(torch.rand(5, 1, 28, 28))


def test_the_wrong_latent_size_is_refused():
    model = VAE((1, 8, 8), latent_dim=8)
    with pytest.raises(ValueError, match=r"latent codes of size 8; got shape \(5, 3\)"):
        model.decode(torch.randn(5, 3))


def test_the_conv_vae_needs_sides_divisible_by_4():
    with pytest.raises(ValueError, match=r"divisible by 4; got 10x10"):
        VAE((1, 10, 10), arch="conv")


def test_an_unknown_arch_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"Unknown arch 'rnn'.*'mlp', 'conv', 'classic'"):
        VAE(arch="rnn")


@pytest.mark.parametrize(
    "bound",
    [lambda m, x: elbo(m, x), lambda m, x: iwae_bound(m, x, k=2)],
    ids=["elbo", "iwae_bound"],
)
def test_bounds_refuse_a_flat_batch(bound):
    model = VAE((1, 8, 8), latent_dim=8)
    with pytest.raises(
        ValueError, match=r"Expected a batch of images \(N, C, H, W\); got shape \(5, 64\)"
    ):
        bound(model, torch.rand(5, 64))


def test_pixels_outside_0_1_are_refused_with_the_fix():
    """0..255 pixels gave a loss of 1e11 nats without a word; now the error says to divide by 255."""
    torch.manual_seed(0)
    model = VAE(image_shape=(1, 8, 8), latent_dim=2, arch="mlp")
    with pytest.raises(ValueError, match=r"pixel values in \[0, 1\].*Divide 0..255 images by 255"):
        vae_loss(model, torch.randint(0, 256, (4, 1, 8, 8)).float())
    vae_loss(model, torch.rand(4, 1, 8, 8).round())  # binary pixels: fine


# ---------------------------------------------------------------- bad inputs


def small_vae() -> VAE:
    torch.manual_seed(0)
    return VAE((1, 8, 8), latent_dim=2, hidden=(16, 8))


BINARY = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0)).round()


@pytest.mark.parametrize("bound", ["elbo", "iwae"])
@pytest.mark.parametrize(
    "x, named",
    [
        (BINARY * 255, ["[0, 1]", "255"]),
        (BINARY * 2 - 1, ["[0, 1]", "binarize"]),
        (torch.full((4, 1, 8, 8), float("nan")), ["[0, 1]", "nan"]),
        (BINARY.double(), ["float64", "float32", "x.float()"]),
        (BINARY.to(torch.uint8), ["uint8", "255"]),
    ],
    ids=["0..255", "-1..1", "nan", "float64", "uint8"],
)
def test_bad_inputs_are_refused_with_the_fix_named(bound, x, named):
    model = small_vae()
    with pytest.raises(ValueError) as err:
        elbo(model, x) if bound == "elbo" else iwae_bound(model, x, 3)
    for part in named:
        assert part in str(err.value), (part, str(err.value))


def test_iwae_sample_counts_are_checked():
    model = small_vae()
    with pytest.raises(ValueError, match="k must be at least 1; got 0"):
        iwae_bound(model, BINARY, 0)
    with pytest.raises(ValueError, match="chunk must be at least 1; got 0"):
        iwae_bound(model, BINARY, 5, chunk=0)
