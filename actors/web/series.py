"""The loop over time: per-draw figures from `trigger_diagnostics`, downsampled server-side.

The chart's x axis is Chapter 13's draw index. A 100,000-draw history is read once (only the
figures the chart needs, extracted by SQLite) and then incrementally by rowid; a request for a
range gets at most `points` buckets, each with the mean hit rate, chance and Brier/ECE, the
widest interval and the hits and scored draws it holds, so a zoomed-out chart is still honest
about the extremes. Markers (retrains, refreshes, escalations, change alarms, promotions) come
from `trigger_decisions` (which knows each decision's draw) and from audit records (mapped to
the draw scored at or just before them).
"""

from __future__ import annotations

import bisect
import sqlite3
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from actors.trigger import decision_store, ledger

if TYPE_CHECKING:
    from collections.abc import Iterable

# Columns of the per-draw table, in order; the change detector's fields may be absent (NULL).
FIELDS = (
    "draw_index",
    "hit_rate",
    "chance_rate",
    "ci_low",
    "ci_high",
    "brier",
    "ece",
    "statistic",
    "threshold",
)


class LoopSeries:
    """Per-draw figures cached in memory and refreshed incrementally from the store."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_rowid = 0
        self._by_draw: dict[str, tuple[Any, ...]] = {}
        self._arrays: dict[str, np.ndarray] = {}
        self._ids: list[str] = []
        self._times: list[str] = []
        self._dirty = True

    def refresh(self, conn: sqlite3.Connection) -> None:
        """Read rows added since the last refresh (blocking: run it in a worker thread)."""
        with self._lock:
            try:
                rows = ledger.per_draw_figures(conn, FIELDS, self._last_rowid)
            except sqlite3.OperationalError:
                return
            for row in rows:
                values = tuple(row)
                self._last_rowid = max(self._last_rowid, int(values[0]))
                # INSERT OR REPLACE re-adds a draw's row under a new rowid: the newest wins.
                self._by_draw[str(values[1])] = values[1:]
                self._dirty = True
            if self._dirty:
                self._rebuild()

    def _rebuild(self) -> None:
        rows = sorted(
            (v for v in self._by_draw.values() if v[2] is not None), key=lambda v: int(v[2])
        )
        self._ids = [str(v[0]) for v in rows]
        self._times = [str(v[1]) for v in rows]
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in range(len(FIELDS) + 3)]
        self._arrays = {
            name: np.array(
                [np.nan if x is None else float(x) for x in columns[i + 2]], dtype=np.float64
            )
            for i, name in enumerate(FIELDS)
        }
        self._arrays["hit"] = np.array(
            [np.nan if x is None else float(x) for x in columns[len(FIELDS) + 2]],
            dtype=np.float64,
        )
        self._dirty = False

    @property
    def version(self) -> int:
        """Changes whenever a refresh read new rows (the newest rowid seen)."""
        return self._last_rowid

    @property
    def count(self) -> int:
        """Draws with figures."""
        return len(self._ids)

    def index_at_time(self, when: str) -> int | None:
        """The draw index of the last draw scored at or before `when` (ISO time), or None."""
        if not self._times:
            return None
        # recorded_at is ISO 8601 UTC throughout: string order is time order.
        at = bisect.bisect_right(self._times, when) - 1
        return int(self._arrays["draw_index"][max(at, 0)])

    def index_of(self, draw_id: str) -> int | None:
        """The draw index of a draw id, or None when it has no figures."""
        row = self._by_draw.get(draw_id)
        return None if row is None or row[2] is None else int(row[2])

    def window(self, lo: float | None, hi: float | None, points: int) -> dict[str, Any]:
        """The figures between draw indices lo and hi, at most `points` buckets per series."""
        with self._lock:
            x = self._arrays.get("draw_index", np.array([]))
            if x.size == 0:
                return {"x": [], "total": 0, "bucket": 1, **{k: [] for k in _SERIES}}
            start = 0 if lo is None else int(np.searchsorted(x, lo, side="left"))
            stop = x.size if hi is None else int(np.searchsorted(x, hi, side="right"))
            sl = slice(start, max(start, stop))
            return _downsample({k: v[sl] for k, v in self._arrays.items()}, points, int(x.size))


_SERIES = ("hit_rate", "chance_rate", "ci_low", "ci_high", "brier", "ece", "statistic")


def _bucket_reduce(values: np.ndarray, edges: np.ndarray, how: str) -> list[float | None]:
    """One figure per bucket [edges[i], edges[i+1]), NaN ignored; None for an empty bucket.

    Vectorised with ufunc.reduceat: 100,000 draws in ~1,500 buckets take ~2 ms, where a
    Python loop over the buckets took ~100 ms.
    """
    starts = edges[:-1]
    if starts.size == 0:
        return []
    present = ~np.isnan(values)
    counts = np.add.reduceat(present.astype(np.int64), starts)
    if how == "min":
        out = np.fmin.reduceat(values, starts)
    elif how == "max":
        out = np.fmax.reduceat(values, starts)
    else:
        sums = np.add.reduceat(np.where(present, values, 0.0), starts)
        out = sums if how == "sum" else sums / np.maximum(counts, 1)
    return [None if c == 0 else round(float(v), 6) for v, c in zip(out, counts, strict=True)]


def _downsample(arrays: dict[str, np.ndarray], points: int, total: int) -> dict[str, Any]:
    n = int(arrays["draw_index"].size)
    bucket = max(1, -(-n // max(points, 1)))
    edges = np.arange(0, n + bucket, bucket)
    edges[-1] = min(edges[-1], n)
    edges = np.unique(np.clip(edges, 0, n))
    if bucket == 1:

        def plain(name: str) -> list[float | None]:
            return [None if np.isnan(v) else round(float(v), 6) for v in arrays[name]]

        series = {name: plain(name) for name in _SERIES}
        hits = plain("hit")
        return {
            "x": [int(v) for v in arrays["draw_index"]],
            "total": total,
            "bucket": 1,
            **series,
            "threshold": plain("threshold"),
            # Per bucket (here: per draw): hits and scored draws, 0 where a draw was not scored.
            "hits": [0 if h is None else int(h) for h in hits],
            "scored": [0 if h is None else 1 for h in hits],
        }
    how = {"ci_low": "min", "ci_high": "max", "statistic": "max"}
    series = {name: _bucket_reduce(arrays[name], edges, how.get(name, "mean")) for name in _SERIES}
    hit = arrays["hit"]
    return {
        # Each bucket is drawn at its last draw: zooming in never moves a point to the left.
        "x": [int(arrays["draw_index"][b - 1]) for b in edges[1:]],
        "total": total,
        "bucket": bucket,
        **series,
        "threshold": _bucket_reduce(arrays["threshold"], edges, "max"),
        "hits": [int(v or 0) for v in _bucket_reduce(hit, edges, "sum")],
        "scored": [int(c) for c in np.add.reduceat((~np.isnan(hit)).astype(np.int64), edges[:-1])],
    }


def decision_markers(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Chapter 13's decisions as chart markers: retrain, refresh or escalation, at their draw."""
    try:
        rows = decision_store.decision_marks(conn)
    except sqlite3.OperationalError:
        return []
    out = []
    for did, index, rule, action, outcome, status, created in rows:
        if status == "pending_approval" or str(outcome).upper() == "ESCALATE":
            kind = "escalation"
        elif rule == "refresh":
            kind = "refresh"
        elif str(outcome).upper() == "REJECT":
            kind = "rejected"
        else:
            kind = "retrain"
        out.append(
            {
                "x": int(index),
                "kind": kind,
                "label": f"{rule} -> {action} ({status})",
                "id": str(did),
                "at": str(created),
                "link": f"/pending#{did}" if kind == "escalation" else f"/requests/{did}",
            }
        )
    return out


def audit_markers(series: LoopSeries, records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Audit records (change alarms, promotions, escalations, halts) as chart markers."""
    out = []
    for record in records:
        entity, event = record.get("entity"), record.get("event")
        detail = record.get("detail") or {}
        x = None
        point = detail.get("change_point")
        if isinstance(point, str):
            x = series.index_of(point)
        elif isinstance(point, int):
            x = point
        if x is None:
            x = series.index_at_time(str(record.get("recorded_at", "")))
        if x is None:
            continue
        if entity == "decision":
            kind = "change_alarm" if event == "change_alarm" else str(event)
        elif entity == "promotion":
            kind = str(event)
        elif entity == "request":
            kind = "escalation" if event == "escalation" else f"request_{event}"
        else:
            kind = str(event)
        ident = str(record.get("entity_id", ""))
        link = f"/requests/{ident}" if entity == "request" else "/pending"
        out.append(
            {
                "x": int(x),
                "kind": kind,
                "label": f"{entity} {event}: {detail.get('reason') or detail.get('rule') or ident}",
                "id": ident,
                "at": str(record.get("recorded_at", "")),
                "link": link,
            }
        )
    return out
