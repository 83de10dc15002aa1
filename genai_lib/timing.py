"""Comparing speeds honestly: interleaved repeats, their medians, and their spread.

A laptop or a shared machine is noisy in bursts: a backup starts, a browser
tab wakes up, the CPU warms and slows down. One timing of A and then one of B
can differ by 10% for no reason that has to do with A or B. So:

- run A, B, C, then A, B, C again, and so on (:func:`interleaved`), so that a
  noisy minute hits every contestant alike;
- report each one's median with its range over the repeats (:class:`Spread`);
- call a ratio real only when the ranges do not overlap (:func:`speed_ratio`),
  and otherwise say "no measurable difference here" (:func:`compare_speeds`).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Spread:
    """The median of some repeated measurements and their range."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if len(values) == 0:
            raise ValueError("Spread.of needs at least one measurement.")
        return cls(statistics.median(values), min(values), max(values), len(values))

    def overlaps(self, other: Spread) -> bool:
        return self.low <= other.high and other.low <= self.high

    def __str__(self) -> str:
        return f"{self.median:,.0f} (range {self.low:,.0f}-{self.high:,.0f}, {self.n} runs)"


def interleaved(runs: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Call every function of ``runs`` once per round, for ``repeats`` rounds: ``{name: [one value per round]}``.

    Each function measures once and returns a number (tokens per second,
    say). Interleaving puts each round's noise on every contestant alike.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}.")
    results: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            results[name].append(float(run()))
    return results


def speed_ratio(faster: Sequence[float], slower: Sequence[float]) -> float | None:
    """The ratio of the medians, ``median(faster) / median(slower)``, or ``None`` if the ranges overlap.

    Overlapping ranges mean the repeats cannot tell the two apart: any ratio
    quoted from them would be noise.
    """
    a, b = Spread.of(faster), Spread.of(slower)
    return None if a.overlaps(b) else a.median / b.median


def compare_speeds(name_a: str, a: Sequence[float], name_b: str, b: Sequence[float]) -> str:
    """One sentence comparing two sets of speeds (higher is faster), true to what the repeats show."""
    ratio = speed_ratio(a, b)
    if ratio is None:
        return (
            f"{name_a} {Spread.of(a)} against {name_b} {Spread.of(b)}: the ranges overlap, "
            f"so no measurable difference here"
        )
    faster, slower, r = (name_a, name_b, ratio) if ratio > 1 else (name_b, name_a, 1 / ratio)
    return (
        f"{name_a} {Spread.of(a)} against {name_b} {Spread.of(b)}: "
        f"{faster} is {r:.2f}x as fast as {slower} (the ranges do not overlap)"
    )
