"""Fixtures for the bundle-factory tests: a state directory, a fixed clock, a seeded store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from actors.store.schema import connect
from bundle_factory.selftest import seed_store

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Iterator
    from pathlib import Path

NOW = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """A state directory holding `survivors.json` (20 bytes) and `models/current.json`."""
    root = tmp_path / "state"
    (root / "models").mkdir(parents=True)
    (root / "survivors.json").write_bytes(b'{"survivors": 1284}\n')
    (root / "models" / "current.json").write_bytes(b'{"model": "m1"}\n')
    return root


@pytest.fixture
def clock() -> Callable[[], datetime]:
    """A clock frozen at 2025-03-01 09:30 UTC."""
    return lambda: NOW


@pytest.fixture
def store(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """A real, migrated state store seeded with the self-test's sample records."""
    conn = connect(tmp_path / "store.sqlite")
    seed_store(conn)
    yield conn
    conn.close()
