"""Fixtures of the ingestion tests: a migrated store connection and draw builders."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from actors.store import connect

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterator
    from pathlib import Path

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def stamp(minutes: int) -> str:
    """An ISO 8601 UTC timestamp `minutes` after the epoch of these tests."""
    return (EPOCH + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def record(n: int, value: int | None = None, **extra: Any) -> dict[str, Any]:
    """Draw record number `n`: id `t-n`, minute `n`, value `n * 7 % 1000` unless given."""
    return {
        "draw_id": f"t-{n:05d}",
        "timestamp": stamp(n),
        "value": (n * 7) % 1000 if value is None else value,
        **extra,
    }


def json_bytes(records: list[dict[str, Any]]) -> bytes:
    """A JSON draw file's bytes."""
    return json.dumps(records).encode()


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """A fresh, migrated state store connection."""
    connection = connect(tmp_path / "state.db")
    yield connection
    connection.close()
