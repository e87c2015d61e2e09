"""Interval, test, proper-score and calibration maths against hand-computed values."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from actors.trigger.stats import (
    binomial_sf,
    expected_calibration_error,
    jaccard,
    pool_brier,
    relative_drop,
    shannon_entropy,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("hits", "n", "level", "low", "high"),
    [
        # z = 1.959964; p = 0: centre = z^2/2n / (1 + z^2/n), half the same: [0, 0.16113].
        (0, 20, 0.95, 0.0, 0.161125),
        # p = 0.5: centre 0.5, half = z*sqrt(0.25/20 + z^2/1600) / (1 + z^2/20) = 0.200702.
        (10, 20, 0.95, 0.299298, 0.700702),
        (20, 20, 0.95, 0.838875, 1.0),
        (0, 0, 0.95, 0.0, 1.0),
    ],
)
def test_wilson_interval_matches_hand_values(
    hits: int, n: int, level: float, low: float, high: float
) -> None:
    """The Wilson interval agrees with the closed form to 6 decimals."""
    lo, hi = wilson_interval(hits, n, level)
    assert lo == pytest.approx(low, abs=1e-6)
    assert hi == pytest.approx(high, abs=1e-6)


@pytest.mark.parametrize(
    ("hits", "n", "p", "expected"),
    [
        (0, 20, 0.004, 1.0),
        (1, 20, 0.004, 1 - 0.996**20),  # = 0.077032
        (2, 2, 0.5, 0.25),
        (1, 3, 0.5, 0.875),
        (3, 3, 0.1, 0.001),
    ],
)
def test_binomial_tail_matches_hand_values(hits: int, n: int, p: float, expected: float) -> None:
    """P(X >= hits) for a binomial agrees with the hand-computed tail."""
    assert binomial_sf(hits, n, p) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    ("confidences", "hit_index", "mod", "expected"),
    [
        ([1.0], 0, 10, 0.0),  # certain and right
        ([1.0], None, 10, 2.0),  # certain and wrong: the worst score
        ([0.5], 0, 2, 0.5),  # (0.5-1)^2 + 0.5^2
        # named (0.6-0)^2 + (0.2-0)^2 = 0.40; the 0.2 left over spread on 2 values: 0.1 each;
        # the drawn one (0.1-1)^2 = 0.81, the other 0.01: total 1.22.
        ([0.6, 0.2], None, 4, 1.22),
        ([0.6, 0.2], 1, 4, 0.36 + 0.64 + 0.02),
    ],
)
def test_pool_brier_matches_hand_values(
    confidences: list[float], hit_index: int | None, mod: int, expected: float
) -> None:
    """The pool's multi-class Brier score agrees with the sum written out by hand."""
    assert pool_brier(confidences, hit_index, mod) == pytest.approx(expected)


def test_ece_matches_hand_value() -> None:
    """Two bins: |0.9 - 0.5| x 1/2 + |0.1 - 0| x 1/2 = 0.25."""
    pairs = [(0.9, True), (0.9, False), (0.1, False), (0.1, False)]
    assert expected_calibration_error(pairs, 10) == pytest.approx(0.25)


def test_ece_of_a_calibrated_forecast_is_zero_and_one_bin_is_the_mean_gap() -> None:
    """Stated 1.0 and always right: 0; one bin: |mean probability - frequency|."""
    assert expected_calibration_error([(1.0, True)] * 5, 10) == 0.0
    pairs = [(0.8, True), (0.6, False)]
    assert expected_calibration_error(pairs, 1) == pytest.approx(abs(0.7 - 0.5))


@pytest.mark.parametrize(
    ("weights", "bits"),
    [([1.0], 0.0), ([0.5, 0.5], 1.0), ([1, 1, 1, 1], 2.0), ([0.75, 0.25], 0.811278), ([], 0.0)],
)
def test_entropy_matches_hand_values(weights: list[float], bits: float) -> None:
    """Shannon entropy in bits of the normalised weights."""
    assert shannon_entropy(weights) == pytest.approx(bits, abs=1e-6)


def test_jaccard_and_relative_drop() -> None:
    """Jaccard by identity, and the relative drop of a rate."""
    assert jaccard({"a", "b"}, {"b", "c"}) == pytest.approx(1 / 3)
    assert jaccard([], []) == 1.0
    assert relative_drop(0.8, 0.2) == pytest.approx(0.75)
    assert relative_drop(0.0, 0.5) == 0.0


def test_bad_arguments_name_the_value() -> None:
    """Out-of-range inputs raise ValueError naming the value and the rule."""
    with pytest.raises(ValueError, match="hits must lie in"):
        wilson_interval(5, 4, 0.95)
    with pytest.raises(ValueError, match="confidence level"):
        wilson_interval(1, 4, 1.0)
    with pytest.raises(ValueError, match="probability"):
        binomial_sf(1, 4, 1.5)
    with pytest.raises(ValueError, match="cannot be drawn from mod"):
        pool_brier([0.5, 0.5, 0.0], None, 2)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 200), st.integers(0, 200), st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_wilson_interval_holds_the_estimate(a: int, b: int, level: float) -> None:
    """The interval lies in [0, 1], contains hits/n, and widens with the level."""
    hits, n = min(a, b), max(a, b)
    lo, hi = wilson_interval(hits, n, level)
    assert 0.0 <= lo <= hi <= 1.0
    if n:
        assert lo - 1e-12 <= hits / n <= hi + 1e-12
        wide = wilson_interval(hits, n, 0.999)
        assert wide[0] <= lo + 1e-12
        assert wide[1] >= hi - 1e-12


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 60), st.floats(0.0, 1.0))
def test_binomial_tail_is_a_decreasing_probability(n: int, p: float) -> None:
    """P(X >= k) is 1 at k = 0 and never increases with k."""
    tails = [binomial_sf(k, n, p) for k in range(n + 1)]
    assert tails[0] == 1.0
    assert all(0.0 <= t <= 1.0 for t in tails)
    assert all(later <= earlier + 1e-12 for earlier, later in itertools.pairwise(tails))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6),
    st.integers(0, 6),
    st.integers(10, 1000),
)
def test_pool_brier_is_bounded_and_rewards_the_truth(
    raw: list[float], where: int, mod: int
) -> None:
    """The score lies in [0, 2]; with all the mass on the pool, naming the drawn value never
    scores worse than missing it (the difference is -2 x its confidence)."""
    total = math.fsum(raw)
    assume(total > 0)
    confidences = [c / total for c in raw]
    hit = where if where < len(confidences) else None
    score = pool_brier(confidences, hit, mod)
    assert -1e-12 <= score <= 2.0 + 1e-12
    if hit is not None:
        miss = pool_brier(confidences, None, mod)
        assert score - miss == pytest.approx(-2 * confidences[hit], abs=1e-9)
