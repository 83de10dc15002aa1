"""GANs: the optimal discriminator and the JSD, loss conventions, the two-player step, networks, WGAN-GP."""

import math

import pytest
import torch
from torch import nn

from genai_lib import losses
from genai_lib.gan import gan_objectives, generate
from genai_lib.models.gan import (
    DCDiscriminator,
    DCGenerator,
    MLPDiscriminator,
    MLPGenerator,
    published_gan,
)
from genai_lib.train import TrainingDivergedError, fit

LOG4 = math.log(4.0)


def normal_pdf(x, mu, sigma):
    return torch.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))


def tiny_mlp_gan(seed=0, dim=2):
    torch.manual_seed(seed)
    return (
        MLPGenerator(latent_dim=3, out_shape=(dim,), hidden=(8,), output=None),
        MLPDiscriminator(in_shape=(dim,), hidden=(8,), dropout=0.0),
    )


def tiny_dc_gan(seed=0, n_classes=None):
    torch.manual_seed(seed)
    return (
        DCGenerator(latent_dim=4, image_shape=(1, 8, 8), channels=(8, 4), n_classes=n_classes),
        DCDiscriminator(image_shape=(1, 8, 8), channels=(4, 8), n_classes=n_classes),
    )


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def unchanged(model, before):
    return all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


FIT = dict(batch_size=16, progress=False, device="cpu", log_every=1)


# ---------------------------------------------------------------- the optimal discriminator


# Two 1-D densities on a grid: p_g is wider than p_data in both tails, so D* stays away from 1
# and log(1 - D*) is finite everywhere in float64.
X = torch.linspace(-12.0, 12.0, 24001, dtype=torch.float64)  # spacing 1e-3
P_DATA = normal_pdf(X, 0.0, 1.0)
P_G = normal_pdf(X, 1.0, 1.5)


# x = -8, -1, 0, 0.7, 2.5, 8
@pytest.mark.parametrize("i", [4000, 11000, 12000, 12700, 14500, 20000])
def test_the_optimal_discriminator_maximises_the_pointwise_objective(i):
    # At each x, D -> p_data log D + p_g log(1 - D) is strictly concave on (0, 1); the argmax over a
    # dense grid must lie within one grid spacing of D*, and D* must be at least as good as every grid point.
    d_star = losses.optimal_discriminator(P_DATA[i], P_G[i])
    d = torch.linspace(1e-6, 1 - 1e-6, 200_001, dtype=torch.float64)
    spacing = (d[1] - d[0]).item()
    values = P_DATA[i] * torch.log(d) + P_G[i] * torch.log1p(-d)
    best = d[values.argmax()]
    assert abs(best - d_star).item() <= spacing, (X[i].item(), best.item(), d_star.item())
    v_star = P_DATA[i] * torch.log(d_star) + P_G[i] * torch.log1p(-d_star)
    assert v_star >= values.max() - 1e-12 * values.max().abs()


def test_the_value_at_the_optimal_discriminator_is_minus_log4_plus_twice_the_jsd():
    # Quadrature is accurate here: the trapezoid rule on smooth, decaying densities integrates each to 1
    # within 1e-10 (checked). V(D*) = -log 4 + 2 JSD holds pointwise up to p log 2 terms, so the two sides
    # differ only by log 2 times those normalisation errors: 1e-8 is a generous bound.
    assert torch.trapezoid(P_DATA, X).item() == pytest.approx(1.0, abs=1e-10)
    assert torch.trapezoid(P_G, X).item() == pytest.approx(1.0, abs=1e-10)
    d_star = losses.optimal_discriminator(P_DATA, P_G)
    value = torch.trapezoid(P_DATA * torch.log(d_star) + P_G * torch.log1p(-d_star), X).item()
    m = (P_DATA + P_G) / 2
    jsd = 0.5 * torch.trapezoid(P_DATA * torch.log(P_DATA / m), X) + 0.5 * torch.trapezoid(
        P_G * torch.log(P_G / m), X
    )
    jsd = jsd.item()
    assert 0.01 < jsd < math.log(2)  # a non-trivial pair of densities; the JSD is bounded by log 2
    assert value == pytest.approx(-LOG4 + 2 * jsd, abs=1e-8)
    # Any other discriminator does worse, e.g. D = 1/2 everywhere, which scores exactly -log 4.
    assert value > -LOG4 + 0.02


@pytest.mark.parametrize("shift", [0.0, 0.5, 1.0, 2.0])
def test_optimal_value_for_uniforms_in_closed_form(shift):
    # p_data = U[0, 2], p_g = U[shift, shift + 2]: a fraction shift/2 of each mass is alone, where the
    # JSD collects log 2, so JSD = (shift/2) log 2 and V(D*) = -log 4 + shift log 2
    # (identical: -log 4; disjoint: 0). Midpoints of cells whose edges fall on the jumps make the
    # quadrature exact up to rounding (1e-12).
    h = 1e-3
    x = (torch.arange(4000, dtype=torch.float64) + 0.5) * h  # midpoints on [0, 4]
    p_data = ((x > 0) & (x < 2)).double() / 2
    p_g = ((x > shift) & (x < shift + 2)).double() / 2
    both = (p_data + p_g) > 0  # D* is 0/0 where neither has mass; the integrand is 0 there
    p_data, p_g = p_data[both], p_g[both]
    d_star = losses.optimal_discriminator(p_data, p_g)
    value = (torch.xlogy(p_data, d_star) + torch.xlogy(p_g, 1 - d_star)).sum().item() * h
    assert value == pytest.approx(-LOG4 + shift * math.log(2), abs=1e-12)


# ---------------------------------------------------------------- loss conventions


def test_discriminator_loss_is_small_when_right_and_large_when_wrong():
    big = torch.full((8,), 10.0, dtype=torch.float64)
    right = losses.discriminator_loss(big, -big).item()  # real -> D ~ 1, fake -> D ~ 0
    wrong = losses.discriminator_loss(-big, big).item()
    # Exactly 2 softplus(-10) = 9.1e-5 nats and 2 softplus(10) = 20.0001 nats (float64: rel 1e-9).
    assert right == pytest.approx(2 * math.log1p(math.exp(-10)), rel=1e-9)
    assert wrong == pytest.approx(2 * math.log1p(math.exp(10)), rel=1e-9)


def test_discriminator_loss_is_bce_with_real_one_and_fake_zero():
    # BCELoss on sigmoid outputs is the textbook form; with moderate logits in float64 both are exact
    # to rounding, so 1e-12.
    g = torch.Generator().manual_seed(0)
    real, fake = (torch.rand(32, generator=g, dtype=torch.float64) * 8 - 4 for _ in range(2))
    bce = nn.BCELoss()
    expected = bce(torch.sigmoid(real), torch.ones_like(real)) + bce(
        torch.sigmoid(fake), torch.zeros_like(fake)
    )
    torch.testing.assert_close(losses.discriminator_loss(real, fake), expected, rtol=0, atol=1e-12)


def test_generator_losses_match_their_formulas_and_fall_as_the_fake_logit_rises():
    logits = torch.linspace(-6, 6, 25, dtype=torch.float64)
    d = torch.sigmoid(logits)
    ns = torch.stack([losses.generator_loss(l[None], "nonsaturating") for l in logits])
    sat = torch.stack([losses.generator_loss(l[None], "saturating") for l in logits])
    torch.testing.assert_close(ns, -torch.log(d), rtol=0, atol=1e-12)  # -log D(G(z)): target "real"
    # log(1 - D(G(z))): the minimax form
    torch.testing.assert_close(sat, torch.log1p(-d), rtol=0, atol=1e-12)
    # Fooling the discriminator more (a larger fake logit) must lower both generator losses.
    assert (ns.diff() < 0).all() and (sat.diff() < 0).all()
    # the default
    assert losses.generator_loss(logits).item() == pytest.approx(ns.mean().item(), abs=1e-12)


def test_the_saturating_loss_has_no_gradient_when_the_discriminator_rejects_the_fakes():
    # At logit -10, D(G(z)) = 4.5e-5. d/dl log(1 - sigmoid(l)) = -sigmoid(l) = -4.5e-5: vanishing.
    # d/dl -log sigmoid(l) = sigmoid(l) - 1 = -0.99995: the non-saturating loss still pushes.
    grads = {}
    for kind in ("saturating", "nonsaturating"):
        logit = torch.tensor([-10.0], dtype=torch.float64, requires_grad=True)
        losses.generator_loss(logit, kind).backward()
        grads[kind] = logit.grad.item()
    s = 1 / (1 + math.exp(10))
    assert grads["saturating"] == pytest.approx(-s, rel=1e-9)
    assert grads["nonsaturating"] == pytest.approx(s - 1, rel=1e-9)
    assert abs(grads["saturating"]) < 1e-4 < 0.99 < abs(grads["nonsaturating"])


def test_an_unknown_generator_loss_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown generator loss 'minimax'"):
        losses.generator_loss(torch.zeros(3), "minimax")
    G, D = tiny_mlp_gan()
    with pytest.raises(ValueError, match="Unknown GAN loss"):
        gan_objectives(G, D, loss="hinge")


def test_losses_from_logits_stay_finite_where_log_of_sigmoid_does_not():
    huge = torch.tensor([100.0])
    # Naive two-step forms, in float32: sigmoid(-100) rounds to 0 and sigmoid(100) to 1, so log gives -inf
    # and the gradient is NaN. This is why every GAN loss takes logits.
    naive_logit = (-huge).clone().requires_grad_(True)
    naive = -torch.log(torch.sigmoid(naive_logit))
    naive.sum().backward()
    assert torch.isinf(naive).all() and torch.isnan(naive_logit.grad).all()
    assert torch.isinf(torch.log(1 - torch.sigmoid(huge))).all()

    cases = [
        (lambda l: losses.discriminator_loss(-l, l), 200.0),  # confidently wrong: 100 + 100 nats
        (lambda l: losses.discriminator_loss(l, -l), 0.0),
        (lambda l: losses.generator_loss(-l, "nonsaturating"), 100.0),
        (lambda l: losses.generator_loss(l, "saturating"), -100.0),
    ]
    for loss_of, expected in cases:
        logit = huge.clone().requires_grad_(True)
        value = loss_of(logit)
        value.backward()
        assert value.item() == pytest.approx(expected, abs=1e-4)
        assert torch.isfinite(logit.grad).all()


# ---------------------------------------------------------------- the two-player step


def test_the_discriminator_step_updates_only_the_discriminator():
    G, D = tiny_mlp_gan()
    g_before, d_before = snapshot(G), snapshot(D)
    disc, _ = gan_objectives(G, D, lr=1e-2)
    fit([disc], data=torch.randn(64, 2), steps=1, **FIT)
    assert unchanged(G, g_before)
    assert not unchanged(D, d_before)
    # Detached: the fakes were made without a graph, so no gradient ever reached G.
    assert all(p.grad is None for p in G.parameters())


def test_the_generator_step_updates_only_the_generator():
    G, D = tiny_mlp_gan()
    g_before, d_before = snapshot(G), snapshot(D)
    _, gen = gan_objectives(G, D, lr=1e-2)
    fit([gen], data=torch.randn(64, 2), steps=1, **FIT)
    assert not unchanged(G, g_before)
    assert unchanged(D, d_before)
    # D did receive gradients through the generator's loss; only its optimizer keeps it still.
    assert all(p.grad is not None for p in D.parameters())


def test_no_graph_flows_into_the_generator_in_the_discriminator_loss():
    G, D = tiny_mlp_gan()
    disc, gen = gan_objectives(G, D)
    out = disc.loss_fn(torch.randn(16, 2))
    assert (
        set(out) == {"loss", "d_real", "d_fake"} and 0 < out["d_real"] < 1 and 0 < out["d_fake"] < 1
    )
    out["loss"].backward()
    assert all(p.grad is None for p in G.parameters())
    assert all(p.grad is not None for p in D.parameters())
    gen.loss_fn(torch.randn(16, 2)).get("loss").backward()
    assert all(p.grad is not None for p in G.parameters())  # the generator's own loss does reach G


# ---------------------------------------------------------------- conditional GANs


def test_a_conditional_dcgan_trains_on_images_with_labels():
    G, D = tiny_dc_gan(n_classes=10)
    g = torch.Generator().manual_seed(0)
    images, labels = (
        torch.rand(48, 1, 8, 8, generator=g) * 2 - 1,
        torch.randint(0, 10, (48,), generator=g),
    )
    g_before, d_before = snapshot(G), snapshot(D)
    history = fit(gan_objectives(G, D), data=(images, labels), steps=2, **FIT)
    assert not unchanged(G, g_before) and not unchanged(D, d_before)
    assert all(math.isfinite(history.last(k)) for k in ("disc/loss", "gen/loss"))


def test_a_conditional_gan_gives_the_fakes_the_real_batchs_labels():
    G, D = tiny_dc_gan(n_classes=10)
    seen = {"G": [], "D": []}

    def spy(name):
        def hook(module, args, kwargs):
            seen[name].append(args[1] if len(args) > 1 else kwargs.get("labels"))

        return hook

    G.register_forward_pre_hook(spy("G"), with_kwargs=True)
    D.register_forward_pre_hook(spy("D"), with_kwargs=True)
    images, labels = torch.zeros(6, 1, 8, 8), torch.tensor([0, 1, 2, 3, 9, 9])
    disc, gen = gan_objectives(G, D)
    disc.loss_fn((images, labels))
    gen.loss_fn((images, labels))
    assert len(seen["G"]) == 2 and len(seen["D"]) == 3  # D scores real and fake, then fake again
    assert all(torch.equal(l, labels) for l in seen["G"] + seen["D"])


def test_labels_and_conditioning_must_agree():
    images, labels = torch.zeros(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    G, D = tiny_dc_gan()  # unconditional
    for objective in gan_objectives(G, D):
        with pytest.raises(ValueError, match="is unconditional; build it with n_classes"):
            objective.loss_fn((images, labels))
    with pytest.raises(ValueError, match="discriminator is unconditional"):
        D(images, labels)
    Gc, Dc = tiny_dc_gan(n_classes=10)
    for objective in gan_objectives(Gc, Dc):
        with pytest.raises(
            ValueError,
            match=r"conditional generator needs one class label per sample, shape \(4,\); got None",
        ):
            objective.loss_fn(images)
    with pytest.raises(
        ValueError, match=r"conditional discriminator needs one class label.*got \(4, 1\)"
    ):
        Dc(images, labels[:, None])


# ---------------------------------------------------------------- networks and shapes


@pytest.mark.parametrize("side", [8, 28])
def test_dcgan_shapes(side):
    torch.manual_seed(0)
    for n_classes in (None, 10):
        G = DCGenerator(latent_dim=16, image_shape=(1, side, side), n_classes=n_classes)
        D = DCDiscriminator(image_shape=(1, side, side), n_classes=n_classes)
        extra = (torch.tensor([3, 7, 0]),) if n_classes else ()
        x = G(torch.randn(3, 16), *extra)
        assert x.shape == (3, 1, side, side)
        assert x.abs().max() <= 1  # tanh: images in [-1, 1]
        assert D(x, *extra).shape == (3,)
    with pytest.raises(ValueError, match=r"expects inputs of shape \(N, 16\)"):
        G(torch.randn(3, 15), *extra)


def test_mlp_networks_for_2d_points_are_unbounded():
    G, D = tiny_mlp_gan()
    z = torch.randn(5, 3)
    assert G(z).shape == (5, 2) and D(G(z)).shape == (5,)
    last_linear = [m for m in G.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        last_linear.bias.fill_(5.0)  # a tanh output would stay below 1; output=None must not
    assert (G(z) > 1).any()


def linear_params(widths, bias=True):
    return sum(a * b + (b if bias else 0) for a, b in zip(widths, widths[1:]))


@pytest.mark.parametrize(
    "name, g_params, d_params",
    [
        # trainable parameters from the architectures in published_gan's docstring (BN: a scale and a shift per unit)
        (
            "mlp",
            linear_params([100, 256, 256, 256, 256, 784]),
            linear_params([784, 1024, 512, 256, 1]),
        ),
        (
            "pytorch",
            linear_params([100, 256, 512, 1024, 784]),
            linear_params([784, 1024, 512, 256, 1]),
        ),
        (
            "keras",
            linear_params([100, 256, 512], bias=False)
            + 2 * (256 + 512)
            + linear_params([512, 784]),
            linear_params([784, 1024, 512, 1]),
        ),
        (
            "keras-narrow",
            linear_params([100, 256, 512, 1024], bias=False)
            + 2 * (256 + 512 + 1024)
            + linear_params([1024, 784]),
            linear_params([784, 256, 128, 1]),
        ),
    ],
)
def test_published_gans_build_with_the_documented_sizes(name, g_params, d_params):
    torch.manual_seed(0)
    G, D = published_gan(name)
    assert sum(p.numel() for p in G.parameters()) == g_params
    assert sum(p.numel() for p in D.parameters()) == d_params
    x = G(torch.randn(2, 100))
    assert x.shape == (2, 1, 28, 28) and x.abs().max() <= 1
    assert D(x).shape == (2,)


def test_the_narrow_keras_gan_has_the_published_layers():
    # the architecture of published_gan's docstring, layer by layer: a wrong width, a bias before batch norm,
    # a missing dropout or the wrong LeakyReLU slope each fails here
    G, D = published_gan("keras-narrow")
    g_linears = [m for m in G.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in g_linears] == [
        (100, 256),
        (256, 512),
        (512, 1024),
        (1024, 784),
    ]
    # BN follows all but the last
    assert [m.bias is None for m in g_linears] == [True, True, True, False]
    assert [m.num_features for m in G.modules() if isinstance(m, nn.BatchNorm1d)] == [
        256,
        512,
        1024,
    ]
    assert [m.negative_slope for m in G.modules() if isinstance(m, nn.LeakyReLU)] == [0.2] * 3
    assert isinstance(G.net[-1], nn.Tanh)
    d_layers = [type(m).__name__ for m in D.net]
    assert d_layers == [
        "Linear",
        "LeakyReLU",
        "Dropout",
        "Linear",
        "LeakyReLU",
        "Dropout",
        "Linear",
    ]
    d_linears = [m for m in D.net if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in d_linears] == [
        (784, 256),
        (256, 128),
        (128, 1),
    ]
    assert all(m.bias is not None for m in d_linears)
    assert [m.p for m in D.net if isinstance(m, nn.Dropout)] == [0.3, 0.3]
    assert [m.negative_slope for m in D.net if isinstance(m, nn.LeakyReLU)] == [0.2, 0.2]
    # it takes 28x28 images (N, 1, 28, 28), not flat (N, 784) vectors, and gives one logit per image
    G.eval()
    assert D(G(torch.randn(3, 100))).shape == (3,)
    with pytest.raises(ValueError, match=r"expects inputs of shape \(N, 1, 28, 28\)"):
        D(torch.randn(3, 784))


def test_bad_network_settings_are_clear_errors():
    with pytest.raises(ValueError, match="Unknown published GAN 'tf'"):
        published_gan("tf")
    for bad in [(1, 10, 10), (1, 8, 6), (8, 8)]:
        with pytest.raises(ValueError, match="divisible by 4"):
            DCGenerator(image_shape=bad)
        with pytest.raises(ValueError, match="divisible by 4"):
            DCDiscriminator(image_shape=bad)


# ---------------------------------------------------------------- WGAN-GP


def test_gradient_penalty_is_zero_for_a_unit_slope_linear_critic_and_positive_otherwise():
    # f(x) = w . x has gradient w everywhere, so the penalty is exactly (|w| - 1)^2; float64 rounding: 1e-12.
    g = torch.Generator().manual_seed(0)
    real, fake = (
        torch.randn(16, 3, generator=g, dtype=torch.float64),
        torch.randn(16, 3, generator=g, dtype=torch.float64),
    )
    direction = torch.tensor([1.0, 2.0, 2.0], dtype=torch.float64) / 3  # unit norm
    for norm in (1.0, 2.0, 0.5):
        w = (norm * direction).requires_grad_(True)
        gp = losses.gradient_penalty(lambda x, w=w: x @ w, real, fake)
        assert gp.item() == pytest.approx((norm - 1) ** 2, abs=1e-12)
        gp.backward()  # the penalty must train the critic: d/dw (|w| - 1)^2 = 2 (|w| - 1) w / |w|
        torch.testing.assert_close(w.grad, 2 * (norm - 1) * direction, rtol=0, atol=1e-12)


def test_gradient_penalty_is_taken_at_random_mixes_of_real_and_fake():
    # f(x) = x^2 / 2 in 1-D has |f'(x)| = |x|. With real = 2 and fake = 4, x_hat = 4 - 2 alpha,
    # alpha ~ U(0, 1), so E[(|x_hat| - 1)^2] = E[(3 - 2 alpha)^2] = 13/3, with a per-sample standard
    # deviation of 2.33: over 4000 samples the standard error is 0.037, and 0.15 is 4 of them.
    # (A fixed alpha = 1/2 would give 4, and penalising at the real points alone 1.)
    torch.manual_seed(0)
    critic = lambda x: 0.5 * x.pow(2).sum(1)  # noqa: E731
    gp = losses.gradient_penalty(critic, torch.full((4000, 1), 2.0), torch.full((4000, 1), 4.0))
    assert gp.item() == pytest.approx(13 / 3, abs=0.15)
    # For images, one alpha per sample: each mix lies on the segment from its real to its fake image.
    seen = []
    losses.gradient_penalty(
        lambda x: seen.append(x.detach()) or x.flatten(1).sum(1),
        torch.zeros(8, 1, 2, 2),
        torch.ones(8, 1, 2, 2),
    )
    mixed = seen[0].flatten(1)
    assert (
        torch.equal(mixed, mixed[:, :1].expand_as(mixed))
        and (0 <= mixed).all()
        and (mixed <= 1).all()
    )
    assert mixed[:, 0].unique().numel() == 8


def test_wgan_gp_steps_the_generator_once_per_critic_steps():
    G, D = tiny_mlp_gan()
    objectives = gan_objectives(G, D, loss="wgan-gp", critic_steps=3, betas=(0.0, 0.9))
    history = fit(objectives, data=torch.randn(64, 2), steps=7, **FIT)
    disc_opt, gen_opt = (o.optimizer for o in objectives)
    assert {s["step"].item() for s in disc_opt.state.values()} == {7}
    # after the critic's 3rd and 6th steps
    assert {s["step"].item() for s in gen_opt.state.values()} == {2}
    assert history.get("disc/loss")[0] == [1, 2, 3, 4, 5, 6, 7]
    assert history.get("gen/loss")[0] == [3, 6]
    assert {"disc/wasserstein", "disc/gp"} <= history.keys()


# ---------------------------------------------------------------- divergence, learning, sampling


class NaNDiscriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, x, labels=None):
        return self.linear(x).squeeze(1) * float("nan")


def test_a_nan_discriminator_stops_gan_training_with_likely_causes():
    G, _ = tiny_mlp_gan()
    with pytest.raises(
        TrainingDivergedError, match=r"(?s)diverged: disc/loss=nan.*Likely causes.*learning rate"
    ):
        fit(gan_objectives(G, NaNDiscriminator()), data=torch.randn(64, 2), steps=3, **FIT)


def test_a_tiny_gan_learns_a_gaussian():
    # 1-D data N(3, 0.5^2); the generator starts near 0 with std ~0.1. After 200 steps (under a second)
    # its sample mean must be within 0.4 of 3 and its spread must not have collapsed. Over 12 seeds the
    # mean ended within 0.26 of 3 and the std between 0.36 and 0.78. A constant learning rate: with
    # the cosine decay, 200 steps is too short and the generator overshoots (means up to 5.5).
    torch.manual_seed(0)
    G = MLPGenerator(latent_dim=4, out_shape=(1,), hidden=(16, 16), output=None)
    D = MLPDiscriminator(in_shape=(1,), hidden=(16, 16), dropout=0.0)
    data = 3 + 0.5 * torch.randn(2048, 1, generator=torch.Generator().manual_seed(1))
    before = generate(G, 2000, seed=0, to_unit=False)
    fit(
        gan_objectives(G, D, lr=2e-3),
        data=data,
        steps=200,
        batch_size=64,
        schedule="constant",
        progress=False,
        device="cpu",
    )
    after = generate(G, 2000, seed=0, to_unit=False)
    assert abs(before.mean().item()) < 0.5
    assert after.mean().item() == pytest.approx(3.0, abs=0.4)
    assert 0.2 < after.std().item() < 1.0


def test_generate_is_seeded_in_unit_range_and_restores_the_mode():
    G, _ = tiny_dc_gan()
    running_mean = G.project[1].running_mean.clone()
    x = generate(G, 5, seed=0)
    assert x.shape == (5, 1, 8, 8) and x.min() >= 0 and x.max() <= 1
    torch.manual_seed(123)  # the global RNG must not matter
    assert torch.equal(generate(G, 5, seed=0), x)
    assert not torch.equal(generate(G, 5, seed=1), x)
    torch.testing.assert_close((generate(G, 5, seed=0, to_unit=False) + 1) / 2, x, rtol=0, atol=0)
    # sampled in eval mode
    assert G.training and torch.equal(G.project[1].running_mean, running_mean)
    G.eval()
    generate(G, 5, seed=0)
    assert not G.training
    Gc, _ = tiny_dc_gan(n_classes=10)
    assert generate(Gc, 10, labels=torch.arange(10), seed=0).shape == (10, 1, 8, 8)


def test_a_sparse_objective_follows_the_global_learning_rate_schedule():
    """With critic_steps=5 the generator's rate must decay like the critic's, on the global step."""
    G, D = tiny_mlp_gan()
    objectives = gan_objectives(G, D, loss="wgan-gp", critic_steps=5, betas=(0.0, 0.9))
    history = fit(
        objectives,
        data=torch.randn(64, 2),
        steps=100,
        batch_size=16,
        lr=1.0,
        warmup_steps=10,
        min_lr_ratio=0.1,
        progress=False,
        log_every=1,
    )
    d_steps, d_lr = history.get("disc/lr")
    g_steps, g_lr = history.get("gen/lr")
    critic_at = dict(zip(d_steps, d_lr))
    # the generator's j-th update (logged at step 5j + 5) uses the schedule's rate for global step 5j,
    # which is the critic's rate at its update logged at step 5j + 1
    assert len(g_steps) == 20
    for step, lr in zip(g_steps, g_lr):
        assert lr == pytest.approx(critic_at[step - 4], rel=1e-6)
    # decayed towards min_lr_ratio * lr, not stuck near the start of the schedule
    assert g_lr[-1] < 0.2


def test_conditional_labels_must_be_whole_numbers_in_range():
    G = DCGenerator(8, (1, 8, 8), n_classes=10)
    z = torch.randn(3, 8)
    with pytest.raises(ValueError, match="whole numbers.*2.7 has no class"):
        G(z, torch.tensor([2.7, 1.0, 0.0]))  # .long() used to make 2.7 a 2, silently
    with pytest.raises(ValueError, match=r"lie in 0..9; got values from 0 to 10"):
        G(z, torch.tensor([0, 10, 3]))
    assert G(z, torch.tensor([0, 9, 3])).shape == (3, 1, 8, 8)


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "real, named",
    [
        (torch.rand(8, 1, 8, 8) * 255, ["tanh", "[-1, 1]", "2 * images - 1", "255"]),
        (torch.full((8, 1, 8, 8), float("nan")), ["[-1, 1]", "nan"]),
        ((torch.rand(8, 1, 8, 8) * 2 - 1).double(), ["float64", "float32", "x.float()"]),
        (torch.randint(0, 2, (8, 1, 8, 8), dtype=torch.uint8), ["uint8", "255"]),
    ],
    ids=["0..255", "nan", "float64", "uint8"],
)
def test_bad_inputs_are_refused_with_the_fix_named(real, named):
    disc, _ = gan_objectives(*tiny_dc_gan())
    with pytest.raises(ValueError) as err:
        disc.loss_fn(real)
    for part in named:
        assert part in str(err.value), (part, str(err.value))


def test_real_images_left_in_0_1_are_flagged(recwarn):
    disc, _ = gan_objectives(*tiny_dc_gan())
    with pytest.warns(UserWarning, match=r"nothing .* below 0.*2 \* images - 1"):
        disc.loss_fn(torch.rand(8, 1, 8, 8))
    recwarn.clear()
    disc.loss_fn(torch.rand(8, 1, 8, 8) * 2 - 1)
    mlp_disc, _ = gan_objectives(*tiny_mlp_gan())
    mlp_disc.loss_fn(3 + torch.randn(8, 2))  # toy points are not images: any range
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_generate_takes_an_int_or_a_list_of_labels_as_the_diffusion_samplers_do():
    G, _ = tiny_dc_gan(n_classes=10)
    assert generate(G, 4, labels=2, seed=0).shape == (4, 1, 8, 8)
    torch.testing.assert_close(
        generate(G, 2, labels=[0, 1], seed=0), generate(G, 2, labels=torch.tensor([0, 1]), seed=0)
    )
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        generate(G, 3, labels=[0, 1])


def test_critic_steps_is_checked_by_name():
    with pytest.raises(ValueError, match="critic_steps must be at least 1; got 0"):
        gan_objectives(*tiny_mlp_gan(), critic_steps=0)
