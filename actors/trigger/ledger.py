"""Chapter 13's tables in the state store: blocking calls on one sqlite3 connection.

The actor runs them through `Store.run` / `Store.transaction` (a worker thread); the CLI runs
them on its own connection while the daemon may be running (WAL allows one writer at a time and
readers beside it). Tables: the tracker state, pools, scores, models and no-signal state of
migrations v010_chapter13 and v011_chapter13_regimes (`trigger_state`, `trigger_pools`,
`trigger_scores`, `trigger_diagnostics`, `trigger_models`, `trigger_no_signal`) and `diagnostics`
(v003), of which this module is the one owner: `status`, the console and `/metrics` read them
through the functions at the end. Decisions and requests are `decision_store.py`'s, policies
`policy_store.py`'s; `context` composes what the rules read from all three.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from actors.ingestion.history import values_in_time_order
from actors.store.rows import as_dicts
from actors.trigger import decision_store
from actors.trigger.context import Context, ModelRecord, NoSignal
from actors.trigger.detector import ModelPrior
from actors.trigger.tracker import TrackerState
from messages.artifacts import PredictionPool
from messages.base import utcnow

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

    from actors.trigger.diagnostics import Diagnostics
    from actors.trigger.scoring import DrawScore


def _now() -> str:
    return utcnow().isoformat()


# -- tracker state ---------------------------------------------------------------------------


def load_state(conn: sqlite3.Connection) -> TrackerState:
    """The saved tracker state (a fresh one on first start, or from an older layout: the
    state is a fold over the scores, and the scores are the record that matters)."""
    row = conn.execute("SELECT body FROM trigger_state WHERE id = 1").fetchone()
    if row is None:
        return TrackerState()
    try:
        return TrackerState.model_validate_json(row[0])
    except ValidationError:
        return TrackerState()


def save_state(conn: sqlite3.Connection, state: TrackerState) -> None:
    """Replace the saved tracker state."""
    conn.execute(
        "INSERT INTO trigger_state (id, body, updated_at) VALUES (1, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
        (state.model_dump_json(), _now()),
    )


# -- pools and scores ------------------------------------------------------------------------


def insert_pool(
    conn: sqlite3.Connection, pool: PredictionPool, *, request_id: str | None, stale: bool
) -> bool:
    """Register a pool for the draw after its last_draw_id; False when it already was."""
    row = conn.execute(
        "SELECT 1 FROM trigger_pools WHERE pool_id = ? AND after_draw_id IS ?",
        (pool.pool_id, pool.last_draw_id),
    ).fetchone()
    if row is not None:
        return False
    conn.execute(
        "INSERT INTO trigger_pools (pool_id, after_draw_id, model_id, request_id, stale, body,"
        " registered_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            pool.pool_id,
            pool.last_draw_id,
            pool.model_id,
            request_id,
            int(stale),
            pool.model_dump_json(),
            _now(),
        ),
    )
    return True


def pool_after(conn: sqlite3.Connection, draw_id: str | None) -> PredictionPool | None:
    """The latest pool registered for the draw after `draw_id`, if any."""
    row = conn.execute(
        "SELECT body FROM trigger_pools WHERE after_draw_id IS ? ORDER BY seq DESC LIMIT 1",
        (draw_id,),
    ).fetchone()
    return None if row is None else PredictionPool.model_validate_json(row[0])


def has_score(conn: sqlite3.Connection, stream: str, draw_id: str) -> bool:
    """True when this draw was already recorded (scored or not)."""
    row = conn.execute(
        "SELECT 1 FROM trigger_scores WHERE stream = ? AND draw_id = ?", (stream, draw_id)
    ).fetchone()
    return row is not None


def insert_score(conn: sqlite3.Connection, stream: str, score: DrawScore) -> None:
    """Record one draw's score (or status)."""
    conn.execute(
        "INSERT INTO trigger_scores (stream, draw_id, status, pool_id, hit, body, scored_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            stream,
            score.draw_id,
            score.status,
            score.pool_id,
            None if score.hit is None else int(score.hit),
            score.model_dump_json(),
            _now(),
        ),
    )


def insert_diagnostics(conn: sqlite3.Connection, diag: Diagnostics) -> None:
    """Persist the per-draw record, and one row per figure for the bundle's trends."""
    now = _now()
    conn.execute(
        "INSERT OR REPLACE INTO trigger_diagnostics (draw_id, schema_version, body, recorded_at)"
        " VALUES (?, ?, ?, ?)",
        (diag.draw_id, diag.schema_version, diag.model_dump_json(), now),
    )
    conn.executemany(
        "INSERT INTO diagnostics (draw_id, stream, metric, value, schema_version, recorded_at)"
        " VALUES (?, 'real', ?, ?, ?, ?)",
        [
            (diag.draw_id, name, value, diag.schema_version, now)
            for name, value in sorted(diag.metrics().items())
        ],
    )


def insert_figure(
    conn: sqlite3.Connection, *, draw_id: str, metric: str, value: float, recorded_at: str
) -> None:
    """Persist one real-stream figure without its per-draw record: the bundle self-test seeds
    trends this way on a fixed clock (the daemon writes through `insert_diagnostics`)."""
    conn.execute(
        "INSERT INTO diagnostics (draw_id, metric, value, recorded_at) VALUES (?, ?, ?, ?)",
        (draw_id, metric, value, recorded_at),
    )


def real_metric_names(conn: sqlite3.Connection, limit: int) -> list[str]:
    """The names of at most `limit` metrics recorded for the real stream, alphabetical."""
    rows = conn.execute(
        "SELECT DISTINCT metric FROM diagnostics WHERE stream = 'real' ORDER BY metric LIMIT ?",
        (limit,),
    ).fetchall()
    return [str(row[0]) for row in rows]


def real_metric_values(conn: sqlite3.Connection, metric: str, limit: int) -> list[float]:
    """The last `limit` real-stream values of `metric`, newest first (the bundle's trends)."""
    rows = conn.execute(
        "SELECT value FROM diagnostics WHERE metric = ? AND stream = 'real'"
        " ORDER BY id DESC LIMIT ?",
        (metric, limit),
    ).fetchall()
    return [float(row[0]) for row in rows]


def draw_index_of(conn: sqlite3.Connection, draw_id: str | None) -> int | None:
    """The `draw_index` Chapter 13 gave a live draw (from its diagnostics), or None."""
    if draw_id is None:
        return None
    row = conn.execute(
        "SELECT json_extract(body, '$.draw_index') FROM trigger_diagnostics WHERE draw_id = ?",
        (draw_id,),
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def real_values_before(
    conn: sqlite3.Connection, draw_id: str, *, start_draw_id: str | None = None
) -> list[int]:
    """The real history's values (time order) before `draw_id` (all of it if it is not there),
    from `start_draw_id` on when given (a model's regime: its survivors' anchors index it)."""
    rows = values_in_time_order(conn, "real")  # the draws table's owner
    ids = [r[0] for r in rows]
    end = ids.index(draw_id) if draw_id in ids else len(rows)
    start = ids.index(start_draw_id) if start_draw_id in ids else 0
    return [r[1] for r in rows[start:end]]


def draw_id_at(conn: sqlite3.Connection, draw_index: int | None) -> str | None:
    """The live draw Chapter 13 numbered `draw_index` (from its diagnostics), or None."""
    if draw_index is None:
        return None
    row = conn.execute(
        "SELECT draw_id FROM trigger_diagnostics WHERE json_extract(body, '$.draw_index') = ?",
        (draw_index,),
    ).fetchone()
    return None if row is None else str(row[0])


# -- models, regimes and the no-signal state -------------------------------------------------


def upsert_model(conn: sqlite3.Connection, record: ModelRecord) -> None:
    """Remember a model a retrain made (its prior, regime and top survivors)."""
    conn.execute(
        "INSERT INTO trigger_models (model_id, request_id, history_from, prior_hits, prior_size,"
        " pool_size, top_survivors, churn, registered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (model_id) DO NOTHING",
        (
            record.model_id,
            record.request_id,
            record.history_from,
            record.prior.hits,
            record.prior.size,
            record.pool_size,
            json.dumps(list(record.top_survivors)),
            record.churn,
            _now(),
        ),
    )


def model_record(conn: sqlite3.Connection, model_id: str | None) -> ModelRecord | None:
    """What Chapter 13 knows of a model, or None."""
    if model_id is None:
        return None
    row = conn.execute(
        "SELECT model_id, request_id, history_from, prior_hits, prior_size, pool_size,"
        " top_survivors, churn FROM trigger_models WHERE model_id = ?",
        (model_id,),
    ).fetchone()
    if row is None:
        return None
    return ModelRecord(
        model_id=str(row[0]),
        request_id=row[1],
        history_from=row[2],
        prior=ModelPrior(hits=float(row[3]), size=float(row[4])),
        pool_size=row[5],
        top_survivors=tuple(json.loads(row[6])),
        churn=row[7],
    )


def latest_model(conn: sqlite3.Connection) -> ModelRecord | None:
    """The model registered last (the one in force), or None."""
    row = conn.execute(
        "SELECT model_id FROM trigger_models ORDER BY registered_at DESC, rowid DESC LIMIT 1"
    ).fetchone()
    return None if row is None else model_record(conn, str(row[0]))


def current_regime(conn: sqlite3.Connection) -> str | None:
    """The first draw of the history the model in force was trained on (None: all of it)."""
    model = latest_model(conn)
    return None if model is None else model.history_from


def newest_pool_index(conn: sqlite3.Connection) -> int | None:
    """The draw index the newest registered pool was made after (None: no pool yet; -1: made
    before the first live draw)."""
    row = conn.execute(
        "SELECT after_draw_id FROM trigger_pools ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    index = draw_index_of(conn, row[0])
    return -1 if index is None else index


def load_no_signal(conn: sqlite3.Connection) -> NoSignal | None:
    """The no-signal state (None: the loop is not in it)."""
    row = conn.execute("SELECT body FROM trigger_no_signal WHERE id = 1").fetchone()
    if row is None or row[0] is None:
        return None
    return NoSignal.model_validate_json(row[0])


def save_no_signal(conn: sqlite3.Connection, state: NoSignal | None) -> None:
    """Replace (or, with None, end) the no-signal state."""
    conn.execute(
        "INSERT INTO trigger_no_signal (id, body, updated_at) VALUES (1, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
        (None if state is None else state.model_dump_json(), _now()),
    )


def context(conn: sqlite3.Connection, *, now: float, budget_window_s: float) -> Context:
    """Everything the rules read that is not a score: requests, pools, model, cooldown."""
    from datetime import UTC, datetime

    since = datetime.fromtimestamp(now - budget_window_s, UTC).isoformat()
    return Context(
        open=decision_store.open_requests(conn),
        cooldown=decision_store.last_rule_firing(conn),
        pool_index=newest_pool_index(conn),
        model=latest_model(conn),
        no_signal=load_no_signal(conn),
        gpu_seconds=decision_store.gpu_seconds_since(conn, since),
    )


# -- readouts: what `status`, the console and /metrics show ----------------------------------


def latest_hit_rate(conn: sqlite3.Connection) -> tuple[float, str] | None:
    """(value, recorded_at) of the newest hit rate of the real stream, or None."""
    row = conn.execute(
        "SELECT value, recorded_at FROM diagnostics WHERE metric = 'hit_rate'"
        " AND stream = 'real' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    return None if row is None else (row[0], row[1])


def newest_pool_row(conn: sqlite3.Connection) -> dict[str, Any] | None:
    """The newest registered pool's columns (body still JSON text), or None."""
    rows = as_dicts(
        conn.execute(
            "SELECT pool_id, after_draw_id, model_id, request_id, stale, body, registered_at"
            " FROM trigger_pools ORDER BY seq DESC LIMIT 1"
        )
    )
    return rows[0] if rows else None


def score_counts(conn: sqlite3.Connection) -> list[tuple[Any, int]]:
    """(hit, count) over the real stream's scored draws (hit is 1 or 0)."""
    rows = conn.execute(
        "SELECT hit, COUNT(*) FROM trigger_scores WHERE stream = 'real'"
        " AND hit IS NOT NULL GROUP BY 1"
    ).fetchall()
    return [(r[0], int(r[1])) for r in rows]


def latest_diagnostics_body(conn: sqlite3.Connection) -> str | None:
    """The newest per-draw diagnostics record (JSON text), or None before the first draw."""
    row = conn.execute(
        # The newest row (INSERT OR REPLACE moves a rewritten draw to the end):
        # ordering by the JSON draw_index scanned 100,000 bodies (~200 ms).
        "SELECT body FROM trigger_diagnostics ORDER BY rowid DESC LIMIT 1"
    ).fetchone()
    return None if row is None else row[0]


def per_draw_figures(
    conn: sqlite3.Connection, fields: Sequence[str], after_rowid: int
) -> list[tuple[Any, ...]]:
    """Diagnostics rows added after `after_rowid`, in rowid order: (rowid, draw_id,
    recorded_at, each of `fields` from the body (NULL where absent), hit of the real score)."""
    sql = (
        "SELECT d.rowid, d.draw_id, d.recorded_at, "
        + ", ".join(f"json_extract(d.body, '$.{name}')" for name in fields)
        + ", s.hit FROM trigger_diagnostics d LEFT JOIN trigger_scores s"
        " ON s.draw_id = d.draw_id AND s.stream = 'real' WHERE d.rowid > ? ORDER BY d.rowid"
    )
    return [tuple(r) for r in conn.execute(sql, (after_rowid,)).fetchall()]
