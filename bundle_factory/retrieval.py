"""Tier-2 retrieval: the loop's recent history, behind one small interface.

What is in: recent step and request outcomes, trends of the diagnostics the trigger actor
records, and open incidents. What is out, by design: raw decision logs and conversation history
(the LLM must judge the figures, not echo earlier answers), embeddings (no similarity search:
retrieval is by recency, so it is explainable and deterministic), and live ground-truth outcomes
in selfplay bundles (a candidate must not see the real draws it will be shadow-evaluated on).

A new source is added by extending `Retriever`; `build_llm_context` callers never change.
"""

from __future__ import annotations

import sqlite3
import statistics
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from bundle_factory.errors import RetrievalError
from bundle_factory.records import Incident, OutcomeRecord, TrendDirection, TrendSummary

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

# Trend rule thresholds (see `classify_trend`).
MIN_TREND_VALUES = 3
"""Fewer values than this give `insufficient`: two points always lie on a line."""
STABLE_BAND = 0.02
"""A window whose range is within 2 % of its mean magnitude is stable."""
TREND_R2 = 0.5
"""A least-squares line explaining at least half the variance is a trend."""
VOLATILE_BAND = 0.10
"""Without a trend, a range above 10 % of the mean magnitude is volatile, else stable."""

LOWER_IS_BETTER: frozenset[str] = frozenset(
    {
        "overfit_ratio",
        "calibration_error",
        "brier_score",
        "loss",
        "failed_chunks",
        "draws_since_training",
        "runtime_s",
    }
)
"""Metrics where a falling value is an improvement (also any name ending in _error or _loss)."""

MAX_TREND_METRICS = 16
"""With `metrics=None`, the trends of at most this many metrics (alphabetical) are returned."""
MAX_OPEN_INCIDENTS = 100
"""At most this many open incidents are read (the renderer cuts further to its cap)."""


def higher_is_better(metric: str) -> bool:
    """False for the metrics in `LOWER_IS_BETTER` and names ending in `_error` or `_loss`."""
    return not (metric in LOWER_IS_BETTER or metric.endswith(("_error", "_loss")))


def classify_trend(
    values: Sequence[float], higher_better: bool = True
) -> tuple[TrendDirection, float]:
    """Return the direction of `values` (oldest first) and the least-squares slope per value.

    The rule, in order:

    1. fewer than 3 values: insufficient;
    2. range <= 2 % of the mean magnitude: stable;
    3. a least-squares line with R² >= 0.5: improving or declining, by the slope's sign and
       whether higher is better;
    4. otherwise range > 10 % of the mean magnitude: volatile; else stable.
    """
    n = len(values)
    if n < 2:
        return TrendDirection.INSUFFICIENT, 0.0
    xs = range(n)
    mean_x = (n - 1) / 2
    mean_y = statistics.fmean(values)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, values, strict=True))
    slope = sxy / sxx
    if n < MIN_TREND_VALUES:
        return TrendDirection.INSUFFICIENT, slope
    spread = max(values) - min(values)
    magnitude = statistics.fmean(abs(v) for v in values)
    if spread <= STABLE_BAND * magnitude:
        return TrendDirection.STABLE, slope
    syy = sum((y - mean_y) ** 2 for y in values)
    r2 = (sxy * sxy) / (sxx * syy) if syy > 0 else 0.0
    if r2 >= TREND_R2:
        rising = slope > 0
        better = rising == higher_better
        return (TrendDirection.IMPROVING if better else TrendDirection.DECLINING), slope
    if spread > VOLATILE_BAND * magnitude:
        return TrendDirection.VOLATILE, slope
    return TrendDirection.STABLE, slope


def summarise_trend(metric: str, values: Sequence[float]) -> TrendSummary:
    """Build the `TrendSummary` of one metric's window of values (oldest first)."""
    better = higher_is_better(metric)
    direction, slope = classify_trend(values, better)
    return TrendSummary(
        metric=metric,
        direction=direction,
        values=tuple(values),
        slope=slope,
        higher_is_better=better,
    )


@runtime_checkable
class Retriever(Protocol):
    """Where tier 2 comes from. Every method returns records newest first (trends: by metric)."""

    def recent_outcomes(self, n: int) -> tuple[OutcomeRecord, ...]:
        """The last `n` step and request outcomes together, newest first."""
        ...

    def trends(self, metrics: Sequence[str] | None, window: int) -> tuple[TrendSummary, ...]:
        """The trend of each metric over its last `window` values; None means every metric."""
        ...

    def open_incidents(self) -> tuple[Incident, ...]:
        """Incidents not yet resolved, newest first."""
        ...


class EmptyRetriever:
    """The retriever used when there is no state store: every source is empty."""

    def recent_outcomes(self, n: int) -> tuple[OutcomeRecord, ...]:
        """No outcomes."""
        return ()

    def trends(self, metrics: Sequence[str] | None, window: int) -> tuple[TrendSummary, ...]:
        """No trends."""
        return ()

    def open_incidents(self) -> tuple[Incident, ...]:
        """No incidents."""
        return ()


class SqliteRetriever:
    """Reads tier 2 from the state store (tables of `actors.store.schema`); never writes.

    Only diagnostics of the `real` stream are read: synthetic draws are kept apart from real
    history. The caller serialises use of the connection (one thread at a time).
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        """Wrap an open connection to a migrated store (e.g. from `actors.store.schema.connect`)."""
        self._conn = conn

    @classmethod
    def open(cls, path: Path) -> SqliteRetriever:
        """Open the store at `path` read-only (it must exist and be migrated).

        Raises:
            RetrievalError: the file does not exist or is not an SQLite database.
        """
        try:
            conn = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
            )
            conn.execute("PRAGMA query_only=ON")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            msg = f"cannot open state store {path} read-only for retrieval: {exc}"
            raise RetrievalError(msg) from exc
        return cls(conn)

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def _rows(self, what: str, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        try:
            return [tuple(row) for row in self._conn.execute(sql, params).fetchall()]
        except sqlite3.Error as exc:
            msg = f"cannot read {what} from the state store for retrieval: {exc}"
            raise RetrievalError(msg) from exc

    def recent_outcomes(self, n: int) -> tuple[OutcomeRecord, ...]:
        """The last `n` of step_outcomes and request_outcomes together, newest first."""
        if n <= 0:
            return ()
        steps = self._rows(
            "step outcomes",
            "SELECT recorded_at, status, request_id, run_id, step_id, attempt, action,"
            " confidence, summary, id FROM step_outcomes"
            " ORDER BY recorded_at DESC, id DESC LIMIT ?",
            (n,),
        )
        requests = self._rows(
            "request outcomes",
            "SELECT finished_at, status, request_id, request_type, reason FROM request_outcomes"
            " ORDER BY finished_at DESC, request_id DESC LIMIT ?",
            (n,),
        )
        keyed: list[tuple[str, str, OutcomeRecord]] = []
        for at, status, req, run, step, attempt, action, conf, summary, row_id in steps:
            record = OutcomeRecord(
                source="step",
                recorded_at=str(at),
                status=str(status),
                request_id=str(req),
                run_id=str(run),
                step_id=int(step),
                attempt=int(attempt),
                action=str(action),
                confidence=None if conf is None else float(conf),
                summary=str(summary),
            )
            keyed.append((str(at), f"s{int(row_id):012d}", record))
        for at, status, req, rtype, reason in requests:
            record = OutcomeRecord(
                source="request",
                recorded_at=str(at),
                status=str(status),
                request_id=str(req),
                request_type=str(rtype),
                summary=str(reason),
            )
            keyed.append((str(at), f"r{req}", record))
        keyed.sort(key=lambda item: (item[0], item[1]), reverse=True)
        return tuple(record for _at, _key, record in keyed[:n])

    def trends(self, metrics: Sequence[str] | None, window: int) -> tuple[TrendSummary, ...]:
        """The trend of each metric over its last `window` real-stream values, by metric name."""
        if metrics is None:
            names = [
                str(row[0])
                for row in self._rows(
                    "diagnostic metric names",
                    "SELECT DISTINCT metric FROM diagnostics WHERE stream = 'real'"
                    " ORDER BY metric LIMIT ?",
                    (MAX_TREND_METRICS,),
                )
            ]
        else:
            names = sorted(set(metrics))
        out = []
        for metric in names:
            rows = self._rows(
                f"diagnostics of {metric!r}",
                "SELECT value FROM diagnostics WHERE metric = ? AND stream = 'real'"
                " ORDER BY id DESC LIMIT ?",
                (metric, window),
            )
            if rows:
                values = [float(row[0]) for row in reversed(rows)]
                out.append(summarise_trend(metric, values))
        return tuple(out)

    def open_incidents(self) -> tuple[Incident, ...]:
        """Incidents whose `resolved_at` is NULL, newest first (at most 100)."""
        rows = self._rows(
            "open incidents",
            "SELECT incident_id, opened_at, severity, source, summary, correlation_id"
            " FROM incidents WHERE resolved_at IS NULL"
            " ORDER BY opened_at DESC, incident_id DESC LIMIT ?",
            (MAX_OPEN_INCIDENTS,),
        )
        return tuple(
            Incident(
                incident_id=str(iid),
                opened_at=str(at),
                severity=str(sev),
                source=str(src),
                summary=str(summary),
                correlation_id=str(corr),
            )
            for iid, at, sev, src, summary, corr in rows
        )
