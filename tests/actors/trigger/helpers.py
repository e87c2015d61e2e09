"""Actor-test helpers: draws, pools, proposals, and the store rows a test reads or seeds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from actors.trigger import decision_store
from messages.artifacts import PredictedValue, PredictionPool
from messages.decisions import Chapter13Action, Chapter13Proposal, FailureMode, RiskLevel
from messages.enums import LearningLoopScope
from messages.ingestion import Draw, DrawIngested

if TYPE_CHECKING:
    import sqlite3

    from actors.testing import Harness

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def draw_id(i: int) -> str:
    """The id of draw `i`."""
    return f"d-{i:04d}"


def ingested(i: int, value: int, *, backfill: bool = False, stream: str = "real") -> DrawIngested:
    """What Ingestion tells the trigger about draw `i`."""
    draw = Draw(draw_id=draw_id(i), timestamp=EPOCH + timedelta(hours=i), value=value)
    return DrawIngested(
        draw=draw, stream=stream, is_backfill=backfill, history_len=i + 1, fingerprint=f"fp{i}"
    )


def pool(after: int | None, values: list[int], model_id: str = "m1") -> PredictionPool:
    """A pool for the draw after draw `after` (None: the first draw)."""
    share = 1.0 / len(values)
    return PredictionPool(
        pool_id=f"pool-{after}-{'-'.join(map(str, values))}",
        k=len(values),
        mod=1000,
        predictions=tuple(PredictedValue(value=v, confidence=share, support=1) for v in values),
        last_draw_id=None if after is None else draw_id(after),
        last_draw_timestamp=None,
        n_draws=0 if after is None else after + 1,
        history_fingerprint=None,
        model_id=model_id,
    )


def routine_proposal(**over: Any) -> Chapter13Proposal:
    """A proposal the acceptance rules auto-accept."""
    base: dict[str, Any] = {
        "analysis_summary": "miss streak; retrain the ranking",
        "failure_mode": FailureMode.FEATURE_RELEVANCE,
        "confidence": 0.8,
        "recommended_action": Chapter13Action.RETRAIN,
        "retrain_scope": LearningLoopScope.STEPS_5_6,
        "risk_level": RiskLevel.LOW,
        "requires_human_review": False,
    }
    return Chapter13Proposal(**{**base, **over})


async def rows(harness: Harness, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of a query on the harness's store."""

    def query(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in conn.execute(sql, params).fetchall()]

    return await harness.services.store.run(query)


async def seed_draws(harness: Harness, values: list[int], start: int = 0) -> None:
    """Insert real draws into the history table (Ingestion's job in the running system)."""

    def insert(conn: sqlite3.Connection) -> None:
        conn.executemany(
            "INSERT INTO draws (draw_id, stream, timestamp, value, source, fingerprint,"
            " ingested_at) VALUES (?, 'real', ?, ?, 'external', ?, ?)",
            [
                (
                    draw_id(start + i),
                    (EPOCH + timedelta(hours=start + i)).isoformat(),
                    v,
                    f"fp{start + i}",
                    EPOCH.isoformat(),
                )
                for i, v in enumerate(values)
            ],
        )

    await harness.services.store.transaction(insert)


async def decisions(harness: Harness) -> list[dict[str, Any]]:
    """Every trigger decision, oldest first."""

    def query(conn: sqlite3.Connection) -> list[dict[str, Any]]:
        ids = conn.execute(
            "SELECT decision_id FROM trigger_decisions ORDER BY created_at, rowid"
        ).fetchall()
        return [d for (i,) in ids if (d := decision_store.decision(conn, i)) is not None]

    return await harness.services.store.run(query)


def audit_events(harness: Harness, entity: str) -> list[dict[str, Any]]:
    """Audit records of one entity kind."""
    lines = harness.services.paths.audit.read_text().splitlines()
    return [r for line in lines if (r := json.loads(line))["entity"] == entity]
