"""The sieve's core: which seeds of a range reproduce a window of draws, vectorised over seeds.

A candidate is a (family, skip) pair and a survivor a (seed, anchor) pair: the seed's first draw
lands on history index `anchor` and at least `threshold` of the `window` draws from there match.
The anchor draw itself must match: that first comparison discards all but about A/mod of the
seeds (A anchors), so the remaining window costs almost nothing. Memory is bounded by the chunk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.prng import PrngFamily, advance_batch

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pipeline.array_module import ArrayModule

# A bool lookup table of this many entries (1 MiB) beats a binary search; larger mods search.
_TABLE_MAX_MOD = 1 << 20


@dataclass(frozen=True)
class Window:
    """The draws every seed is compared with: one row of `window` values per anchor."""

    anchors: np.ndarray
    """History indices where a seed's stream may start (int64, shape (A,))."""
    targets: np.ndarray
    """targets[j, i] = history[anchors[j] + i] (int64, shape (A, window))."""
    mod: int
    threshold: int

    @property
    def size(self) -> int:
        """Draws per window."""
        return int(self.targets.shape[1])


def choose_anchors(n_draws: int, window: int, max_anchors: int) -> list[int]:
    """Start positions to try: all when they fit in `max_anchors`, else 0 and the most recent ones.

    A seed can only be recovered from where its stream started; a seed switch is recent when the
    loop notices it, and index 0 keeps the history's original seed findable.
    """
    last = n_draws - window
    if last < 0:
        return []
    if last + 1 <= max_anchors:
        return list(range(last + 1))
    recent = list(range(last - max_anchors + 2, last + 1))
    return [0, *recent]


def make_window(
    values: np.ndarray,
    anchors: Sequence[int],
    size: int,
    mod: int,
    threshold: int,
) -> Window:
    """Build the comparison window for the given anchors."""
    idx = np.asarray(anchors, dtype=np.int64)
    targets = values[idx[:, None] + np.arange(size, dtype=np.int64)[None, :]]
    return Window(anchors=idx, targets=targets.astype(np.int64), mod=mod, threshold=threshold)


@dataclass(frozen=True)
class ChunkSurvivors:
    """Survivors of one chunk: parallel numpy arrays."""

    seeds: np.ndarray
    anchors: np.ndarray
    matches: np.ndarray


class ChunkSieve:
    """Sieves chunks of seeds for one (family, skip) candidate against one window."""

    def __init__(self, family: PrngFamily, skip: int, window: Window, am: ArrayModule) -> None:
        """Prepare the per-window tables on the array module's device."""
        xp = am.xp
        self._family = family
        self._skip = skip
        self._window = window
        self._am = am
        first = window.targets[:, 0]
        order = np.argsort(first, kind="stable")
        # Anchors sorted by their first value, so a seed finds its anchors by binary search.
        self._sorted_first = xp.asarray(first[order].astype(np.uint64))
        self._sorted_anchor_rows = xp.asarray(order.astype(np.int64))
        self._targets = xp.asarray(window.targets.astype(np.uint64))
        self._table = None
        if window.mod <= _TABLE_MAX_MOD:
            table = np.zeros(window.mod, dtype=bool)
            table[first] = True
            self._table = xp.asarray(table)

    def run(self, start: int, stop: int) -> ChunkSurvivors:
        """Sieve the seeds in [start, stop)."""
        xp: Any = self._am.xp
        family, window = self._family, self._window
        seeds = xp.arange(start, stop, dtype=xp.uint64)
        states = advance_batch(family, xp, family.init_batch(xp, seeds), self._skip)
        out = family.output_batch(xp, states) % window.mod
        if self._table is not None:
            hit = xp.take(self._table, out)
        else:
            pos = xp.minimum(xp.searchsorted(self._sorted_first, out), len(self._sorted_first) - 1)
            hit = self._sorted_first[pos] == out
        idx = xp.nonzero(hit)[0]
        if idx.size == 0:
            return _empty()
        states, out = states[idx], out[idx]
        # Expand each passing seed into one pair per anchor whose first draw equals its output.
        lo = xp.searchsorted(self._sorted_first, out, side="left")
        hi = xp.searchsorted(self._sorted_first, out, side="right")
        counts = hi - lo
        total = int(counts.sum())
        owner = xp.repeat(xp.arange(idx.size), counts)
        offset = xp.arange(total) - xp.repeat(xp.cumsum(counts) - counts, counts)
        rows = self._sorted_anchor_rows[xp.repeat(lo, counts) + offset]
        pair_seed = idx[owner]
        pair_state = states[owner]
        matches = xp.ones(total, dtype=xp.int64)
        need = window.threshold
        for i in range(1, window.size):
            pair_state = advance_batch(family, xp, pair_state, self._skip)
            out_i = family.output_batch(xp, pair_state) % window.mod
            matches += out_i == self._targets[rows, i]
            # Drop pairs that can no longer reach the threshold with the draws left.
            viable = matches + (window.size - 1 - i) >= need
            if not bool(viable.all()):
                keep = xp.nonzero(viable)[0]
                pair_state, pair_seed, rows, matches = (
                    pair_state[keep],
                    pair_seed[keep],
                    rows[keep],
                    matches[keep],
                )
                if keep.size == 0:
                    return _empty()
        final = xp.nonzero(matches >= need)[0]
        to_np = self._am.to_numpy
        return ChunkSurvivors(
            seeds=to_np(pair_seed[final]).astype(np.int64) + start,
            anchors=window.anchors[to_np(rows[final])],
            matches=to_np(matches[final]).astype(np.int64),
        )


def _empty() -> ChunkSurvivors:
    """No survivors."""
    empty = np.zeros(0, dtype=np.int64)
    return ChunkSurvivors(seeds=empty, anchors=empty, matches=empty)


def sieve_scalar(
    family: PrngFamily, skip: int, window: Window, start: int, stop: int
) -> list[tuple[int, int, int]]:
    """The same search as `ChunkSieve.run`, one seed at a time in pure Python (the reference).

    Returns (seed, anchor, matches) triples in seed order, then anchor order.
    """
    mod, size, need = window.mod, window.size, window.threshold
    rows = [[int(v) for v in row] for row in window.targets]
    anchors = [int(a) for a in window.anchors]
    by_first: dict[int, list[int]] = {}
    for j, row in enumerate(rows):
        by_first.setdefault(row[0], []).append(j)
    found: list[tuple[int, int, int]] = []
    for seed in range(start, stop):
        state = family.init(seed)
        for _ in range(skip + 1):
            state = family.step(state)
        candidates = by_first.get(family.output(state) % mod)
        if candidates is None:
            continue
        outs = [family.output(state) % mod]
        for _ in range(1, size):
            for _ in range(skip + 1):
                state = family.step(state)
            outs.append(family.output(state) % mod)
        for j in sorted(candidates, key=lambda r: anchors[r]):
            matches = sum(o == t for o, t in zip(outs, rows[j], strict=True))
            if matches >= need:
                found.append((seed, anchors[j], matches))
    return found


def expected_false_positives(
    seeds: int, anchors: int, window: int, threshold: int, mod: int
) -> float:
    """Survivors expected from `seeds` seeds if the draws were uniform random values below `mod`.

    The anchor draw matches with probability 1/mod; the other window-1 draws must bring the count
    to `threshold`: a binomial tail with p = 1/mod.
    """
    p = 1.0 / mod
    rest = window - 1
    need = max(0, threshold - 1)
    tail = sum(math.comb(rest, k) * p**k * (1 - p) ** (rest - k) for k in range(need, rest + 1))
    return seeds * anchors * p * tail


def search_space(
    families: Sequence[str], seed_start: int, seed_end: int, skip_min: int, skip_max: int
) -> int:
    """Candidates a sieve tests per anchor: seeds in range (clipped per family) times skips."""
    from pipeline.prng import FAMILIES

    total = 0
    for name in families:
        family = FAMILIES[name]
        lo, hi = max(seed_start, family.seed_min), min(seed_end, family.seed_end)
        total += max(0, hi - lo) * (skip_max - skip_min + 1)
    return total


def identifying_window(
    space: int, n_draws: int, mod: int, target: float, max_anchors: int
) -> int | None:
    """The smallest all-match window whose whole search expects at most `target` false survivors.

    A uniform random draw matches a candidate's output with probability 1/mod, so a window of w
    draws passes `space * anchors * mod**-w` false candidates: identification needs
    w >= log(space * anchors / target) / log(mod) (2^20 seeds x 4 families, one anchor, mod 1000,
    target 0.01: w = 3). Anchors are every start in a short history (choose_anchors). None when
    no window fits in `n_draws`.
    """
    for window in range(1, n_draws + 1):
        anchors = len(choose_anchors(n_draws, window, max_anchors))
        if space * anchors * float(mod) ** -window <= target:
            return window
    return None


def draws_to_identify(
    space: int, mod: int, target: float, margin: int, max_anchors: int
) -> tuple[int, int, float]:
    """Post-change draws a retrain needs: (draws, window, expected false positives).

    The retrain's history holds `margin` draws before the estimated change point and `draws`
    from it on; the new seed's stream starts at the change point, so the identifying window
    must fit after it, with one draw beyond it to check the survivors out of sample.
    """
    for draws in range(2, 4096):
        window = identifying_window(space, margin + draws, mod, target, max_anchors)
        if window is not None and draws >= window + 1:
            anchors = len(choose_anchors(margin + draws, window, max_anchors))
            return draws, window, space * anchors * float(mod) ** -window
    msg = f"no history of up to 4096 draws identifies a seed among {space} candidates (mod {mod})"
    raise ValueError(msg)
