"""SqliteRetriever: tier 2 read from a real, seeded store through the tables' owners."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from actors.bundle import SqliteRetriever
from bundle_factory import RetrievalError, Retriever, TrendDirection, build_llm_context
from bundle_factory.selftest import SAMPLE_RESULTS

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

NOW = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


def test_the_store_retriever_satisfies_the_protocol(store: sqlite3.Connection) -> None:
    """SqliteRetriever is a Retriever."""
    assert isinstance(SqliteRetriever(store), Retriever)


def test_recent_outcomes_are_the_newest_step_and_request_records(store: sqlite3.Connection) -> None:
    """The last n outcomes of both tables come back merged, newest first."""
    outcomes = SqliteRetriever(store).recent_outcomes(5)
    assert [o.recorded_at for o in outcomes] == sorted(
        (o.recorded_at for o in outcomes), reverse=True
    )
    assert len(outcomes) == 5
    first = outcomes[0]
    assert (first.source, first.request_id, first.request_type) == (
        "request",
        "req-003",
        "learning_loop",
    )
    step = outcomes[1]
    assert (step.source, step.step_id, step.attempt, step.action) == ("step", 6, 2, "proceed")
    assert step.confidence == pytest.approx(0.82)
    assert step.summary == "sample step outcome 11"
    assert SqliteRetriever(store).recent_outcomes(0) == ()


def test_open_incidents_exclude_resolved_ones(store: sqlite3.Connection) -> None:
    """Only incidents with resolved_at NULL are returned."""
    (incident,) = SqliteRetriever(store).open_incidents()
    assert incident.incident_id == "inc-1"
    assert incident.severity == "high"


def test_trends_are_computed_over_the_last_window_values(store: sqlite3.Connection) -> None:
    """Trends use the last `window` real values per metric, oldest first, by metric name."""
    trends = SqliteRetriever(store).trends(None, 5)
    by_metric = {t.metric: t for t in trends}
    assert list(by_metric) == ["confidence", "match_rate", "overfit_ratio"]
    assert by_metric["match_rate"].values == (0.024, 0.026, 0.027, 0.029, 0.03)
    assert by_metric["match_rate"].direction is TrendDirection.IMPROVING
    assert by_metric["confidence"].direction is TrendDirection.STABLE
    assert by_metric["overfit_ratio"].direction is TrendDirection.VOLATILE
    assert not by_metric["overfit_ratio"].higher_is_better
    (only,) = SqliteRetriever(store).trends(["match_rate", "not_recorded"], 3)
    assert only.values == (0.027, 0.029, 0.03)


def test_synthetic_diagnostics_are_ignored(store: sqlite3.Connection) -> None:
    """Diagnostics of the synthetic stream never reach a trend."""
    store.execute(
        "INSERT INTO diagnostics (draw_id, stream, metric, value, recorded_at)"
        " VALUES ('s1', 'synthetic', 'synthetic_only', 1.0, '2025-01-01')"
    )
    assert "synthetic_only" not in {t.metric for t in SqliteRetriever(store).trends(None, 10)}


def test_open_reads_a_store_file_read_only(tmp_path: Path, store: sqlite3.Connection) -> None:
    """SqliteRetriever.open reads an existing store and refuses to write to it."""
    retriever = SqliteRetriever.open(tmp_path / "store.sqlite")
    try:
        assert len(retriever.recent_outcomes(3)) == 3
        with pytest.raises(sqlite3.OperationalError):
            retriever._conn.execute("DELETE FROM incidents")
    finally:
        retriever.close()


def test_open_refuses_a_missing_store(tmp_path: Path) -> None:
    """A store that does not exist is a RetrievalError, and is not created."""
    with pytest.raises(RetrievalError, match="cannot open state store"):
        SqliteRetriever.open(tmp_path / "nope.sqlite")
    assert not (tmp_path / "nope.sqlite").exists()


def test_an_unmigrated_store_is_a_retrieval_error(tmp_path: Path) -> None:
    """A database without the store's tables raises RetrievalError naming what was read."""
    conn = sqlite3.connect(tmp_path / "empty.sqlite")
    with pytest.raises(RetrievalError, match="step outcomes"):
        SqliteRetriever(conn).recent_outcomes(3)
    conn.close()


def test_retrieved_records_reach_the_prompt(state_dir: Path, store: sqlite3.Connection) -> None:
    """Outcomes, trends and incidents from the store are rendered in tier 2."""
    prompt, _g, bundle = build_llm_context(
        5,
        SAMPLE_RESULTS[5],
        run_id="r",
        state_dir=state_dir,
        retriever=SqliteRetriever(store),
        clock=lambda: NOW,
    )
    assert len(bundle.context.recent_outcomes) == 10
    assert "request req-002 (learning_loop): failed: step 5 escalated" in prompt
    assert "- match_rate: improving over 8 values" in prompt
    assert "[high] watcher: request req-002 escalated" in prompt


def test_selfplay_bundle_carries_no_trends(state_dir: Path, store: sqlite3.Connection) -> None:
    """The selfplay bundle retrieves no diagnostics, and the prompt says so."""
    prompt, _g, bundle = build_llm_context(
        99,
        SAMPLE_RESULTS[99],
        run_id="r",
        state_dir=state_dir,
        retriever=SqliteRetriever(store),
        clock=lambda: NOW,
    )
    assert bundle.context.trend_summary == ()
    assert "excluded for this bundle type (no live ground truth)" in prompt


def test_request_outcomes_finished_together_come_greater_id_first(
    store: sqlite3.Connection,
) -> None:
    """Two request outcomes with the same finished_at are ordered by request id, descending,
    so the same store always gives the same tier 2 (and the same prompt bytes)."""
    at = "2025-02-01T00:00:00+00:00"
    for rid in ("req-a", "req-b"):
        store.execute(
            "INSERT INTO request_outcomes (request_id, request_type, status, correlation_id,"
            " finished_at) VALUES (?, 'learning_loop', 'done', 'c', ?)",
            (rid, at),
        )
    first, second = SqliteRetriever(store).recent_outcomes(2)
    assert (first.request_id, second.request_id) == ("req-b", "req-a")


@pytest.mark.parametrize(
    ("read", "what"),
    [
        (lambda r: r.trends(None, 3), "diagnostic metric names"),
        (lambda r: r.trends(["match_rate"], 3), "diagnostics of 'match_rate'"),
        (lambda r: r.open_incidents(), "open incidents"),
    ],
)
def test_each_source_names_itself_when_it_cannot_be_read(
    tmp_path: Path, read: Callable[[SqliteRetriever], object], what: str
) -> None:
    """A store without the tables fails every source with a RetrievalError naming that source."""
    conn = sqlite3.connect(tmp_path / "empty.sqlite")
    try:
        with pytest.raises(RetrievalError, match=re.escape(what)):
            read(SqliteRetriever(conn))
    finally:
        conn.close()
