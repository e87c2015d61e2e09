"""The ingestion conversation: a draw, and the news that it entered the history."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from messages.base import Message, Model

Scalar = str | int | float | bool | None
DrawSource = Literal["external", "manual", "synthetic"]


class Draw(Model):
    """One observed draw: its id, when it happened, its value."""

    draw_id: str = Field(min_length=1, max_length=128)
    timestamp: AwareDatetime
    value: int = Field(ge=0)
    source: DrawSource = "external"
    metadata: dict[str, Scalar] = Field(default_factory=dict)
    """Extra fields of the input record, kept as they were."""


class DrawIngested(Message):
    """A draw was appended to the history (sent by Ingestion to the TriggerActor)."""

    kind: Literal["draw_ingested"] = "draw_ingested"
    draw: Draw
    stream: str = "real"
    """History stream: `real`, or `synthetic` for injector draws kept apart."""
    is_backfill: bool = False
    """Older than the latest draw: Chapter 13 must not score stale predictions against it."""
    history_len: int = Field(ge=1)
    fingerprint: str
    """The history hash chain's value after this draw."""


class InboxFileSeen(Message):
    """A file appeared in the inbox (Ingestion tells itself, so files are handled in order)."""

    kind: Literal["inbox_file_seen"] = "inbox_file_seen"
    path: str


class IngestInbox(Message):
    """Scan the inbox now and ingest every file found (used at start-up and by `--once`)."""

    kind: Literal["ingest_inbox"] = "ingest_inbox"


class InjectDraws(Message):
    """Inject `count` synthetic draws now (test mode only; Ingestion tells itself on a timer).

    Refused, with a log line and a reply of 0, unless both `test_mode` and `synthetic.enabled`
    are true at the moment it is handled.
    """

    kind: Literal["inject_draws"] = "inject_draws"
    count: int = Field(1, ge=1, le=1_000_000)
