"""Pure pieces of `logs tail`: parse a line, decide whether it passes the filters, format it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`10m`, `2h`, `1.5d`, `30s` ago, or an ISO 8601 timestamp, as an aware UTC datetime.

    Raises:
        ValueError: neither a duration nor a timestamp (the message says which forms work).
    """
    match = _DURATION.match(text.strip())
    if match:
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
        return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
    try:
        stamp = datetime.fromisoformat(text.strip())
    except ValueError:
        msg = f"--since {text!r}: expected a duration like 30s, 10m, 2h, 1d or an ISO timestamp"
        raise ValueError(msg) from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Filters:
    """What a line must match to be shown; None means "any"."""

    actor: str | None = None
    level: str | None = None
    correlation_id: str | None = None
    since: datetime | None = None

    def passes(self, record: dict[str, Any], *, audit: bool = False) -> bool:
        """True when the record matches every filter that is set."""
        who = record.get("actor") if audit else record.get("logger")
        if self.actor is not None and who != self.actor:
            return False
        level = _LEVELS.get(str(record.get("level")), 0)
        if self.level is not None and not audit and level < _LEVELS[self.level]:
            return False
        if self.correlation_id is not None and not str(
            record.get("correlation_id") or ""
        ).startswith(self.correlation_id):
            return False
        if self.since is not None:
            stamp = record.get("recorded_at" if audit else "timestamp")
            try:
                when = datetime.fromisoformat(str(stamp))
            except ValueError:
                return False
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            if when < self.since:
                return False
        return True


def parse_line(line: str) -> dict[str, Any] | None:
    """One JSON object per line; anything else (a torn last line, garbage) is None."""
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _short_time(stamp: object) -> str:
    text = str(stamp or "")
    return text[11:23] if len(text) >= 23 else text


def format_log(record: dict[str, Any]) -> str:
    """A human-readable log line: time, level, actor, event, the rest as key=value, [cid]."""
    skip = {"timestamp", "level", "logger", "event", "correlation_id", "message_id"}
    extras = " ".join(
        f"{key}={json.dumps(value, default=str) if not isinstance(value, str) else value}"
        for key, value in record.items()
        if key not in skip
    )
    cid = record.get("correlation_id")
    tail = f" [{str(cid)[:8]}]" if cid else ""
    return (
        f"{_short_time(record.get('timestamp'))} {str(record.get('level', '')).upper():<8} "
        f"{record.get('logger', '-'):<10} {record.get('event', '')}"
        + (f"  {extras}" if extras else "")
        + tail
    )


def format_audit(record: dict[str, Any]) -> str:
    """A human-readable audit record: time, actor, entity id, transition, details."""
    transition = f"{record.get('from_state') or '·'} → {record.get('to_state') or '·'}"
    detail = record.get("detail") or {}
    extras = " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in detail.items())
    return (
        f"{_short_time(record.get('recorded_at'))} {record.get('actor', '-'):<10} "
        f"{record.get('entity')}:{str(record.get('entity_id', ''))[:24]} "
        f"{record.get('event')} ({transition})"
        + (f"  {extras}" if extras else "")
        + f" [{str(record.get('correlation_id', ''))[:8]}]"
    )
