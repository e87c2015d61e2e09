"""A new regime's few draws: the identifying window, the holdout of a short history."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.inputs import effective_holdout
from pipeline.params import SieveParams
from pipeline.seed_search import (
    choose_anchors,
    draws_to_identify,
    identifying_window,
    search_space,
)
from pipeline.sieve import window_for

SPACE = search_space(["lcg32", "minstd", "xorshift32", "java_lcg"], 0, 1 << 20, 0, 0)


def test_the_default_search_space_and_its_identifying_windows() -> None:
    """2^20 seeds x 4 families (minstd and xorshift32 lack seed 0): one anchor identifies with
    3 draws at mod 1000, the handful of a short history with 4 (the issue's formula)."""
    assert SPACE == 4 * (1 << 20) - 2
    assert math.ceil(math.log(SPACE / 0.01) / math.log(1000)) == 3
    assert identifying_window(SPACE, 3, 1000, 0.01, 64) == 3
    assert identifying_window(SPACE, 6, 1000, 0.01, 64) == 4
    assert identifying_window(SPACE, 2, 1000, 0.01, 64) is None


def test_post_change_draws_needed_on_the_defaults() -> None:
    """5 post-change draws (window 4 + 1 out of sample) with a margin of 1; 4 for a first
    history with no margin."""
    draws, window, fp = draws_to_identify(SPACE, 1000, 0.01, 1, 64)
    assert (draws, window) == (5, 4)
    assert fp <= 0.01
    assert draws_to_identify(SPACE, 1000, 0.01, 0, 64)[0] == 4


@settings(max_examples=200, deadline=None)
@given(
    space=st.integers(1, 1 << 40),
    mod=st.integers(2, 1 << 16),
    target=st.floats(1e-6, 0.25),
    margin=st.integers(0, 5),
)
def test_identification_keeps_false_positives_under_the_target(
    space: int, mod: int, target: float, margin: int
) -> None:
    """Whatever the search and the modulus: the window found expects at most `target` false
    survivors, one draw shorter would not, and the window fits after the change point."""
    draws, window, fp = draws_to_identify(space, mod, target, margin, 64)
    assert fp <= target
    assert draws >= window + 1
    if window > 1:
        n = margin + draws
        anchors = len(choose_anchors(n, window - 1, 64))
        assert space * anchors * float(mod) ** -(window - 1) > target


def test_the_sieve_keeps_its_window_on_long_histories_and_identifies_on_short_ones() -> None:
    """Twice the window or more: the configured window; shorter: the identifying one."""
    params = SieveParams()
    assert window_for(params, 40) == (8, 8)
    assert window_for(params, 16) == (8, 8)
    assert window_for(params, 6) == (4, 4)
    loose = SieveParams(threshold=3)
    assert window_for(loose, 6) == (4, 3)


@given(n=st.integers(3, 200), holdout=st.integers(1, 100))
def test_a_short_history_gives_half_of_itself_to_the_holdout(n: int, holdout: int) -> None:
    """The configured holdout when it leaves 2 training draws, else the newest half."""
    got = effective_holdout(n, holdout)
    assert 1 <= got <= n - 1
    if n >= holdout + 2:
        assert got == holdout
    else:
        assert got == max(1, n // 2)
