"""genai_lib.data.toy: the eight-Gaussians ring and the mode-coverage score."""

from __future__ import annotations

import math

import pytest
import torch

from genai_lib.data import eight_gaussians, mode_coverage, ring_centres


def test_ring_centres_lie_on_the_circle_evenly_spaced():
    centres = ring_centres(radius=3.0)
    assert centres.shape == (8, 2)
    torch.testing.assert_close(centres.norm(dim=1), torch.full((8,), 3.0))
    neighbours = (centres - centres.roll(1, dims=0)).norm(dim=1)  # chord of 45 degrees
    torch.testing.assert_close(neighbours, torch.full((8,), 2 * 3.0 * math.sin(math.pi / 8)))


def test_eight_gaussians_shape_and_determinism():
    a = eight_gaussians(1000, seed=3)
    assert a.shape == (1000, 2) and a.dtype == torch.float32
    torch.testing.assert_close(a, eight_gaussians(1000, seed=3))
    assert not torch.equal(a, eight_gaussians(1000, seed=4))


def test_eight_gaussians_modes_have_equal_weights_and_the_right_spread():
    n, std = 40_000, 0.05
    x = eight_gaussians(n, radius=2.0, std=std, seed=0)
    nearest = torch.cdist(x, ring_centres(2.0)).argmin(1)
    shares = torch.bincount(nearest, minlength=8).float() / n
    # Each share is a binomial proportion with p = 1/8: SE = sqrt(p (1-p) / n) = 0.0017; allow 5 SE
    assert (shares - 1 / 8).abs().max() < 5 * math.sqrt(1 / 8 * 7 / 8 / n)
    offsets = x - ring_centres(2.0)[nearest]
    # The sample std of 2n offsets has a relative SE of about 1 / sqrt(4n) = 0.25%; allow 2%
    assert abs(offsets.std().item() - std) < 0.02 * std


def test_true_samples_cover_all_eight_modes_with_99_percent_high_quality():
    n, std = 10_000, 0.02
    result = mode_coverage(eight_gaussians(n, std=std, seed=1), ring_centres(), std)
    assert result["modes_covered"] == 8
    # Within 3 std of the centre in 2-D: P = 1 - exp(-9/2) = 0.98889; SE = 0.001 at n = 10,000; allow 5 SE
    expected = 1 - math.exp(-4.5)
    assert abs(result["high_quality"] - expected) < 5 * math.sqrt(expected * (1 - expected) / n)
    assert sum(result["counts"]) == round(result["high_quality"] * n)


def test_a_collapsed_sample_set_covers_one_mode():
    std = 0.02
    collapsed = ring_centres()[2] + std * torch.randn(
        2000, 2, generator=torch.Generator().manual_seed(0)
    )
    result = mode_coverage(collapsed, ring_centres(), std)
    assert result["modes_covered"] == 1
    assert result["counts"][2] == sum(result["counts"])


def test_points_between_modes_are_neither_good_nor_covering():
    std = 0.02
    centres = ring_centres()
    between = (centres + centres.roll(1, dims=0)) / 2  # midpoints of neighbouring modes
    result = mode_coverage(between.repeat(100, 1), centres, std)
    assert result == {"modes_covered": 0, "high_quality": 0.0, "counts": [0] * 8}


def test_min_share_sets_the_coverage_threshold():
    std = 0.02
    centres = ring_centres()
    # 985 samples at mode 0 and 15 at mode 1: 1.5% of samples, above 0.1 / 8 = 1.25%, below 0.2 / 8 = 2.5%
    samples = torch.cat([centres[0].repeat(985, 1), centres[1].repeat(15, 1)])
    assert mode_coverage(samples, centres, std)["modes_covered"] == 2
    assert mode_coverage(samples, centres, std, min_share=0.2)["modes_covered"] == 1


def test_mode_coverage_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="shape"):
        mode_coverage(torch.zeros(10, 3), ring_centres(), 0.02)


def test_coverage_of_no_samples_is_refused():
    with pytest.raises(ValueError, match=r"at least one sample"):
        mode_coverage(torch.zeros(0, 2), ring_centres(), 0.02)
