"""Scoring survivors against a history: predicted draws, hits and per-survivor features.

Pure functions over numpy arrays; the jobs of steps 2 to 6 and selfplay are built from them.
A survivor predicts nothing before its anchor (marked -1).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pipeline.array_module import NUMPY, ArrayModule
from pipeline.prng import FAMILIES, advance_batch

if TYPE_CHECKING:
    from collections.abc import Sequence

    from messages.artifacts import Survivor

FEATURE_NAMES = ("match_rate", "recent_rate", "weighted_rate")
"""The features a ranking weighs, in this order."""

NDArray = np.ndarray


def predicted_matrix(
    survivors: Sequence[Survivor], length: int, mod: int, am: ArrayModule = NUMPY
) -> NDArray:
    """predicted[i, t] = survivor i's draw at history index t, or -1 before its anchor."""
    out = np.full((len(survivors), length), -1, dtype=np.int64)
    groups: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, s in enumerate(survivors):
        groups[s.family, s.skip].append(i)
    xp = am.xp
    for (name, skip), rows in groups.items():
        family = FAMILIES[name]
        row_idx = np.asarray(rows, dtype=np.int64)
        anchors = np.asarray([survivors[i].anchor for i in rows], dtype=np.int64)
        states = family.init_batch(
            xp, xp.asarray([survivors[i].seed for i in rows], dtype=xp.uint64)
        )
        for j in range(max(0, length - int(anchors.min()))):
            states = advance_batch(family, xp, states, skip)
            t = anchors + j
            live = t < length
            values = am.to_numpy(family.output_batch(xp, states) % mod).astype(np.int64)
            out[row_idx[live], t[live]] = values[live]
    return out


@dataclass(frozen=True)
class Features:
    """Per-survivor features over a range of history positions (arrays of length S)."""

    positions: NDArray
    hits: NDArray
    match_rate: NDArray
    recent_rate: NDArray
    weighted_rate: NDArray
    longest_run: NDArray

    def matrix(self) -> NDArray:
        """The ranking features as an (S, 3) float matrix, in FEATURE_NAMES order."""
        return np.column_stack([self.match_rate, self.recent_rate, self.weighted_rate])


def _rate(num: NDArray, den: NDArray) -> NDArray:
    """num / den with 0 where den is 0."""
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def features(
    predicted: NDArray,
    values: NDArray,
    lo: int,
    hi: int,
    *,
    half_life: float,
    recent_window: int,
    runs: bool = True,
) -> Features:
    """Features of every survivor over positions [lo, hi); `runs=False` skips longest_run."""
    pred = predicted[:, lo:hi]
    valid = pred >= 0
    hit = pred == values[None, lo:hi]
    positions = valid.sum(axis=1)
    hits = hit.sum(axis=1)
    recent_from = max(0, (hi - lo) - recent_window)
    recent_rate = _rate(hit[:, recent_from:].sum(axis=1), valid[:, recent_from:].sum(axis=1))
    # Weight 1 for the latest position, halving every `half_life` positions back.
    age = np.arange(hi - lo - 1, -1, -1, dtype=np.float64)
    weight = 0.5 ** (age / half_life)
    weighted_rate = _rate(hit @ weight, valid @ weight)
    run = np.zeros(len(pred), dtype=np.int64)
    longest = np.zeros(len(pred), dtype=np.int64)
    for t in range(hi - lo if runs else 0):
        run = (run + 1) * hit[:, t]
        np.maximum(longest, run, out=longest)
    return Features(
        positions=positions,
        hits=hits,
        match_rate=_rate(hits, positions),
        recent_rate=recent_rate,
        weighted_rate=weighted_rate,
        longest_run=longest,
    )


def rank(scores: NDArray) -> NDArray:
    """Indices by descending score; ties keep the input order (which callers make deterministic)."""
    return np.argsort(-scores, kind="stable")


def pool_hit_rate(predicted: NDArray, values: NDArray, members: NDArray, lo: int, hi: int) -> float:
    """Fraction of positions [lo, hi) whose draw is predicted by at least one pool member."""
    if hi <= lo:
        return 0.0
    if members.size == 0:
        return 0.0
    hit = predicted[members, lo:hi] == values[None, lo:hi]
    return float(hit.any(axis=0).mean())


def chance_rate(pool_size: int, mod: int) -> float:
    """Hit rate of a pool of `pool_size` distinct values drawn at random."""
    return min(1.0, pool_size / mod)


def survivor_score(f: Features) -> NDArray:
    """The step 3 score: the mean of the recency-weighted rate and the recent-window rate."""
    return (f.weighted_rate + f.recent_rate) / 2.0  # type: ignore[no-any-return]


def method_weights(method: str) -> NDArray:
    """The feature weights of a ranking method (`linear` starts from equal weights)."""
    if method == "linear":
        return np.full(len(FEATURE_NAMES), 1.0 / len(FEATURE_NAMES))
    weights = np.zeros(len(FEATURE_NAMES))
    weights[FEATURE_NAMES.index(method)] = 1.0
    return weights
