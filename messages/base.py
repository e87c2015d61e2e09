"""The base of every message and shared domain model.

Every model is frozen and refuses unknown keys; every message carries the envelope fields
(ARCHITECTURE §2) so that a flow can be followed across actors by its correlation id.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field


def new_id() -> str:
    """Return a fresh unique id (32 lowercase hex digits)."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


class Model(BaseModel):
    """Base of every shared domain model: frozen, unknown keys refused, versioned."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = 1
    """Bumped when the model's meaning changes; readers refuse versions they do not know."""


class Message(Model):
    """Base of every message exchanged between actors; subclasses add a `kind` literal."""

    kind: str
    message_id: str = Field(default_factory=new_id)
    """Unique per message."""
    correlation_id: str = Field(default_factory=new_id)
    """One per request or draw flow, carried through every actor that works on it."""
    causation_id: str | None = None
    """The message_id of the message that caused this one, if any."""
    sender: str | None = None
    """Name of the sending actor, filled in by the kernel when absent."""
    sent_at: datetime = Field(default_factory=utcnow)

    @classmethod
    def caused_by(cls, cause: Message, **fields: Any) -> Self:
        """Build a message in the same flow as `cause` (same correlation id, caused by it)."""
        fields.setdefault("correlation_id", cause.correlation_id)
        fields.setdefault("causation_id", cause.message_id)
        return cls(**fields)
