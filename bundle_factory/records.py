"""Tier-2 records: what retrieval brings back from the state store."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from messages.base import Model


class OutcomeRecord(Model):
    """One finished step or request, as recorded by the watcher."""

    source: Literal["step", "request"]
    """Which table the record came from: `step_outcomes` or `request_outcomes`."""
    recorded_at: str
    """When it finished, as the store holds it (ISO 8601 text)."""
    status: str
    request_id: str
    run_id: str | None = None
    """Step outcomes only."""
    step_id: int | None = None
    """Step outcomes only."""
    attempt: int | None = None
    """Step outcomes only."""
    action: str | None = None
    """The decision taken (proceed / retry / escalate); step outcomes only."""
    confidence: float | None = None
    request_type: str | None = None
    """Request outcomes only."""
    summary: str = ""
    """Step summary or request reason."""


class TrendDirection(StrEnum):
    """The computed direction of a metric over its window (see `retrieval.classify_trend`)."""

    IMPROVING = "improving"
    DECLINING = "declining"
    STABLE = "stable"
    VOLATILE = "volatile"
    INSUFFICIENT = "insufficient"
    """Fewer values than a trend needs (3): reported rather than guessed."""


class TrendSummary(Model):
    """The direction and recent values of one diagnostic metric."""

    metric: str
    direction: TrendDirection
    values: tuple[float, ...]
    """The window's values, oldest first."""
    slope: float
    """Least-squares change per observation (0.0 with fewer than 2 values)."""
    higher_is_better: bool


class Incident(Model):
    """An open incident: a failed or escalated request nobody has resolved yet."""

    incident_id: str
    opened_at: str
    severity: str
    source: str
    summary: str
    correlation_id: str
