"""Checkers for chapter 02b (GANs on digits)."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from genai_lib.exercises import call, expect, passed


def check_fixed_training(train_fn: Callable[..., None], make_models: Callable[[], tuple[nn.Module, nn.Module]],
                         real_images: Tensor, steps: int, score: Callable[[nn.Module], float],
                         buggy_score: float) -> None:
    """Train fresh models with ``train_fn`` and compare ``score`` (FD-digits) with the buggy loop's."""
    generator, discriminator = make_models()
    g_before = [p.detach().clone() for p in generator.parameters()]
    d_before = [p.detach().clone() for p in discriminator.parameters()]
    call(train_fn, generator, discriminator, real_images, steps)
    expect(any(not torch.equal(a, b) for a, b in zip(g_before, generator.parameters())),
           "The generator's weights did not change: does its optimizer step after the generator's loss?")
    expect(any(not torch.equal(a, b) for a, b in zip(d_before, discriminator.parameters())),
           "The discriminator's weights did not change: does its optimizer step after its loss?")
    generator.eval()
    fd = score(generator)
    expect(fd < buggy_score / 2,
           f"FD-digits is {fd:.1f} after {steps} steps, against {buggy_score:.1f} for the buggy loop: not fixed yet. "
           "Check: one optimizer per network; fakes detached for the discriminator's step; the generator trained "
           "towards the label 1 (real); raw logits (no sigmoid) into binary_cross_entropy_with_logits.")
    passed(f"FD-digits {fd:.1f} after {steps} steps, against {buggy_score:.1f} for the buggy loop.")


def check_covered_classes(covered_fn: Callable[..., int]) -> None:
    """``covered_fn(predicted, n_classes=10, min_share=0.01)``: classes holding at least min_share of samples."""
    even = torch.arange(1000) % 10
    collapsed = torch.cat([torch.full((990,), 3), torch.arange(10)])   # 1 sample of every class, 991 threes
    half = torch.cat([torch.full((500,), 1), torch.full((480,), 7), torch.arange(20) % 10])
    got = [call(covered_fn, p) for p in (even, collapsed, half)]
    expect(all(isinstance(g, int) or (isinstance(g, Tensor) and g.numel() == 1) for g in got),
           "Return one whole number per call.")
    got = [int(g) for g in got]
    expect(got[0] == 10, f"Evenly spread predictions cover all 10 classes; yours says {got[0]}.")
    expect(got[1] == 1, f"990 threes and one sample of each other class: only class 3 holds 1% or more, so 1 class; "
                        f"yours says {got[1]}. Compare each class's *share* of the samples with min_share.")
    expect(got[2] == 2, f"Expected 2 classes above 1% (classes 1 and 7; the others hold 0.2% each); yours says {got[2]}. "
                        "Did you use minlength=n_classes in bincount, and count shares rather than samples?")
    passed("your coverage count matches on even, collapsed and two-class predictions.")


def check_fd_1d(fd_fn: Callable[[Tensor, Tensor], float]) -> None:
    """``fd_fn(a, b)`` for 1-D samples: (mu_a - mu_b)^2 + (sigma_a - sigma_b)^2."""
    from genai_lib.metrics import frechet_distance

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5000, generator=g) * 2 + 1, torch.randn(5000, generator=g) * 0.5 - 1
    got = call(fd_fn, a, b)
    expect(isinstance(got, (float, int)) or (isinstance(got, Tensor) and got.numel() == 1), "Return one number.")
    got = float(got)
    expect(abs(call(fd_fn, a, a)) < 1e-6, "The distance from a sample to itself must be 0.")
    library = frechet_distance(a[:, None], b[:, None])
    expect(abs(got - library) < 1e-3 * library + 1e-3,
           f"Yours gives {got:.4f}, the library's matrix formula {library:.4f}. In 1-D, Tr(S_a + S_b - 2 sqrt(S_a S_b)) "
           "is (sigma_a - sigma_b)^2: standard deviations, not variances.")
    passed(f"your 1-D FD {got:.4f} equals the general formula's {library:.4f}.")
