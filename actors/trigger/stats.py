"""The statistics Chapter 13 judges by: intervals, tests, proper scores, calibration, churn.

Pure functions of plain numbers, each checked against hand-computed values in the tests.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence


def wilson_interval(hits: int, n: int, level: float) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (well-behaved at 0 and n hits).

    With no trials the interval is the whole [0, 1].
    """
    if not 0 <= hits <= n:
        msg = f"hits must lie in [0, n={n}], got {hits}"
        raise ValueError(msg)
    if not 0 < level < 1:
        msg = f"confidence level must lie in (0, 1), got {level}"
        raise ValueError(msg)
    if n == 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf((1 + level) / 2)
    p = hits / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def binomial_sf(hits: int, n: int, p: float) -> float:
    """P(X >= hits) for X ~ Binomial(n, p): the one-sided p-value of "better than chance"."""
    if not 0 <= hits <= n:
        msg = f"hits must lie in [0, n={n}], got {hits}"
        raise ValueError(msg)
    if not 0 <= p <= 1:
        msg = f"probability must lie in [0, 1], got {p}"
        raise ValueError(msg)
    if hits == 0:
        return 1.0
    total = math.fsum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(hits, n + 1))
    return min(1.0, total)


def binomial_cdf(hits: int, n: int, p: float) -> float:
    """P(X <= hits) for X ~ Binomial(n, p): the one-sided p-value of "worse than claimed"."""
    if hits >= n:
        return 1.0
    return max(0.0, 1.0 - binomial_sf(hits + 1, n, p))


def pool_brier(confidences: Sequence[float], hit_index: int | None, mod: int) -> float:
    """The multi-class Brier score of a pool over all `mod` values (0 best, 2 worst).

    The pool gives its values their confidences; the mass it leaves unassigned (1 - sum) is
    spread evenly over the `mod - len(pool)` values it does not name, so the forecast is a full
    distribution and the score is proper. `hit_index` is the drawn value's position in the
    pool, None when the pool missed it.
    """
    n = len(confidences)
    if n > mod:
        msg = f"a pool of {n} values cannot be drawn from mod {mod}"
        raise ValueError(msg)
    mass = min(1.0, math.fsum(confidences))
    others = mod - n
    rest = (1.0 - mass) / others if others else 0.0
    named = math.fsum(
        (c - (1.0 if i == hit_index else 0.0)) ** 2 for i, c in enumerate(confidences)
    )
    unnamed = others * rest * rest
    if hit_index is None and others:
        # The drawn value is one of the unnamed: its term is (rest - 1)^2, not rest^2.
        unnamed += (rest - 1.0) ** 2 - rest * rest
    return named + unnamed


def expected_calibration_error(pairs: Sequence[tuple[float, bool]], bins: int) -> float:
    """ECE of (stated probability, outcome) pairs over `bins` equal-width bins of [0, 1].

    Sum over bins of (share of pairs in the bin) x |mean probability - frequency of outcomes|.
    A probability of exactly 1 falls in the last bin. No pairs: 0.
    """
    if bins < 1:
        msg = f"bins must be at least 1, got {bins}"
        raise ValueError(msg)
    if not pairs:
        return 0.0
    sums = [0.0] * bins
    outcomes = [0] * bins
    counts = [0] * bins
    for prob, outcome in pairs:
        b = min(bins - 1, max(0, int(prob * bins)))
        sums[b] += prob
        outcomes[b] += int(outcome)
        counts[b] += 1
    total = len(pairs)
    return math.fsum(
        (counts[b] / total) * abs(sums[b] / counts[b] - outcomes[b] / counts[b])
        for b in range(bins)
        if counts[b]
    )


def shannon_entropy(weights: Iterable[float]) -> float:
    """Entropy in bits of the normalised weights (0 for one value or none)."""
    values = [w for w in weights if w > 0]
    total = math.fsum(values)
    if total <= 0:
        return 0.0
    return -math.fsum((w / total) * math.log2(w / total) for w in values) + 0.0


def jaccard(a: Iterable[str], b: Iterable[str]) -> float:
    """|A & B| / |A | B| (shared over all); two empty sets are identical (1)."""
    left, right = set(a), set(b)
    union = left | right
    return 1.0 if not union else len(left & right) / len(union)


def relative_drop(before: float, after: float) -> float:
    """How much of `before` was lost: (before - after) / before, 0 when before is 0."""
    if before <= 0:
        return 0.0
    return (before - after) / before
