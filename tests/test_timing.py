"""Speed comparisons say a ratio only when interleaved repeats separate the two."""

import pytest

from genai_lib.timing import Spread, compare_speeds, interleaved, speed_ratio


def test_interleaved_runs_every_contestant_once_per_round():
    calls = []
    results = interleaved(
        {"a": lambda: calls.append("a") or 1.0, "b": lambda: calls.append("b") or 2.0}, 3
    )
    # not a, a, a, b, b, b: a noisy minute would hit one of them only
    assert calls == ["a", "b"] * 3
    assert results == {"a": [1.0] * 3, "b": [2.0] * 3}
    with pytest.raises(ValueError, match="at least 1"):
        interleaved({"a": lambda: 1.0}, 0)


def test_a_ratio_is_given_only_when_the_ranges_separate():
    assert speed_ratio([110, 120, 115], [100, 95, 101]) == pytest.approx(115 / 100)
    # 1.05x between the medians, but the runs overlap: that is noise, not a speed-up
    assert speed_ratio([24_270, 22_000, 25_000], [23_105, 24_781, 21_900]) is None
    assert "no measurable difference here" in compare_speeds(
        "compiled", [24_270, 22_000, 25_000], "eager", [23_105, 24_781, 21_900]
    )
    said = compare_speeds("eager", [100, 95, 101], "bf16", [110, 120, 115])
    assert "bf16 is 1.15x as fast as eager" in said and "do not overlap" in said


def test_spread_reports_median_and_range():
    s = Spread.of([3.0, 1.0, 2.0])
    assert (s.median, s.low, s.high, s.n) == (2.0, 1.0, 3.0, 3)
    assert str(s) == "2 (range 1-3, 3 runs)"
    with pytest.raises(ValueError):
        Spread.of([])
