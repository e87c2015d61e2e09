"""The loop chart's data: read incrementally from the store, downsampled without lying."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.store import connect
from actors.web.readmodel import connect_readonly
from actors.web.series import LoopSeries, _downsample, audit_markers, decision_markers

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

rates = st.one_of(st.none(), st.floats(0, 1, allow_nan=False))
rows = st.lists(st.tuples(rates, rates, st.sampled_from([None, 0.0, 1.0])), max_size=400)


def arrays(data: list[tuple[float | None, float | None, float | None]]) -> dict[str, np.ndarray]:
    """Per-draw arrays as LoopSeries holds them (NaN for missing)."""

    def column(values: list[float | None]) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)

    n = len(data)
    hit_rate = column([r[0] for r in data])
    ci = column([r[1] for r in data])
    return {
        "draw_index": np.arange(1, n + 1, dtype=np.float64),
        "hit_rate": hit_rate,
        "chance_rate": column([0.01] * n),
        "ci_low": np.fmin(hit_rate, ci),
        "ci_high": np.fmax(hit_rate, ci),
        "brier": ci,
        "ece": ci,
        "statistic": ci,
        "threshold": column([None] * n),
        "hit": column([r[2] for r in data]),
    }


@settings(max_examples=150, deadline=None)
@given(rows, st.integers(10, 200))
def test_downsampling_keeps_counts_extremes_and_order(
    data: list[tuple[float | None, float | None, float | None]], points: int
) -> None:
    """At most `points` buckets; hits and scored draws add up to the raw ones; x increases;
    each bucket's interval covers every raw interval in it."""
    raw = arrays(data)
    out = _downsample(raw, points, len(data))
    assert len(out["x"]) <= max(points, 1)
    assert out["x"] == sorted(set(out["x"]))
    assert sum(out["scored"]) == int(np.count_nonzero(~np.isnan(raw["hit"])))
    assert sum(out["hits"] or [0]) == int(np.nansum(raw["hit"]))
    lows = [v for v in raw["ci_low"] if not math.isnan(v)]
    highs = [v for v in raw["ci_high"] if not math.isnan(v)]
    if lows:
        assert min(v for v in out["ci_low"] if v is not None) <= min(lows) + 1e-6
        assert max(v for v in out["ci_high"] if v is not None) >= max(highs) - 1e-6
    for key in ("hit_rate", "ci_low", "ci_high", "brier", "statistic"):
        assert len(out[key]) == len(out["x"])


def seed(db: Path, count: int) -> None:
    """`count` draws with diagnostics and scores, and one escalated decision at draw 3."""
    conn = connect(db)
    try:
        for i in range(count):
            body = {
                "draw_id": f"d-{i}",
                "draw_index": i,
                "hit_rate": i / max(count, 1),
                "chance_rate": 0.01,
                "ci_low": 0.0,
                "ci_high": 1.0,
                "brier": 0.2,
                "ece": 0.1,
            }
            conn.execute(
                "INSERT INTO trigger_diagnostics (draw_id, schema_version, body, recorded_at)"
                " VALUES (?, 1, ?, ?)",
                (f"d-{i}", json.dumps(body), f"2026-01-01T00:00:{i:02d}+00:00"),
            )
            conn.execute(
                "INSERT INTO trigger_scores (stream, draw_id, status, hit, body, scored_at)"
                " VALUES ('real', ?, 'scored', ?, '{}', '')",
                (f"d-{i}", i % 2),
            )
        conn.execute(
            "INSERT INTO trigger_decisions (decision_id, draw_index, correlation_id, rule, action,"
            " evidence, outcome, reasons, status, created_at) VALUES ('dec', 3, 'c',"
            " 'regime_shift', 'full_pipeline', '{}', 'ESCALATE', '[]', 'pending_approval', 'now')"
        )
    finally:
        conn.close()


def test_series_reads_incrementally_and_windows_by_draw_index(tmp_path: Path) -> None:
    """New rows are picked up on refresh; a window returns only its draws; markers land at
    the decision's draw and at the draw scored before an audit record."""
    db = tmp_path / "state.db"
    seed(db, 30)
    series = LoopSeries()
    conn: sqlite3.Connection = connect_readonly(db)
    try:
        series.refresh(conn)
        assert series.count == 30
        window = series.window(10, 19, 100)
        assert window["x"] == list(range(10, 20))
        assert window["total"] == 30
        assert window["hits"] == [i % 2 for i in range(10, 20)]
        markers = decision_markers(conn)
        assert [(m["x"], m["kind"], m["link"]) for m in markers] == [
            (3, "escalation", "/pending#dec")
        ]
        record = {
            "entity": "promotion",
            "event": "promoted",
            "entity_id": "p-1",
            "recorded_at": "2026-01-01T00:00:07.5+00:00",
            "detail": {},
        }
        alarm = {
            "entity": "decision",
            "event": "change_alarm",
            "entity_id": "a-1",
            "recorded_at": "2026-01-01T00:00:29+00:00",
            "detail": {"change_point": "d-12"},
        }
        placed = audit_markers(series, [record, alarm])
        assert [(m["x"], m["kind"]) for m in placed] == [(7, "promoted"), (12, "change_alarm")]
    finally:
        conn.close()
    seed_more = connect(db)
    try:
        seed_more.execute(
            "INSERT INTO trigger_diagnostics (draw_id, schema_version, body, recorded_at)"
            " VALUES ('d-30', 1, ?, 'later')",
            (json.dumps({"draw_index": 30, "hit_rate": 0.5}),),
        )
    finally:
        seed_more.close()
    conn = connect_readonly(db)
    try:
        series.refresh(conn)
    finally:
        conn.close()
    assert series.count == 31
    assert series.window(None, None, 10)["bucket"] == 4  # 31 draws in at most 10 buckets


def test_thinned_markers_keep_what_a_person_must_see() -> None:
    """Past the limit, escalations and alarms stay and routine refreshes go first."""
    from actors.web.app import thin_markers

    routine = [{"x": i, "kind": "refresh", "at": ""} for i in range(1000)]
    urgent = [{"x": 5, "kind": "escalation", "at": ""}, {"x": 7, "kind": "change_alarm", "at": ""}]
    kept = thin_markers(routine + urgent, limit=10)
    assert len(kept) == 10
    assert {"escalation", "change_alarm"} <= {m["kind"] for m in kept}
    assert thin_markers(urgent, limit=10) == urgent
