"""Scoring primitives: predicted draws, features and pool hit rates on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from messages.artifacts import Survivor
from pipeline.prng import FAMILIES, draw_values
from pipeline.scoring import (
    chance_rate,
    features,
    method_weights,
    pool_hit_rate,
    predicted_matrix,
    rank,
)


def test_predicted_matrix_starts_at_each_anchor() -> None:
    """A survivor predicts its stream from its anchor on, and -1 before it."""
    s1 = Survivor(family="minstd", skip=0, seed=9, anchor=0, matches=1)
    s2 = Survivor(family="minstd", skip=2, seed=9, anchor=3, matches=1)
    got = predicted_matrix([s1, s2], 6, 1000)
    assert got[0].tolist() == draw_values(FAMILIES["minstd"], 9, 6)
    assert got[1].tolist() == [-1, -1, -1, *draw_values(FAMILIES["minstd"], 9, 3, skip=2)]


def test_features_on_a_hand_made_row() -> None:
    """Rates, weighted rate and longest run follow their definitions."""
    values = np.asarray([1, 2, 3, 4, 5, 6])
    predicted = np.asarray([[-1, 2, 0, 4, 5, 6]])
    f = features(predicted, values, 0, 6, half_life=1.0, recent_window=2)
    assert f.positions.tolist() == [5]
    assert f.hits.tolist() == [4]
    assert f.match_rate[0] == pytest.approx(0.8)
    assert f.recent_rate[0] == 1.0
    assert f.longest_run.tolist() == [3]
    # Weights 1/16 .. 1 for positions 1..5 (age 4..0); position 2 (weight 1/4) misses.
    weights = [1 / 16, 1 / 8, 1 / 4, 1 / 2, 1]
    expected = (sum(weights) - 1 / 8) / sum(weights)
    assert f.weighted_rate[0] == pytest.approx(expected)


def test_pool_hit_rate_counts_positions_any_member_hits() -> None:
    """A position counts when at least one pool member predicts it."""
    values = np.asarray([1, 2, 3, 4])
    predicted = np.asarray([[1, 0, 3, 0], [0, 2, 0, 0], [9, 9, 9, 9]])
    assert pool_hit_rate(predicted, values, np.asarray([0, 1]), 0, 4) == 0.75
    assert pool_hit_rate(predicted, values, np.asarray([2]), 0, 4) == 0.0
    assert pool_hit_rate(predicted, values, np.asarray([], dtype=np.int64), 0, 4) == 0.0
    assert pool_hit_rate(predicted, values, np.asarray([0]), 2, 2) == 0.0


def test_rank_is_stable_and_weights_pick_features() -> None:
    """Equal scores keep input order; a named method weighs only its feature."""
    assert rank(np.asarray([0.5, 0.9, 0.5])).tolist() == [1, 0, 2]
    assert method_weights("recent_rate").tolist() == [0.0, 1.0, 0.0]
    assert method_weights("linear").sum() == pytest.approx(1.0)
    assert chance_rate(4, 1000) == 0.004
    assert chance_rate(20, 10) == 1.0
