"""Checkers for chapter 02b (GANs on digits)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from genai_lib.exercises import ExerciseError, call, expect, passed

# ------------------------------------------------------ exercise 1: the fixed training loop
#
# The check has two parts.
#
# 1. A probe: PROBE_STEPS steps of the learner's loop on fresh models, under a second. Hooks
#    record, in order, every optimizer step (and whether the gradients it uses were zeroed
#    since the last step), every gradient that reaches the generator's images, and the
#    gradient of the loss with respect to each logit the discriminator outputs. Each of the
#    four bugs leaves a mark there, whatever the training does afterwards:
#    - one optimizer for both networks: an optimizer holds parameters of both;
#    - fakes not detached for the discriminator: a gradient reaches the generator's images
#      before the discriminator's optimizer steps (or autograd refuses to go back twice);
#    - the generator trained towards the label "fake": in the generator's step, its loss
#      pushes the discriminator's logits on fakes *down*;
#    - probabilities fed to a from-logits loss: a binary cross-entropy on logits l with label
#      y has the gradient c (sigmoid(l) - y), affine in sigmoid(l); a sigmoid applied first
#      multiplies it by sigmoid'(l), which is not. The probe multiplies the discriminator's
#      logits by PROBE_SPREAD so that they spread over several units: at initialisation they
#      lie within about +-0.15, where every smooth function is nearly affine.
#    FD-digits alone cannot catch the first two. Measured over 3 seeds after 1,000 steps, a
#    loop that keeps only the one-optimizer bug reached FD-digits 28-39, and one that only
#    leaves the fakes attached (both gradients zeroed once per step) 26-55: as good as the
#    right loop. So the probe is what rejects them.
# 2. The measurement: train fresh models for max(steps, min_steps) steps from the buggy
#    loop's start, and require FD-digits at most half-way from uniform noise down to the
#    real-vs-real floor, both scored with the notebook's own score function. Measured with
#    chapter 02b's DCGAN on the 8x8 digits (floor 5.1, noise 125-132, so a threshold of about
#    67): after 1,000 steps the right loop scored 19.4-52.1 over 18 seeds. Loops that keep one
#    bug the probe catches scored, after 1,000 steps: sigmoid outputs into the from-logits
#    loss 195-263 (3 seeds), the generator trained towards "fake" 382-538 (3 seeds), and the
#    generator's gradients never zeroed 219-285 (2 seeds). After 300 steps (the notebook's
#    fast mode) the right loop scored 170-238 over 5 seeds, worse than noise, and after 600
#    steps 53-116 over 10: too few steps to tell a working loop from a broken one. Hence
#    MIN_STEPS = 1000 (about 15-20 s on one CPU core).

MIN_STEPS = 1000
PROBE_STEPS = 3
PROBE_SPREAD = 40.0
# Measured residuals (3 seeds): at most 3e-7 for right loops (float32 rounding), 0.42 or more
# for the sigmoid bug. 1e-3 sits between them with a factor of 400 on either side.
AFFINE_TOLERANCE = 1e-3

_LOSS_HINT = (
    "Check: one optimizer per network, each zeroed before its backward; fakes detached "
    "for the discriminator's step; the generator trained towards the label 1 (real); "
    "raw logits (no sigmoid) into binary_cross_entropy_with_logits."
)


class _SpreadLogits(nn.Module):
    """The discriminator with its logits times ``scale``: the same parameters, wider logits."""

    def __init__(self, discriminator: nn.Module, scale: float):
        super().__init__()
        self.inner, self.scale = discriminator, scale

    def forward(self, x: Tensor, *args, **kwargs) -> Tensor:
        return self.scale * self.inner(x, *args, **kwargs)


class _FixedImages(nn.Module):
    """A stand-in generator that returns given images in [-1, 1], to score a baseline alike."""

    def __init__(self, images: Tensor, latent_dim: int):
        super().__init__()
        self.latent_dim = latent_dim
        self.register_buffer("images", images.detach().cpu())
        self.anchor = nn.Parameter(torch.zeros(()))  # generate() reads the device from a parameter

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        g = torch.Generator().manual_seed(0)
        n, m = len(z), len(self.images)
        index = (
            torch.randperm(m, generator=g)[:n] if n <= m else torch.randint(m, (n,), generator=g)
        )
        return self.images[index].to(z.device)


def _run(
    train_fn: Callable[..., None],
    generator: nn.Module,
    discriminator: nn.Module,
    real_images: Tensor,
    steps: int,
) -> None:
    """Call the learner's loop; turn the autograd errors that the bugs cause into hints."""
    try:
        call(train_fn, generator, discriminator, real_images, steps)
    except RuntimeError as err:
        message = str(err)
        if "backward through the graph a second time" in message:
            raise ExerciseError(
                "Autograd refused to backpropagate through the generator twice: the "
                "discriminator's loss went back into the generator and freed its graph. Detach "
                "the fakes for the discriminator's step (discriminator(fake.detach())): its loss "
                "must not reach the generator."
            ) from None
        if "modified by an inplace operation" in message:
            raise ExerciseError(
                "Autograd found the discriminator's weights changed since its output was "
                "computed: recompute discriminator(fake) after the discriminator's step, for the "
                "generator's loss."
            ) from None
        if "expected Float" in message or "Found dtype Long" in message:
            raise ExerciseError(
                "The labels are integers: make them floats, e.g. torch.ones(batch_size) "
                "(torch.full((b,), 1) makes int64 labels)."
            ) from None
        raise


def _real_rows(batch: Tensor, real_images: Tensor) -> Tensor:
    """Which images of ``batch`` (B, ...) are among ``real_images`` (M, ...): a boolean (B,)."""
    flat = batch.detach().float().flatten(1).cpu()
    distance = torch.cdist(flat, real_images.float().flatten(1).cpu())
    return distance.min(dim=1).values < 1e-5


def _affine_residual(grad: Tensor, logits: Tensor) -> float:
    """How far ``grad`` (n,) is from a sigmoid(logits) + b, relative to its size (0: affine)."""
    if len(grad) < 3:
        return 0.0
    p = torch.sigmoid(logits.double())
    design = torch.stack([p, torch.ones_like(p)], dim=1)
    coef = torch.linalg.lstsq(design, grad.double()[:, None]).solution
    residual = (grad.double() - (design @ coef)[:, 0]).norm()
    return (residual / grad.double().norm().clamp_min(1e-30)).item()


def _probe(
    train_fn: Callable[..., None],
    make_models: Callable[[], tuple[nn.Module, nn.Module]],
    real_images: Tensor,
) -> None:
    """Run PROBE_STEPS steps of the learner's loop under hooks; raise the first bug's hint."""
    generator, discriminator = make_models()
    spread = _SpreadLogits(discriminator, PROBE_SPREAD)
    g_params, d_params = list(generator.parameters()), list(discriminator.parameters())
    g_ids, d_ids = {id(p) for p in g_params}, {id(p) for p in d_params}
    # In order: ("step", "G" | "D" | "both", stale), ("g_grad",), ("d_grad", logits, real, grad)
    events: list[tuple] = []
    # Optimizer steps cut the run into segments. An optimizer should step on gradients from
    # the backward passes of its own segment only; first[p] is the segment of the oldest
    # gradient in p.grad.
    segment = [0]
    first = {id(p): 0 for p in g_params + d_params}

    def on_step(optimizer, args, kwargs):
        params = [p for group in optimizer.param_groups for p in group["params"] if id(p) in first]
        if not params:
            return
        has_g, has_d = any(id(p) in g_ids for p in params), any(id(p) in d_ids for p in params)
        stale = any(p.grad is not None and first[id(p)] < segment[0] for p in params)
        events.append(("step", "both" if has_g and has_d else "G" if has_g else "D", stale))
        segment[0] += 1

    def on_parameter(p):
        def hook(grad):  # runs before this backward adds grad into p.grad
            if p.grad is None or not p.grad.any():
                first[id(p)] = segment[0]

        return hook

    def on_discriminator(module, inputs, output):
        if output.requires_grad:
            logits, real = output.detach().flatten().clone(), _real_rows(inputs[0], real_images)
            output.register_hook(
                lambda g: events.append(("d_grad", logits, real, g.detach().flatten().clone()))
            )

    def on_generator(module, inputs, output):
        if output.requires_grad:
            output.register_hook(lambda g: events.append(("g_grad",)))

    handles = [
        register_optimizer_step_pre_hook(on_step),
        spread.register_forward_hook(on_discriminator),
        generator.register_forward_hook(on_generator),
        *[p.register_hook(on_parameter(p)) for p in g_params + d_params],
    ]
    try:
        _run(train_fn, generator, spread, real_images, PROBE_STEPS)
    finally:
        for handle in handles:
            handle.remove()
    _read_probe(events)


def _read_probe(events: list[tuple]) -> None:
    steps = [e[1] for e in events if e[0] == "step"]
    expect(
        "both" not in steps,
        "One optimizer holds the parameters of both networks, so each loss also moves the other "
        "player (the generator's loss trains the discriminator to be fooled). Give each network "
        "its own optimizer: opt_d over discriminator.parameters(), opt_g over "
        "generator.parameters().",
    )
    n_d, n_g = steps.count("D"), steps.count("G")
    expect(
        n_g >= PROBE_STEPS and n_d >= PROBE_STEPS,
        f"For steps={PROBE_STEPS} your loop made {n_d} discriminator and {n_g} generator "
        "optimizer steps; there should be one of each per step. Is a return, or an optimizer's "
        "step(), indented into the wrong block? Use torch.optim optimizers, one per network.",
    )
    reached_g, pending = False, []
    for event in events:
        if event[0] == "g_grad":
            reached_g = True
        elif event[0] == "d_grad":
            pending.append(event[1:])
        elif event[1] == "D":
            expect(
                not event[2],
                "When the discriminator's optimizer steps, .grad still holds gradients from an "
                "earlier backward (an earlier step, or the generator's loss, which also flows "
                "through the discriminator): its gradients add up. Call opt_d.zero_grad() right "
                "before the backward of its loss; backward() adds into .grad, it never "
                "replaces it.",
            )
            expect(
                not reached_g,
                "A gradient reached the generator before the discriminator's optimizer "
                "stepped: the discriminator's loss sends gradients into the generator. Detach "
                "the fakes for the discriminator's step (discriminator(fake.detach())). Left "
                "attached, the generator collects the gradient of a loss that rewards looking "
                "fake, unless its gradients happen to be zeroed in between; and autograd runs "
                "backward through the generator for nothing. (If you backpropagate both "
                "losses before stepping, step each optimizer right after its own loss.)",
            )
            expect(
                any(real.any() for logits, real, grad in pending),
                "The discriminator's loss never sees a real image: it needs both terms, real "
                "images labelled 1 and (detached) fakes labelled 0.",
            )
            for _logits, real, grad in pending:
                expect(
                    not real.any() or grad[real].mean() < 0,
                    "The discriminator's loss pushes its logits on *real* images down: it must "
                    "learn real -> 1 (label ones for the real batch).",
                )
                expect(
                    real.all() or grad[~real].mean() > 0,
                    "The discriminator's loss pushes its logits on *fake* images up: it must "
                    "learn fake -> 0 (label zeros for the fake batch).",
                )
            _expect_logit_loss(pending)
            reached_g, pending = False, []
        elif event[1] == "G":
            expect(
                not event[2],
                "When the generator's optimizer steps, .grad still holds gradients from an "
                "earlier backward: its gradients add up across steps. Call opt_g.zero_grad() "
                "right before the backward of its loss; backward() adds into .grad, it never "
                "replaces it.",
            )
            expect(
                reached_g,
                "The generator's loss does not reach the generator: in the generator's step, "
                "pass the fakes to the discriminator *without* detach, so the gradient flows "
                "back into G.",
            )
            for _logits, real, grad in pending:
                expect(
                    grad[~real].mean() < 0,
                    "The generator is trained towards the label 0 (fake): its loss pushes the "
                    "discriminator's logits on fakes down, which helps the discriminator. Train "
                    "it towards the label 1 (real): "
                    "binary_cross_entropy_with_logits(discriminator(fake), ones), that is "
                    "-log D(G(z)).",
                )
            _expect_logit_loss(pending)
            reached_g, pending = False, []


def _expect_logit_loss(pending: list[tuple[Tensor, Tensor, Tensor]]) -> None:
    for logits, real, grad in pending:
        for rows in (real, ~real):
            residual = _affine_residual(grad[rows], logits[rows])
            expect(
                residual < AFFINE_TOLERANCE,
                "The loss is not a binary cross-entropy on the discriminator's logits: its "
                f"gradient departs from c (sigmoid(logit) - label) by {residual:.0%}. "
                "binary_cross_entropy_with_logits applies the sigmoid itself: pass it the raw "
                "logits, not torch.sigmoid(...) of them (a sigmoid applied twice squashes every "
                "output into (0.5, 0.73) and shrinks the gradients).",
            )


def check_fixed_training(
    train_fn: Callable[..., None],
    make_models: Callable[[], tuple[nn.Module, nn.Module]],
    real_images: Tensor,
    steps: int,
    score: Callable[[nn.Module], float],
    buggy_score: float,
    *,
    min_steps: int = MIN_STEPS,
) -> None:
    """Check ``train_fn(generator, discriminator, real_images, steps)``: 02b's loop, bugs fixed.

    ``make_models()`` returns a fresh (generator, discriminator) pair, the same start at every
    call; ``real_images`` ``(N, C, H, W)`` are in [-1, 1]; ``score(generator)`` is FD-digits
    of its samples against held-out images; ``buggy_score`` is the buggy loop's score after
    ``steps`` steps. First a probe of a few steps looks for each bug's mark (see the comment
    above); then the loop trains fresh models for ``max(steps, min_steps)`` steps, and their
    FD-digits must be at most half-way from uniform noise down to real images, both scored
    with ``score`` itself.
    """
    _probe(train_fn, make_models, real_images)

    n_steps = max(steps, min_steps)
    print(
        f"No bug found in {PROBE_STEPS} probe steps. Now training your loop for {n_steps} "
        f"steps (at least {min_steps}: fewer do not tell a working loop from a broken one "
        "reliably)..."
    )
    generator, discriminator = make_models()
    g_before = [p.detach().clone() for p in generator.parameters()]
    d_before = [p.detach().clone() for p in discriminator.parameters()]
    g_ids = {id(p) for p in generator.parameters()}
    counts = {"G": 0, "D": 0}

    def count(optimizer, args, kwargs):
        ids = {id(p) for group in optimizer.param_groups for p in group["params"]}
        counts["G" if ids & g_ids else "D"] += 1

    handle = register_optimizer_step_pre_hook(count)
    try:
        _run(train_fn, generator, discriminator, real_images, n_steps)
    finally:
        handle.remove()
    expect(
        counts["G"] >= n_steps and counts["D"] >= n_steps,
        f"For steps={n_steps} your loop made {counts['D']} discriminator and {counts['G']} "
        "generator optimizer steps; there should be at least one of each per step. Does the "
        "loop run for range(steps)?",
    )
    expect(
        any(not torch.equal(a, b) for a, b in zip(g_before, generator.parameters())),
        "The generator's weights did not change: does its optimizer step after its loss?",
    )
    expect(
        any(not torch.equal(a, b) for a, b in zip(d_before, discriminator.parameters())),
        "The discriminator's weights did not change: does its optimizer step after its loss?",
    )
    _fd_verdict(generator, score, real_images, n_steps, steps, buggy_score)


def _fd_verdict(
    generator: nn.Module,
    score: Callable[[nn.Module], float],
    real_images: Tensor,
    n_steps: int,
    steps: int,
    buggy_score: float,
) -> None:
    """Pass if ``score(generator)`` is at most half-way from uniform noise down to real images."""
    generator.eval()
    fd = score(generator)
    latent_dim, n_images = generator.latent_dim, max(len(real_images), 1000)
    g = torch.Generator().manual_seed(0)
    noise = torch.rand((n_images, *real_images.shape[1:]), generator=g) * 2 - 1
    noise_fd = score(_FixedImages(noise, latent_dim))
    floor = score(_FixedImages(real_images, latent_dim))  # training images against held-out ones
    threshold = floor + (noise_fd - floor) / 2
    expect(
        fd <= threshold,
        f"FD-digits is {fd:.1f} after {n_steps} steps: not below {threshold:.1f}, half-way "
        f"from uniform noise ({noise_fd:.1f}) down to real images ({floor:.1f}). The buggy "
        f"loop scored {buggy_score:.1f} after {steps} steps. " + _LOSS_HINT,
    )
    passed(
        f"FD-digits {fd:.1f} after {n_steps} steps, below {threshold:.1f} (half-way from "
        f"uniform noise, {noise_fd:.1f}, to real images, {floor:.1f}); the buggy loop scored "
        f"{buggy_score:.1f} after {steps} steps."
    )


# ------------------------------------------------------ exercises 2 and 3


def _truncated_normal_std(threshold: float) -> float:
    """The standard deviation of N(0, 1) conditioned on |z| <= threshold."""
    phi = math.exp(-(threshold**2) / 2) / math.sqrt(2 * math.pi)
    mass = math.erf(threshold / math.sqrt(2))  # P(|z| <= threshold)
    return math.sqrt(1 - 2 * threshold * phi / mass)


def check_truncated_noise(noise_fn: Callable[..., Tensor]) -> None:
    """``noise_fn(n, latent_dim, threshold, generator)``: ``(n, latent_dim)`` noise, each value
    from N(0, 1) conditioned on ``|z| <= threshold``, drawn with ``generator``."""
    n, dim = 20_000, 8
    for threshold in (1.0, 2.0):
        z = call(noise_fn, n, dim, threshold, torch.Generator().manual_seed(0))
        expect(isinstance(z, Tensor), f"Return a tensor; got {type(z).__name__}.")
        expect(
            tuple(z.shape) == (n, dim),
            f"For n={n}, latent_dim={dim} return shape ({n}, {dim}); got {tuple(z.shape)}.",
        )
        z = z.detach().double()
        outside = (z.abs() > threshold + 1e-6).float().mean().item()
        expect(
            outside == 0,
            f"At threshold {threshold}, {outside:.1%} of your values lie outside "
            f"[-{threshold}, {threshold}]. Redrawing once is not enough: a redrawn value can "
            "land outside again. Redraw until none is left outside (a while loop over a mask).",
        )
        at_edge = (z.abs() > 0.999 * threshold).float().mean().item()
        expect(
            at_edge < 0.01,
            f"{at_edge:.0%} of your values sit at +-{threshold}: clamping piles every value "
            "beyond the threshold onto it. Redraw those values from N(0, 1) instead.",
        )
        want_std, std = _truncated_normal_std(threshold), z.std().item()
        uniform_std = threshold / math.sqrt(3)
        expect(
            abs(std - uniform_std) > 0.01,
            f"Your values look uniform on [-{threshold}, {threshold}] (std {std:.3f}). Draw "
            "from N(0, 1) and keep the values inside: the result is still bell-shaped, only "
            "its tails are cut off.",
        )
        expect(
            abs(z.mean().item()) < 0.01 and abs(std - want_std) < 0.01,
            f"At threshold {threshold} your values have mean {z.mean().item():.3f} and std "
            f"{std:.3f}; N(0, 1) cut at +-{threshold} has mean 0 and std {want_std:.3f}. "
            "Rescaling does not cut off the tails: draw from N(0, 1), then redraw the values "
            "outside.",
        )
    again = [
        call(noise_fn, 100, dim, 1.0, torch.Generator().manual_seed(3)).detach() for _ in range(2)
    ]
    expect(
        torch.equal(again[0], again[1]),
        "Two calls with generators seeded alike gave different noise: draw every random "
        "number with the generator argument, torch.randn(..., generator=generator), so that "
        "a seed fixes the samples.",
    )
    passed(
        f"every value inside the threshold, none piled at its edge, and the standard deviation "
        f"of a cut-off normal ({_truncated_normal_std(1.0):.3f} at threshold 1, "
        f"{_truncated_normal_std(2.0):.3f} at 2)."
    )


def check_fd_1d(fd_fn: Callable[[Tensor, Tensor], float]) -> None:
    """``fd_fn(a, b)`` for 1-D samples: (mu_a - mu_b)^2 + (sigma_a - sigma_b)^2."""
    from genai_lib.metrics import frechet_distance

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5000, generator=g) * 2 + 1, torch.randn(5000, generator=g) * 0.5 - 1
    got = call(fd_fn, a, b)
    expect(
        isinstance(got, (float, int)) or (isinstance(got, Tensor) and got.numel() == 1),
        "Return one number.",
    )
    got = float(got)
    expect(abs(call(fd_fn, a, a)) < 1e-6, "The distance from a sample to itself must be 0.")
    library = frechet_distance(a[:, None], b[:, None])
    with_variances = float((a.mean() - b.mean()) ** 2 + (a.var() - b.var()) ** 2)
    expect(
        abs(got - with_variances) > 1e-3 * with_variances,
        f"Yours gives {got:.4f}: that uses the variances. In 1-D, Tr(S_a + S_b - 2 sqrt(S_a S_b)) "
        "is (sigma_a - sigma_b)^2: standard deviations, not variances.",
    )
    expect(
        abs(got - library) < 1e-3 * library + 1e-3,
        f"Yours gives {got:.4f}, the library's matrix formula {library:.4f}. In 1-D the Fréchet "
        "distance is (mu_a - mu_b)^2 + (sigma_a - sigma_b)^2: both differences squared.",
    )
    passed(f"your 1-D FD {got:.4f} equals the general formula's {library:.4f}.")
