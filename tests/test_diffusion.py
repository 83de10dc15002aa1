"""Diffusion math: the schedules, the forward process in closed form, DDPM vs DDIM on a Gaussian whose
optimal denoiser is known exactly, seeds, classifier-free guidance, and the EMA of the weights."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from genai_lib.diffusion import (
    NoiseSchedule,
    ddim_sample,
    ddim_step,
    ddim_timesteps,
    ddim_trajectory,
    ddpm_sample,
    ddpm_step,
    ddpm_trajectory,
    diffusion_loss,
    guided_epsilon,
    noise_schedule,
    q_sample,
)
from genai_lib.ema import EMA
from genai_lib.models.unet import UNet
from genai_lib.train import fit

Z = 4.0  # tolerances in standard errors: |z| > 4 has probability 6e-5 per comparison, and the seeds are fixed


# ---------------------------------------------------------------- schedules


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("steps", [1, 10, 100, 1000])
def test_schedule_tensors_have_the_right_shapes_ranges_and_order(kind, steps):
    s = noise_schedule(kind, steps)
    assert isinstance(s, NoiseSchedule) and s.steps == steps and s.kind == kind
    for name in ("betas", "alphas", "alpha_bars", "alpha_bars_prev", "posterior_variances"):
        assert getattr(s, name).shape == (steps,) and getattr(s, name).dtype == torch.float64, name
    assert (s.betas > 0).all() and (s.betas <= 0.999).all()
    torch.testing.assert_close(s.alphas, 1 - s.betas)
    torch.testing.assert_close(s.alpha_bars, torch.cumprod(s.alphas, 0))
    assert (s.alpha_bars > 0).all() and (s.alpha_bars < 1).all()
    assert (s.betas.diff() >= 0).all()  # noise is added faster and faster
    assert (s.alpha_bars.diff() < 0).all()  # the signal only ever decays
    snr = s.snr(torch.arange(steps))
    assert (snr.diff() < 0).all()
    torch.testing.assert_close(snr, s.alpha_bars / (1 - s.alpha_bars))
    assert s.posterior_variances[0] == 0 and (s.posterior_variances <= s.betas).all()


def test_the_linear_schedule_is_ho_et_al_at_1000_steps_and_scaled_for_others():
    s = noise_schedule("linear", 1000)
    assert s.betas[0].item() == pytest.approx(1e-4) and s.betas[-1].item() == pytest.approx(0.02)
    # exp(-sum of betas), roughly
    assert s.alpha_bars[-1].item() == pytest.approx(4.04e-5, rel=0.01)
    for steps in (50, 100, 250):
        short = noise_schedule("linear", steps)
        assert short.betas[0].item() == pytest.approx(1e-4 * 1000 / steps)
        # the same total noise
        assert short.betas.sum().item() == pytest.approx(s.betas.sum().item(), rel=1e-4)
        assert short.alpha_bars[-1] < 1e-4  # still ends in noise


def test_the_cosine_schedule_follows_its_closed_form_alpha_bar():
    steps, offset = 200, 0.008
    s = noise_schedule("cosine", steps)
    f = lambda u: math.cos((u + offset) / (1 + offset) * math.pi / 2) ** 2  # noqa: E731
    # the last beta is clipped at 0.999, so compare all steps but the last
    expected = torch.tensor(
        [f((t + 1) / steps) / f(0) for t in range(steps - 1)], dtype=torch.float64
    )
    torch.testing.assert_close(s.alpha_bars[:-1], expected, rtol=1e-12, atol=0)
    assert s.betas[-1].item() == pytest.approx(0.999)


def test_schedule_arguments_are_checked():
    with pytest.raises(ValueError, match="'linear', 'cosine'"):
        noise_schedule("quadratic", 100)
    for bad in (0, -5, 2.5):
        with pytest.raises(ValueError, match="positive integer"):
            noise_schedule("linear", bad)
    with pytest.raises(ValueError, match="linear schedule"):
        noise_schedule("cosine", 100, beta_start=1e-4)


# ---------------------------------------------------------------- the forward process


def test_iterating_the_one_step_kernel_gives_the_closed_form_marginal():
    # x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps, t = 0..T-1, from a fixed x0 (x_{-1} = x0), must have
    # mean sqrt(ab_t) x0 and variance 1 - ab_t per coordinate. Monte Carlo over N chains: the standard error
    # of a mean is sqrt(var / N); of a variance, about var * sqrt(2 / N) (Gaussian); we allow Z of them.
    s = noise_schedule("linear", 100)
    n = 20_000
    x0 = torch.tensor([-1.0, 0.0, 0.5, 1.0], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    x = x0.expand(n, -1).clone()
    for t in range(s.steps):
        beta = s.betas[t]
        x = (1 - beta).sqrt() * x + beta.sqrt() * torch.randn(
            x.shape, generator=g, dtype=torch.float64
        )
        if t in (0, 9, 49, 99):
            ab = s.alpha_bars[t]
            var = 1 - ab
            assert ((x.mean(0) - ab.sqrt() * x0).abs() < Z * (var / n).sqrt()).all(), t
            assert ((x.var(0) - var).abs() < Z * var * math.sqrt(2 / n)).all(), t
            # and q_sample draws from that marginal in one jump
            t_batch = torch.full((n,), t)
            jump = q_sample(
                s, x0.float().expand(n, -1), t_batch, torch.randn(n, 4, generator=g)
            ).double()
            assert ((jump.mean(0) - ab.sqrt() * x0).abs() < Z * (var / n).sqrt()).all(), t
            assert ((jump.var(0) - var).abs() < Z * var * math.sqrt(2 / n)).all(), t


def test_q_sample_is_the_formula_and_checks_its_inputs():
    s = noise_schedule("cosine", 50)
    x0, noise, t = torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2), torch.tensor([0, 10, 49])
    ab = s.alpha_bars[t].float().view(3, 1, 1, 1)
    x_t = q_sample(s, x0, t, noise)
    assert x_t.dtype == torch.float32
    torch.testing.assert_close(x_t, ab.sqrt() * x0 + (1 - ab).sqrt() * noise)
    with pytest.raises(ValueError, match="integer tensor"):
        q_sample(s, x0, t.float(), noise)
    with pytest.raises(ValueError, match=r"one timestep per sample, shape \(3,\)"):
        q_sample(s, x0, t[:2], noise)
    with pytest.raises(ValueError, match=r"\[0, 49\]"):
        q_sample(s, x0, torch.tensor([0, 10, 50]), noise)
    with pytest.raises(ValueError, match="shape of x0"):
        q_sample(s, x0, t, noise[:, :, :1])


# ---------------------------------------------------------------- samplers on a Gaussian


class GaussianDenoiser(nn.Module):
    """The exact noise predictor E[eps | x_t] for data x0 ~ N(mu, sigma^2 I).

    x_t = sqrt(ab) x0 + sqrt(1 - ab) eps is Gaussian with variance ab sigma^2 + 1 - ab and covariance
    sqrt(1 - ab) with eps, so E[eps | x_t] = sqrt(1 - ab) (x_t - sqrt(ab) mu) / (ab sigma^2 + 1 - ab).
    """

    n_classes = None

    def __init__(self, schedule, mu, sigma):
        super().__init__()
        self.schedule, self.mu, self.sigma = schedule, mu, sigma
        self.calls = 0

    def forward(self, x, t, labels=None):
        assert labels is None
        self.calls += 1
        ab = self.schedule.alpha_bars[t].to(x.dtype).view(-1, *[1] * (x.dim() - 1))
        return (1 - ab).sqrt() * (x - ab.sqrt() * self.mu) / (ab * self.sigma**2 + 1 - ab)


def sampler_variance(schedule, sigma, timesteps, eta):
    """The exact output variance of DDIM (DDPM is eta = 1 on every step) with GaussianDenoiser, in float64.

    Every step is linear in x plus independent noise, x' = a x + b + sigma_t z, so the variance follows
    v' = a^2 v + sigma_t^2 from v = 1. It is below sigma^2: the reverse steps are Gaussian approximations.
    """
    ab_all = schedule.alpha_bars.tolist()
    v = 1.0
    for i in reversed(range(len(timesteps))):
        ab, ab_prev = ab_all[timesteps[i]], (ab_all[timesteps[i - 1]] if i > 0 else 1.0)
        c = math.sqrt(1 - ab) / (ab * sigma**2 + 1 - ab)  # d eps / d x
        dx0 = (1 - math.sqrt(1 - ab) * c) / math.sqrt(ab)  # d x0_hat / d x
        var_step = eta**2 * (1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)
        a = math.sqrt(ab_prev) * dx0 + math.sqrt(max(1 - ab_prev - var_step, 0.0)) * c
        v = a * a * v + var_step
    return v


MU, SIGMA, N, DIM = torch.tensor([0.5, -1.0]), 0.5, 4000, 2
GAUSS = dict(n=N, shape=(DIM,), clip_x0=False, to_unit=False)


def check_moments(samples, mean, var, what):
    # standard errors over N samples per coordinate; both coordinates have the same variance
    se_mean, se_var = math.sqrt(var / N), var * math.sqrt(2 / N)
    assert ((samples.mean(0) - mean).abs() < Z * se_mean).all(), (what, samples.mean(0), mean)
    assert ((samples.var(0) - var).abs() < Z * se_var).all(), (what, samples.var(0), var)


def test_one_ddim_step_with_eta_1_is_one_ddpm_step():
    """The pure step functions: DDIM's sigma at eta = 1 between consecutive steps is DDPM's posterior std."""
    s = noise_schedule("cosine", 50)
    g = torch.Generator().manual_seed(0)
    x, eps, z = (torch.randn(4, 1, 3, 3, generator=g) for _ in range(3))
    for t in (49, 20, 1, 0):
        ab, ab_prev = s.alpha_bars[t].item(), s.alpha_bars_prev[t].item()
        for clip in (False, True):
            torch.testing.assert_close(
                ddim_step(x, eps, ab, ab_prev, eta=1.0, noise=z, clip_x0=clip),
                ddpm_step(s, x, eps, t, z, clip_x0=clip),
            )
    # and the comparison can fail: eta = 0 is another step
    ab, ab_prev = s.alpha_bars[20].item(), s.alpha_bars_prev[20].item()
    assert not torch.allclose(ddim_step(x, eps, ab, ab_prev), ddpm_step(s, x, eps, 20, z))


def test_the_last_ddim_step_returns_the_predicted_clean_image_and_a_noisy_step_needs_noise():
    g = torch.Generator().manual_seed(1)
    x, eps = torch.randn(2, 5, generator=g), torch.randn(2, 5, generator=g)
    torch.testing.assert_close(
        ddim_step(x, eps, 0.3, 1.0), (x - math.sqrt(0.7) * eps) / math.sqrt(0.3)
    )
    with pytest.raises(ValueError, match="draws noise"):
        ddim_step(x, eps, 0.3, 0.6, eta=0.5)


def test_ddim_with_eta_1_on_every_step_is_ddpm():
    s = noise_schedule("cosine", 1000)
    model = GaussianDenoiser(s, MU, SIGMA)
    # The same seed: the same draws in the same order, and the same update up to float32 rounding
    # (about 1e-5 after 1,000 steps; a wrong variance or mean would differ by about 1)
    ddpm = ddpm_sample(model, s, seed=0, **GAUSS)
    ddim = ddim_sample(model, s, steps=s.steps, eta=1.0, seed=0, **GAUSS)
    torch.testing.assert_close(ddim, ddpm, rtol=0, atol=1e-4)
    # Other seeds: both match the distribution the sampler should give (exact, below), and the truth.
    # This schedule's reverse steps lose 0.8% of the variance (a sampler property, not noise): we check it
    # is under 1%, then compare each sampler with the exact value within Z standard errors (1.6%).
    var = sampler_variance(s, SIGMA, list(range(s.steps)), eta=1.0)
    assert abs(var / SIGMA**2 - 1) < 0.01
    check_moments(ddpm_sample(model, s, seed=1, **GAUSS), MU, var, "ddpm")
    check_moments(
        ddim_sample(model, s, steps=s.steps, eta=1.0, seed=2, **GAUSS), MU, var, "ddim eta=1"
    )


def test_deterministic_ddim_with_few_steps_recovers_the_distribution_roughly():
    s = noise_schedule("cosine", 1000)
    model = GaussianDenoiser(s, MU, SIGMA)
    samples = ddim_sample(model, s, steps=50, eta=0.0, seed=3, **GAUSS)
    assert model.calls == 50
    # 50 Euler-like steps of the deterministic sampler lose about 6% of the variance (exact value below)
    var = sampler_variance(s, SIGMA, ddim_timesteps(s, 50).tolist(), eta=0.0)
    assert 0.9 < var / SIGMA**2 < 1.0
    check_moments(samples, MU, var, "ddim eta=0, 50 steps")


def test_ddim_timesteps_are_evenly_spread_and_end_at_the_noisiest_step():
    s = noise_schedule("linear", 100)
    assert ddim_timesteps(s, 100).tolist() == list(range(100))
    ts = ddim_timesteps(s, 10)
    assert ts[0] == 0 and ts[-1] == 99 and len(ts.unique()) == 10
    assert ddim_timesteps(s, 1).tolist() == [99]
    for bad in (0, 101):
        with pytest.raises(ValueError, match="from 1 to T = 100"):
            ddim_timesteps(s, bad)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_a_seed_fixes_the_samples_and_leaves_the_global_generator_alone(sampler):
    s = noise_schedule("linear", 20)
    model = GaussianDenoiser(s, MU, SIGMA)
    draw = (
        (lambda seed: ddpm_sample(model, s, 5, (2,), seed=seed))
        if sampler == "ddpm"
        else (lambda seed: ddim_sample(model, s, 5, (2,), steps=10, eta=0.5, seed=seed))
    )
    state = torch.get_rng_state()
    a, b, c = draw(7), draw(7), draw(8)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert a.shape == (5, 2) and a.min() >= 0 and a.max() <= 1  # to_unit: in [0, 1]
    trajectory = (
        ddpm_trajectory(model, s, 5, (2,), seed=7)
        if sampler == "ddpm"
        else ddim_trajectory(model, s, 5, (2,), steps=10, eta=0.5, seed=7)
    )
    assert trajectory.shape == ((21 if sampler == "ddpm" else 11), 5, 2)
    torch.testing.assert_close(((trajectory[-1].clamp(-1, 1) + 1) / 2), a)


def test_samplers_restore_the_training_mode():
    s = noise_schedule("linear", 10)
    model = UNet(base_channels=8, channel_mults=(1,))
    for mode in (True, False):
        model.train(mode)
        ddim_sample(model, s, 2, (1, 4, 4), steps=3, seed=0)
        assert model.training is mode


# ---------------------------------------------------------------- classifier-free guidance and labels


class LabelledToy(nn.Module):
    """eps = w[label] * x: a different prediction per class, and one for the null label (index n_classes)."""

    n_classes = 3

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([0.1, 0.2, 0.3, -0.5]))
        self.seen = []

    def forward(self, x, t, labels=None):
        if labels is None:
            labels = torch.full((len(x),), self.n_classes)
        self.seen.append(labels.clone())
        return self.w[labels].view(-1, 1) * x


def test_guidance_scale_1_is_the_conditional_model_and_0_the_unconditional_one():
    model, x, t = LabelledToy(), torch.randn(4, 2), torch.zeros(4, dtype=torch.long)
    labels, null = torch.tensor([0, 1, 2, 1]), torch.full((4,), 3)
    eps_c, eps_u = model(x, t, labels), model(x, t, null)
    torch.testing.assert_close(guided_epsilon(model, x, t, labels, guidance=1.0), eps_c)
    torch.testing.assert_close(guided_epsilon(model, x, t, labels, guidance=0.0), eps_u)
    # no labels: unguided
    torch.testing.assert_close(guided_epsilon(model, x, t, None, guidance=3.0), eps_u)
    # s = 3 is Ho & Salimans' w = 2: (1 + w) eps_c - w eps_u
    torch.testing.assert_close(
        guided_epsilon(model, x, t, labels, guidance=3.0), 3 * eps_c - 2 * eps_u
    )


def test_sampler_labels_are_checked_and_passed_through():
    s = noise_schedule("linear", 5)
    model = LabelledToy()
    ddim_sample(model, s, 4, (2,), steps=2, labels=2, guidance=1.0, seed=0)
    assert all(torch.equal(seen, torch.full((4,), 2)) for seen in model.seen)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        ddim_sample(model, s, 4, (2,), steps=2, labels=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="integer"):
        ddpm_sample(model, s, 2, (2,), labels=torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="unconditional"):  # guidance needs a null label
        ddim_sample(GaussianDenoiser(s, MU, SIGMA), s, 2, (2,), steps=2, labels=0, guidance=2.0)


def test_the_loss_drops_labels_to_the_null_label_at_rate_p_uncond():
    model, s = LabelledToy(), noise_schedule("linear", 10)
    x0, labels = torch.randn(4000, 2), torch.zeros(4000, dtype=torch.long)
    for p in (0.0, 0.25, 1.0):
        model.seen.clear()
        diffusion_loss(model, s, x0, labels, p_uncond=p, generator=torch.Generator().manual_seed(0))
        share = (model.seen[0] == 3).float().mean().item()
        assert abs(share - p) < Z * math.sqrt(p * (1 - p) / 4000) + 1e-9, (p, share)
    with pytest.raises(ValueError, match="unconditional"):
        diffusion_loss(GaussianDenoiser(s, MU, SIGMA), s, x0, labels)


def test_the_loss_is_the_noise_prediction_error_and_1_for_a_zero_predictor():
    s = noise_schedule("cosine", 100)
    zero = UNet(base_channels=8, channel_mults=(1,))  # its last conv starts at zero: eps_hat = 0
    x0 = torch.rand(512, 1, 4, 4) * 2 - 1
    loss = diffusion_loss(zero, s, x0, generator=torch.Generator().manual_seed(0))
    # the mean of 8,192 squared standard normals: standard error sqrt(2 / 8192) = 0.016
    assert abs(loss.item() - 1) < Z * math.sqrt(2 / 8192)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert (
        diffusion_loss(zero, s, x0, generator=g1).item()
        == diffusion_loss(zero, s, x0, generator=g2).item()
    )


# ---------------------------------------------------------------- EMA


def test_an_ema_update_is_d_old_plus_1_minus_d_new():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ema = EMA(model, decay=0.9, warmup=False)
    old = {k: v.clone() for k, v in ema.model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    model(torch.randn(8, 3))  # moves the batch-norm statistics and counter
    ema.update(model)
    new = model.state_dict()
    for k, v in ema.model.state_dict().items():
        # exact up to float32 rounding of the two products and the sum
        if v.dtype.is_floating_point:
            torch.testing.assert_close(v, 0.9 * old[k] + 0.1 * new[k], rtol=1e-6, atol=1e-7)
        else:
            assert torch.equal(v, new[k]), k
    assert int(ema.updates) == 1 and not any(p.requires_grad for p in ema.parameters())


def test_ema_warmup_and_callback():
    model = nn.Linear(2, 2)
    ema = EMA(model, decay=0.999)
    # (1 + 0) / (10 + 0): the first update mostly copies
    assert ema.current_decay() == pytest.approx(0.1)
    callback = ema.callback(model, every=2)
    for step in range(1, 5):  # what fit's loop tells it after steps 1..4
        callback.after_step(SimpleNamespace(step=step), {})
    assert int(ema.updates) == 2 and ema.current_decay() == pytest.approx(3 / 12)
    x = torch.randn(3, 2)
    torch.testing.assert_close(ema(x), ema.model(x))
    with pytest.raises(ValueError, match="decay"):
        EMA(model, decay=1.0)


def tiny_run(tmp_path, steps, stop_after=None, also_extra_module=True):
    """Train a tiny conditional UNet for ``steps`` with an EMA, checkpointing at the end of the call.

    The EMA callback alone keeps the average in the checkpoint; chapters written before it had state
    also passed the EMA in ``extra_modules``, which must keep working.
    """
    torch.manual_seed(0)
    model = UNet(base_channels=8, channel_mults=(1, 2), n_classes=2)
    ema = EMA(model, decay=0.9)
    s = noise_schedule("cosine", 50)
    x, y = torch.rand(16, 1, 4, 4) * 2 - 1, torch.arange(16) % 2
    fit(
        model,
        lambda batch: diffusion_loss(model, s, *batch),
        (x, y),
        steps=steps,
        batch_size=8,
        device="cpu",
        progress=False,
        callbacks=[ema.callback(model)],
        extra_modules={"ema": ema} if also_extra_module else None,
        checkpoint_path=tmp_path / "run.pt",
        stop_after=stop_after,
    )
    return ema


@pytest.mark.parametrize("also_extra_module", [True, False])
def test_the_ema_survives_a_checkpoint_and_resume(tmp_path, also_extra_module):
    straight = tiny_run(tmp_path / "a", steps=6, also_extra_module=also_extra_module)
    tiny_run(tmp_path / "b", steps=6, stop_after=3, also_extra_module=also_extra_module)
    # fresh objects; the checkpoint brings the EMA back
    resumed = tiny_run(tmp_path / "b", steps=6, also_extra_module=also_extra_module)
    assert int(resumed.updates) == int(straight.updates) == 6
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=k)


# ---------------------------------------------------------------- bad inputs


def tiny_unet() -> UNet:
    torch.manual_seed(0)
    return UNet(1, base_channels=8, channel_mults=(1, 2), groups=4)


@pytest.mark.parametrize(
    "x0, named",
    [
        (torch.rand(4, 1, 8, 8) * 255, ["[-1, 1]", "2 * images - 1", "255"]),  # raw 0..255
        (torch.full((4, 1, 8, 8), float("nan")), ["[-1, 1]", "nan"]),  # NaN slips past x < -1
        ((torch.rand(4, 1, 8, 8) * 2 - 1).double(), ["float64", "float32", "x.float()"]),
        (torch.randint(0, 2, (4, 1, 8, 8), dtype=torch.uint8), ["uint8", "255"]),
    ],
    ids=["0..255", "nan", "float64", "uint8"],
)
def test_bad_inputs_are_refused_with_the_fix_named(x0, named):
    with pytest.raises(ValueError) as err:
        diffusion_loss(tiny_unet(), noise_schedule("linear", 20), x0)
    for part in named:
        assert part in str(err.value), (part, str(err.value))


def test_images_left_in_0_1_are_flagged_and_scaled_images_and_toy_data_pass(recwarn):
    u, s = tiny_unet(), noise_schedule("linear", 20)
    with pytest.warns(UserWarning, match=r"nothing .* below 0.*2 \* images - 1"):
        diffusion_loss(u, s, torch.rand(4, 1, 8, 8))  # forgot x0 = 2 * images - 1
    recwarn.clear()
    diffusion_loss(u, s, torch.rand(4, 1, 8, 8) * 2 - 1)
    # 2-D toy data are not images: they may go past [-1, 1]
    diffusion_loss(LabelledToy(), s, 3 * torch.randn(16, 2), torch.zeros(16, dtype=torch.long))
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_a_short_linear_schedule_warns_that_its_betas_are_capped(recwarn):
    with pytest.warns(UserWarning, match=r"capped.*'cosine'.*T >= 50"):
        noise_schedule("linear", 10)
    recwarn.clear()
    for kind, steps in (("linear", 1000), ("linear", 50), ("cosine", 10), ("cosine", 1000)):
        noise_schedule(kind, steps)  # the cosine schedule caps only its last beta
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_numpy_integers_count_as_integers():
    s = noise_schedule("linear", np.int64(100))
    assert s.steps == 100
    out = ddim_sample(LabelledToy(), s, 2, (2,), steps=np.int64(5), labels=0, seed=0)
    assert out.shape == (2, 2)
