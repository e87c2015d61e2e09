"""Tier 2 from the state store: the `Retriever` the BundleActor and the self-test hand the factory.

The factory (`bundle_factory.retrieval`) defines what tier 2 is and stays free of the store; this
module reads it through the tables' owners (`actors.watcher.steps`, `actors.watcher.outcomes`,
`actors.trigger.ledger`), so no SQL on those tables is written here.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

from actors.trigger import ledger
from actors.watcher import outcomes, steps
from bundle_factory.errors import RetrievalError
from bundle_factory.records import Incident, OutcomeRecord
from bundle_factory.retrieval import MAX_OPEN_INCIDENTS, MAX_TREND_METRICS, summarise_trend

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from bundle_factory.records import TrendSummary

P = ParamSpec("P")
T = TypeVar("T")


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

    def _read(
        self,
        what: str,
        read: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """`read(conn, *args, **kwargs)`, its SQLite failure a RetrievalError naming `what`."""
        try:
            return read(self._conn, *args, **kwargs)
        except sqlite3.Error as exc:
            msg = f"cannot read {what} from the state store for retrieval: {exc}"
            raise RetrievalError(msg) from exc

    def recent_outcomes(self, n: int) -> tuple[OutcomeRecord, ...]:
        """The last `n` of step_outcomes and request_outcomes together, newest first."""
        if n <= 0:
            return ()
        step_rows = self._read("step outcomes", steps.newest, n)
        request_rows = self._read("request outcomes", outcomes.latest, n)
        keyed: list[tuple[str, str, OutcomeRecord]] = []
        for row in step_rows:
            conf = row["confidence"]
            record = OutcomeRecord(
                source="step",
                recorded_at=str(row["recorded_at"]),
                status=str(row["status"]),
                request_id=str(row["request_id"]),
                run_id=str(row["run_id"]),
                step_id=int(row["step_id"]),
                attempt=int(row["attempt"]),
                action=str(row["action"]),
                confidence=None if conf is None else float(conf),
                summary=str(row["summary"]),
            )
            keyed.append((str(row["recorded_at"]), f"s{int(row['id']):012d}", record))
        for row in request_rows:
            req = row["request_id"]
            record = OutcomeRecord(
                source="request",
                recorded_at=str(row["finished_at"]),
                status=str(row["status"]),
                request_id=str(req),
                request_type=str(row["request_type"]),
                summary=str(row["reason"]),
            )
            keyed.append((str(row["finished_at"]), f"r{req}", record))
        keyed.sort(key=lambda item: (item[0], item[1]), reverse=True)
        return tuple(record for _at, _key, record in keyed[:n])

    def trends(self, metrics: Sequence[str] | None, window: int) -> tuple[TrendSummary, ...]:
        """The trend of each metric over its last `window` real-stream values, by metric name."""
        if metrics is None:
            names = self._read(
                "diagnostic metric names", ledger.real_metric_names, MAX_TREND_METRICS
            )
        else:
            names = sorted(set(metrics))
        out = []
        for metric in names:
            newest_first = self._read(
                f"diagnostics of {metric!r}", ledger.real_metric_values, metric, window
            )
            if newest_first:
                out.append(summarise_trend(metric, newest_first[::-1]))
        return tuple(out)

    def open_incidents(self) -> tuple[Incident, ...]:
        """Incidents whose `resolved_at` is NULL, newest first (at most 100)."""
        rows = self._read("open incidents", outcomes.open_incidents, MAX_OPEN_INCIDENTS)
        return tuple(
            Incident(
                incident_id=str(row["incident_id"]),
                opened_at=str(row["opened_at"]),
                severity=str(row["severity"]),
                source=str(row["source"]),
                summary=str(row["summary"]),
                correlation_id=str(row["correlation_id"]),
            )
            for row in rows
        )
