"""Denoising diffusion as math: a noise schedule, the forward process, the loss, and two samplers.

No network lives here. A diffusion model is any ``nn.Module`` that predicts
the noise in a noisy image, called as

    model(x_t, t, labels) -> eps_hat

- ``x_t (B, C, H, W)``: noisy images, in the *diffusion space* below;
- ``t (B,)``: int64 timesteps, 0-based: ``t = 0`` is the least noisy step, ``T - 1`` the noisiest;
- ``labels (B,)`` int64 or ``None``: class labels for a conditional model.
  The value ``model.n_classes`` is the *null* label, "no class": a conditional
  model trained with label dropout (``p_uncond`` in :func:`diffusion_loss`) is
  at the same time an unconditional one, which classifier-free guidance needs.
  ``labels=None`` asks a conditional model for its unconditional prediction.
  An unconditional model has ``n_classes = None`` and takes ``labels=None``.
  A model conditioned on something other than a class (chapter 07's
  :class:`~genai_lib.models.text_denoiser.TextDenoiser` reads caption tokens
  ``(B, L)``) says what "no condition" is with ``model.null_condition(labels)``
  and checks what samplers are given with ``model.conditions(labels, n, device)``;
  the loss's condition dropout and guidance then work unchanged.

:class:`genai_lib.models.unet.UNet` is such a network.

**Diffusion space.** The data are scaled to [-1, 1] (``x0 = 2 * image - 1``
for images in [0, 1]), so the clean images and the pure noise ``N(0, I)`` at
the end of the forward process have comparable scales. :func:`diffusion_loss`
takes ``x0`` in that space; the samplers return images in [0, 1] (the range of
:class:`~genai_lib.data.ImageData`) unless ``to_unit=False``.

**Steps and samplers.** :func:`ddpm_step` and :func:`ddim_step` are single
reverse steps, pure functions of the current ``x_t``, the predicted noise and
the noise levels; the samplers (:func:`ddpm_sample`, :func:`ddim_sample`, and
their ``*_trajectory`` twins that keep every step) are one loop around them.

The papers: DDPM (Ho et al., 2020), the cosine schedule (Nichol & Dhariwal,
2021), DDIM (Song et al., 2020) and classifier-free guidance (Ho & Salimans, 2022).
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from genai_lib.config import device_of
from genai_lib.losses import check_signed_images
from genai_lib.models.inputs import class_labels

SCHEDULES = ("linear", "cosine")
MAX_BETA = 0.999  # a beta of 1 would erase the signal in one step and make alpha_bar exactly 0


# ---------------------------------------------------------------- the noise schedule


@dataclass(frozen=True, eq=False)
class NoiseSchedule:
    """How much noise each of the ``T`` steps of the forward process adds.

    All tensors have shape ``(T,)``, are indexed by the 0-based timestep ``t``,
    and stay in float64 on the CPU: near ``t = 0``, ``1 - alpha_bar_t`` is
    1e-4 or less, of which float32 would keep only three digits. The functions
    below compute what they need from here, then cast it to the data's dtype
    and device.

    - ``betas[t]``: the variance of the noise added at step ``t``,
      ``q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)``;
    - ``alphas[t] = 1 - betas[t]``;
    - ``alpha_bars[t] = prod_{s <= t} alphas[s]``, so that in one jump
      ``q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)``.
    """

    kind: str
    betas: Tensor
    alphas: Tensor
    alpha_bars: Tensor

    @property
    def steps(self) -> int:
        """T, the number of diffusion steps."""
        return len(self.betas)

    @property
    def alpha_bars_prev(self) -> Tensor:
        """``alpha_bar_{t-1}``, with ``alpha_bar_{-1} = 1`` (no noise before the first step): ``(T,)``."""
        return torch.cat([self.alpha_bars.new_ones(1), self.alpha_bars[:-1]])

    @property
    def posterior_variances(self) -> Tensor:
        """``beta_tilde_t = beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t)``: ``(T,)``, 0 at ``t = 0``.

        The variance of the true reverse step ``q(x_{t-1} | x_t, x_0)``.
        """
        return self.betas * (1 - self.alpha_bars_prev) / (1 - self.alpha_bars)

    def snr(self, t: Tensor) -> Tensor:
        """The signal-to-noise ratio ``alpha_bar_t / (1 - alpha_bar_t)`` of ``x_t``.

        ``t (B,)`` int -> ``(B,)`` float64 on the CPU.

        It falls as ``t`` grows: the forward process destroys the signal.
        """
        ab = self.alpha_bars[_check_timesteps(self, t).cpu()]
        return ab / (1 - ab)

    def __repr__(self) -> str:
        return (
            f"NoiseSchedule({self.kind!r}, T={self.steps}, beta {self.betas[0]:.2e} -> {self.betas[-1]:.2e}, "
            f"alpha_bar_T-1 = {self.alpha_bars[-1]:.2e})"
        )


def noise_schedule(
    kind: str = "linear",
    steps: int = 1000,
    *,
    beta_start: float | None = None,
    beta_end: float | None = None,
    cosine_offset: float = 0.008,
) -> NoiseSchedule:
    """A :class:`NoiseSchedule` of ``steps`` (T) steps.

    - ``"linear"`` (Ho et al., 2020): betas evenly spaced from ``beta_start``
      to ``beta_end``, by default 1e-4 and 0.02 *scaled by 1000 / T*, as
      Nichol & Dhariwal's code does. The paper's values are for T = 1000; the
      scaling keeps the sum of the betas, hence ``alpha_bar`` at the last step
      (about exp(-sum beta) = 4e-5), roughly the same for other T, so that
      ``x_{T-1}`` is still close to pure noise. Betas are capped at 0.999.
    - ``"cosine"`` (Nichol & Dhariwal, 2021): ``alpha_bar`` follows
      ``f(t) / f(0)`` with ``f(t) = cos^2(pi/2 (t/T + s) / (1 + s))``, ``s =
      cosine_offset``: it destroys information more slowly at the start than
      the linear schedule, which suits small images. ``beta_t = 1 -
      alpha_bar_t / alpha_bar_{t-1}``, clipped at 0.999 (the last step would
      otherwise be exactly 1).
    """
    if kind not in SCHEDULES:
        raise ValueError(f"Unknown noise schedule {kind!r}; choose one of {SCHEDULES}.")
    if _whole(steps) is None or steps < 1:
        raise ValueError(f"steps (T) must be a positive integer; got {steps!r}.")
    steps = _whole(steps)
    if kind == "linear":
        scale = 1000 / steps
        start = beta_start if beta_start is not None else 1e-4 * scale
        end = beta_end if beta_end is not None else 0.02 * scale
        if not 0 < start <= end:
            raise ValueError(
                f"Linear schedules need 0 < beta_start <= beta_end; got {start} and {end}."
            )
        betas = torch.linspace(start, end, steps, dtype=torch.float64)
    else:
        if beta_start is not None or beta_end is not None:
            raise ValueError(
                "beta_start and beta_end are for the linear schedule; the cosine one has none."
            )
        if cosine_offset < 0:
            raise ValueError(f"cosine_offset must be >= 0; got {cosine_offset}.")
        u = torch.arange(steps + 1, dtype=torch.float64) / steps  # t / T for t = 0..T
        f = torch.cos((u + cosine_offset) / (1 + cosine_offset) * math.pi / 2) ** 2
        betas = 1 - f[1:] / f[:-1]  # 0-based step t goes from f(t/T) to f((t+1)/T)
    capped = int((betas > MAX_BETA).sum())
    if capped > 1:  # the cosine schedule caps its last beta by design; more means T is too small
        warnings.warn(
            f"noise_schedule({kind!r}, {steps}): {capped} of the {steps} betas are capped at "
            f"{MAX_BETA}, so those steps erase the signal almost at once. Use the 'cosine' "
            f"schedule, or T >= 50 steps.",
            stacklevel=2,
        )
    betas = betas.clamp(max=MAX_BETA)
    alphas = 1 - betas
    alpha_bars = torch.cumprod(alphas, dim=0)
    return NoiseSchedule(kind, betas, alphas, alpha_bars)


# ---------------------------------------------------------------- the forward process


def _whole(n: object) -> int | None:
    """``n`` as an int if it is a whole number (a Python or numpy integer, not a bool), else None."""
    return int(n) if isinstance(n, numbers.Integral) and not isinstance(n, bool) else None


def _check_timesteps(schedule: NoiseSchedule, t: Tensor, batch: int | None = None) -> Tensor:
    """``t`` as an index tensor, after checking its dtype, shape and range."""
    if (
        not isinstance(t, Tensor)
        or t.dtype.is_floating_point
        or t.dtype == torch.bool
        or t.dim() != 1
    ):
        what = (
            f"{t.dtype} tensor of shape {tuple(t.shape)}"
            if isinstance(t, Tensor)
            else type(t).__name__
        )
        raise ValueError(f"Timesteps t must be an integer tensor of shape (B,); got a {what}.")
    if batch is not None and len(t) != batch:
        raise ValueError(
            f"Expected one timestep per sample, shape ({batch},); got {tuple(t.shape)}."
        )
    # the range is checked where it is free: on a GPU it would wait for the device at every call
    if t.device.type == "cpu" and len(t) and (t.min() < 0 or t.max() >= schedule.steps):
        raise ValueError(
            f"Timesteps are 0-based and must lie in [0, {schedule.steps - 1}]; "
            f"got values from {t.min().item()} to {t.max().item()}."
        )
    return t.long()


def _per_sample(values: Tensor, t: Tensor, x: Tensor) -> Tensor:
    """``values[t]`` shaped ``(B, 1, 1, ...)`` to broadcast over a batch ``x`` of shape ``(B, ...)``.

    ``values (T,)`` float64 on the CPU is cast to ``x``'s dtype and moved to its
    device first (some devices have no float64), then indexed there.
    """
    return values.to(x.device, x.dtype)[t.to(x.device)].view(-1, *([1] * (x.dim() - 1)))


def q_sample(schedule: NoiseSchedule, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
    """Jump straight to step ``t`` of the forward process: ``x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) noise``.

    ``x0 (B, ...)`` clean data in diffusion space; ``t (B,)`` int 0-based
    timesteps; ``noise`` like ``x0``, standard normal. Returns ``x_t`` like ``x0``.
    """
    if x0.dim() < 1:
        raise ValueError("x0 must be a batch (B, ...); got a scalar.")
    t = _check_timesteps(schedule, t, batch=len(x0))
    if noise.shape != x0.shape:
        raise ValueError(
            f"noise must have the shape of x0, {tuple(x0.shape)}; got {tuple(noise.shape)}."
        )
    signal = _per_sample(schedule.alpha_bars.sqrt(), t, x0)
    # 1 - ab in float64: see NoiseSchedule
    noise_scale = _per_sample((1 - schedule.alpha_bars).sqrt(), t, x0)
    return signal * x0 + noise_scale * noise


# ---------------------------------------------------------------- the training objective


def _null_label(model: nn.Module) -> int:
    n_classes = getattr(model, "n_classes", None)
    if n_classes is None:
        raise ValueError(
            "Labels were given, but the model has no n_classes: it is unconditional. "
            "Build a conditional model (n_classes=...) to use labels."
        )
    return int(n_classes)


def null_condition(model: nn.Module, labels: Tensor) -> Tensor:
    """The "no condition" input shaped like ``labels``: the null label, or the model's own (empty captions)."""
    if hasattr(model, "null_condition"):
        return model.null_condition(labels)
    return torch.full_like(labels, _null_label(model))


def diffusion_loss(
    model: nn.Module,
    schedule: NoiseSchedule,
    x0: Tensor,
    labels: Tensor | None = None,
    p_uncond: float = 0.1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The simplified DDPM loss: ``E ||eps - model(x_t, t, labels)||^2``, averaged over pixels.

    ``x0 (B, C, H, W)`` clean data in diffusion space ([-1, 1]); for each
    sample a timestep ``t`` is drawn uniformly from ``0..T-1`` and noise ``eps
    ~ N(0, I)``. Ho et al. found this unweighted noise-prediction loss gives
    better samples than the weighted ELBO. A model predicting 0 scores 1, the
    variance of ``eps``.

    ``labels (B,)``: each is replaced by the null label ``model.n_classes``
    with probability ``p_uncond``, so the same model learns the unconditional
    prediction as well (classifier-free guidance). ``generator`` (on the
    CPU or on ``x0``'s device) makes the draws reproducible.
    Returns a scalar: mean squared error per pixel (in squared diffusion-space units).
    """
    if not 0.0 <= p_uncond <= 1.0:
        raise ValueError(f"p_uncond is a probability; got {p_uncond}.")
    check_signed_images(x0, "diffusion_loss")
    draw = {
        "generator": generator,
        "device": generator.device if generator is not None else x0.device,
    }
    t = torch.randint(0, schedule.steps, (len(x0),), **draw).to(x0.device)
    noise = torch.randn(x0.shape, **draw).to(x0.device, x0.dtype)
    if labels is not None:
        drop = torch.rand(len(labels), **draw).to(labels.device) < p_uncond
        drop = drop.view(-1, *[1] * (labels.dim() - 1))  # (B, 1, ...) drops a whole caption at once
        labels = torch.where(drop, null_condition(model, labels), labels)
    return F.mse_loss(model(q_sample(schedule, x0, t, noise), t, labels), noise)


# ---------------------------------------------------------------- sampling


def guided_epsilon(
    model: nn.Module, x_t: Tensor, t: Tensor, labels: Tensor | None, guidance: float = 1.0
) -> Tensor:
    """The noise prediction under classifier-free guidance: ``eps_u + s (eps_c - eps_u)``.

    ``eps_c = model(x_t, t, labels)`` is the conditional prediction and
    ``eps_u`` the unconditional one (null labels); ``s = guidance``:

    - ``s = 1``: the plain conditional model (one forward pass);
    - ``s = 0``: the unconditional model, labels ignored (one forward pass);
    - ``s > 1``: pushed further towards the class, trading diversity for fidelity.

    Ho & Salimans write ``(1 + w) eps_c - w eps_u``: their ``w`` is ``s - 1``.
    With ``labels=None`` the model is called once, unconditionally, and
    ``guidance`` is ignored. Shapes: ``x_t (B, C, H, W)``, ``t (B,)``, ``labels (B,)``.
    """
    if labels is None:
        return model(x_t, t, None)
    if guidance == 1.0:
        return model(x_t, t, labels)
    null = null_condition(model, labels)
    if guidance == 0.0:
        return model(x_t, t, null)
    # one forward pass on a double batch: conditional first, then unconditional
    eps = model(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([labels, null]))
    eps_c, eps_u = eps.chunk(2)
    return eps_u + guidance * (eps_c - eps_u)


def _predict_x0_and_eps(x: Tensor, eps: Tensor, ab: float, clip_x0: bool) -> tuple[Tensor, Tensor]:
    """``x0_hat = (x_t - sqrt(1 - ab) eps) / sqrt(ab)``, optionally clipped to [-1, 1]; ``ab`` = alpha_bar_t.

    After clipping, ``eps`` is recomputed from the clipped ``x0_hat``, so the
    pair stays consistent with ``x_t = sqrt(ab) x0_hat + sqrt(1 - ab) eps``:
    DDPM and DDIM (eta = 1) then take exactly the same step.
    """
    x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
    if clip_x0:
        x0 = x0.clamp(-1.0, 1.0)
        eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
    return x0, eps


def ddpm_step(
    schedule: NoiseSchedule, x_t: Tensor, eps: Tensor, t: int, noise: Tensor, clip_x0: bool = False
) -> Tensor:
    """One ancestral step, ``x_t -> x_{t-1}``, from the model's noise prediction ``eps``.

    ``x_{t-1} = mu + sqrt(beta_tilde_t) noise``, where ``mu`` is the mean of
    the true posterior ``q(x_{t-1} | x_t, x0_hat)`` at the predicted clean
    image ``x0_hat``, and ``beta_tilde_t`` its variance (0 at ``t = 0``: the
    last step adds no noise). ``t``: the 0-based timestep of ``x_t``;
    ``noise``: standard normal, like ``x_t``. ``clip_x0``: clip ``x0_hat``
    to [-1, 1] first. A pure function: the same inputs give the same output.
    """
    # Python floats from the float64 schedule
    beta, alpha = (schedule.betas[t].item(), schedule.alphas[t].item())
    ab, ab_prev = schedule.alpha_bars[t].item(), schedule.alpha_bars_prev[t].item()
    x0, eps = _predict_x0_and_eps(x_t, eps, ab, clip_x0)
    # the posterior mean: a mix of the predicted x0 and the current x_t
    mean = (math.sqrt(ab_prev) * beta / (1 - ab)) * x0 + (
        math.sqrt(alpha) * (1 - ab_prev) / (1 - ab)
    ) * x_t
    return mean + math.sqrt(schedule.posterior_variances[t].item()) * noise


def ddim_step(
    x_t: Tensor,
    eps: Tensor,
    ab_t: float,
    ab_prev: float,
    eta: float = 0.0,
    noise: Tensor | None = None,
    clip_x0: bool = False,
) -> Tensor:
    """One DDIM step from the noise level ``ab_t`` (alpha_bar of x_t) to the level ``ab_prev`` (less noise).

        x0_hat = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t)
        x_prev = sqrt(ab_prev) x0_hat + sqrt(1 - ab_prev - sigma^2) eps + sigma noise,
        sigma  = eta sqrt((1 - ab_prev) / (1 - ab_t)) sqrt(1 - ab_t / ab_prev).

    ``eta = 0`` needs no ``noise``: the step is deterministic. ``ab_prev = 1``
    (after the last visited step) returns ``x0_hat``. ``clip_x0``: clip
    ``x0_hat`` to [-1, 1] first. A pure function of its inputs.
    """
    x0, eps = _predict_x0_and_eps(x_t, eps, ab_t, clip_x0)
    sigma = 0.0
    if eta > 0:
        if not 0 < ab_t <= ab_prev <= 1:
            raise ValueError(
                f"A DDIM step goes to less noise: it needs 0 < ab_t <= ab_prev <= 1; got ab_t = {ab_t}, "
                f"ab_prev = {ab_prev}."
            )
        sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev))
    direction = math.sqrt(max(1 - ab_prev - sigma**2, 0.0))  # max: rounding when eta = 1
    x_prev = math.sqrt(ab_prev) * x0 + direction * eps
    if sigma > 0:
        if noise is None:
            raise ValueError(
                f"A DDIM step with eta = {eta} draws noise: pass noise=torch.randn_like(x_t)."
            )
        x_prev = x_prev + sigma * noise
    return x_prev


class _Sampling:
    """What both samplers share: eval mode and no gradients, seeded noise, and the output range."""

    def __init__(
        self,
        model: nn.Module,
        n: int,
        shape: tuple[int, ...],
        labels: Tensor | int | None,
        seed: int | None,
        device: str | torch.device | None,
    ):
        if n < 1:
            raise ValueError(f"n (the number of samples) must be at least 1; got {n}.")
        self.model, self.n, self.shape = model, n, tuple(shape)
        self.device = torch.device(device) if device is not None else device_of(model)
        if hasattr(model, "conditions"):  # e.g. caption tokens (n, L)
            self.labels = model.conditions(labels, n, self.device)
        else:
            self.labels = class_labels(labels, n, self.device)
        # Noise is drawn on the CPU from a private generator: the same seed gives the same samples on any device
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None

    def noise(self) -> Tensor:
        return torch.randn((self.n, *self.shape), generator=self.generator).to(self.device)

    def __enter__(self) -> _Sampling:
        self.was_training = self.model.training
        self.model.eval()
        self.no_grad = torch.no_grad()
        self.no_grad.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.no_grad.__exit__(*exc)
        self.model.train(self.was_training)


def _run(
    model: nn.Module,
    schedule: NoiseSchedule,
    timesteps: list[int],
    n: int,
    shape: tuple[int, ...],
    labels: Tensor | int | None,
    guidance: float,
    seed: int | None,
    device: str | torch.device | None,
    step: Callable[[Tensor, Tensor, int, Callable[[], Tensor]], Tensor],
    keep_all: bool,
) -> Tensor:
    """The one sampling loop: from noise, visit ``timesteps`` in reverse, each time ``x = step(x, eps, i, noise)``.

    Returns ``(len(timesteps) + 1, n, *shape)`` in the model's space, on the CPU: ``x`` before the first
    step and after each one; or, without ``keep_all``, only the last, ``(1, n, *shape)``.
    """
    with _Sampling(model, n, shape, labels, seed, device) as s:
        x = s.noise()
        kept = [x.cpu()] if keep_all else []
        for i in reversed(range(len(timesteps))):
            t = torch.full((n,), timesteps[i], device=s.device, dtype=torch.long)
            eps = guided_epsilon(model, x, t, s.labels, guidance)
            x = step(x, eps, i, s.noise)
            if keep_all:
                kept.append(x.cpu())
        return torch.stack(kept) if keep_all else x.cpu()[None]


def _unit(x: Tensor) -> Tensor:
    """Diffusion space [-1, 1] -> images in [0, 1], clipped."""
    return ((x + 1) / 2).clamp(0.0, 1.0)


def ddpm_sample(
    model: nn.Module,
    schedule: NoiseSchedule,
    n: int,
    shape: tuple[int, ...],
    labels: Tensor | int | None = None,
    guidance: float = 1.0,
    seed: int | None = None,
    device: str | torch.device | None = None,
    clip_x0: bool = True,
    to_unit: bool = True,
) -> Tensor:
    """``n`` samples by ancestral sampling (Ho et al., 2020): T reverse steps from ``x_{T-1} ~ N(0, I)``.

    Each step draws ``x_{t-1} ~ N(mu, beta_tilde_t I)``, where ``mu`` is the
    mean of the true posterior ``q(x_{t-1} | x_t, x0_hat)`` at the predicted
    clean image ``x0_hat``, and ``beta_tilde_t`` its variance. (Ho et al.
    found ``beta_t`` about as good; ``beta_tilde`` is the variance DDIM with
    ``eta = 1`` uses, so the two samplers agree.) The last step adds no noise.

    ``shape``: one sample's shape, ``(C, H, W)``. ``labels``: an int or
    ``(n,)`` for a conditional model, with ``guidance`` as in
    :func:`guided_epsilon`. ``seed`` fixes every random draw (a private
    generator; the global one is untouched). ``device``: where the model runs,
    by default where its parameters are. ``clip_x0``: clip ``x0_hat`` to the
    data's range [-1, 1] (the model's space); turn off for data not in [-1, 1].
    Returns ``(n, *shape)`` on the CPU, in [0, 1] with ``to_unit`` (else the
    model's space, unclipped). :func:`ddpm_trajectory` returns every step.
    """
    last = _ddpm(
        model, schedule, n, shape, labels, guidance, seed, device, clip_x0, keep_all=False
    )[-1]
    return _unit(last) if to_unit else last


def ddpm_trajectory(
    model: nn.Module,
    schedule: NoiseSchedule,
    n: int,
    shape: tuple[int, ...],
    labels: Tensor | int | None = None,
    guidance: float = 1.0,
    seed: int | None = None,
    device: str | torch.device | None = None,
    clip_x0: bool = True,
) -> Tensor:
    """Every state of :func:`ddpm_sample`'s chain: ``(T + 1, n, *shape)``, the noise first, in the model's space.

    The arguments as in :func:`ddpm_sample`; its samples are the last frame (mapped to [0, 1]).
    """
    return _ddpm(model, schedule, n, shape, labels, guidance, seed, device, clip_x0, keep_all=True)


def _ddpm(
    model, schedule, n, shape, labels, guidance, seed, device, clip_x0, keep_all: bool
) -> Tensor:
    def step(x: Tensor, eps: Tensor, i: int, noise: Callable[[], Tensor]) -> Tensor:
        return ddpm_step(schedule, x, eps, i, noise(), clip_x0)

    return _run(
        model,
        schedule,
        list(range(schedule.steps)),
        n,
        shape,
        labels,
        guidance,
        seed,
        device,
        step,
        keep_all,
    )


def ddim_timesteps(schedule: NoiseSchedule, steps: int) -> Tensor:
    """The ``steps`` timesteps DDIM visits, ascending: evenly spaced from 0 to ``T - 1``, both included.

    Including ``T - 1`` makes sampling start from the noisiest step, where
    ``x ~ N(0, I)`` is right. With ``steps = T`` these are all timesteps.
    Returns an int64 tensor ``(steps,)``.
    """
    if _whole(steps) is None or not 1 <= steps <= schedule.steps:
        raise ValueError(
            f"DDIM steps must be an integer from 1 to T = {schedule.steps}; got {steps!r}."
        )
    steps = _whole(steps)
    if steps == 1:
        return torch.tensor([schedule.steps - 1])
    ts = torch.linspace(0, schedule.steps - 1, steps, dtype=torch.float64).round().long()
    return ts


def ddim_sample(
    model: nn.Module,
    schedule: NoiseSchedule,
    n: int,
    shape: tuple[int, ...],
    steps: int = 50,
    eta: float = 0.0,
    labels: Tensor | int | None = None,
    guidance: float = 1.0,
    seed: int | None = None,
    device: str | torch.device | None = None,
    clip_x0: bool = True,
    to_unit: bool = True,
) -> Tensor:
    """``n`` samples with DDIM (Song et al., 2020) in ``steps`` steps (:func:`ddim_timesteps`).

    From ``t`` to the previous visited step ``p`` (``alpha_bar_{-1} = 1`` after the last):

        x_p = sqrt(ab_p) x0_hat + sqrt(1 - ab_p - sigma^2) eps_hat + sigma z,
        sigma = eta sqrt((1 - ab_p) / (1 - ab_t)) sqrt(1 - ab_t / ab_p).

    ``eta = 0`` is deterministic given ``x_{T-1}`` (an ODE-like map from noise
    to images); ``eta = 1`` with ``steps = T`` is exactly :func:`ddpm_sample`
    (sigma^2 = beta_tilde_t), the same draws in the same order, so the same
    seed gives the same samples up to rounding. The model was trained on every
    timestep, yet can be sampled on a few: its ``x0_hat`` does not care how
    far the next step is.

    Other arguments and the return value as in :func:`ddpm_sample`;
    :func:`ddim_trajectory` returns every step.
    """
    last = _ddim(
        model,
        schedule,
        n,
        shape,
        steps,
        eta,
        labels,
        guidance,
        seed,
        device,
        clip_x0,
        keep_all=False,
    )[-1]
    return _unit(last) if to_unit else last


def ddim_trajectory(
    model: nn.Module,
    schedule: NoiseSchedule,
    n: int,
    shape: tuple[int, ...],
    steps: int = 50,
    eta: float = 0.0,
    labels: Tensor | int | None = None,
    guidance: float = 1.0,
    seed: int | None = None,
    device: str | torch.device | None = None,
    clip_x0: bool = True,
) -> Tensor:
    """Every state of :func:`ddim_sample`'s chain: ``(steps + 1, n, *shape)``, the noise first, in the model's space.

    The arguments as in :func:`ddim_sample`; its samples are the last frame (mapped to [0, 1]).
    """
    return _ddim(
        model,
        schedule,
        n,
        shape,
        steps,
        eta,
        labels,
        guidance,
        seed,
        device,
        clip_x0,
        keep_all=True,
    )


def _ddim(
    model, schedule, n, shape, steps, eta, labels, guidance, seed, device, clip_x0, keep_all: bool
) -> Tensor:
    if eta < 0:
        raise ValueError(
            f"eta must be >= 0 (0: deterministic DDIM, 1: DDPM-like noise); got {eta}."
        )
    ts = ddim_timesteps(schedule, steps).tolist()

    def step(x: Tensor, eps: Tensor, i: int, noise: Callable[[], Tensor]) -> Tensor:
        ab_t = schedule.alpha_bars[ts[i]].item()
        ab_prev = schedule.alpha_bars[ts[i - 1]].item() if i > 0 else 1.0
        # a noise draw only when the step uses one (eta > 0), in the order DDPM draws them
        return ddim_step(x, eps, ab_t, ab_prev, eta, noise() if eta > 0 else None, clip_x0)

    return _run(model, schedule, ts, n, shape, labels, guidance, seed, device, step, keep_all)
