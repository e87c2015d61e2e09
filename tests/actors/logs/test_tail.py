"""logs tail: filters, formatting, and following across truncation and rotation."""

from __future__ import annotations

import json
import os
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import anyio
import pytest

from actors.logs.filters import Filters, format_audit, format_log, parse_line, parse_since
from actors.logs.follow import read_lines

if TYPE_CHECKING:
    from pathlib import Path

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
LINE = {
    "timestamp": "2026-11-24T11:59:00+00:00",
    "level": "warning",
    "event": "x",
    "logger": "watcher",
    "correlation_id": "c1",
    "k": 1,
}


def test_since_accepts_durations_and_timestamps() -> None:
    """10m and 2h are counted back from now; an ISO stamp is taken as it is."""
    assert parse_since("10m", NOW) == NOW - timedelta(minutes=10)
    assert parse_since("2h", NOW) == NOW - timedelta(hours=2)
    assert parse_since("2026-01-01T00:00:00Z") == datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="expected a duration"):
        parse_since("yesterday")


@pytest.mark.parametrize(
    ("filters", "passes"),
    [
        (Filters(), True),
        (Filters(actor="watcher"), True),
        (Filters(actor="gpu"), False),
        (Filters(level="warning"), True),
        (Filters(level="error"), False),
        (Filters(correlation_id="c1"), True),
        (Filters(correlation_id="c2"), False),
        (Filters(since=NOW - timedelta(minutes=5)), True),
        (Filters(since=NOW), False),
    ],
)
def test_filters(filters: Filters, passes: bool) -> None:
    """Each filter keeps what matches and drops what does not."""
    assert filters.passes(LINE) is passes


def test_formats_are_readable_and_garbage_is_skipped() -> None:
    """Human lines show time, level, actor, event and the flow; junk lines parse to None."""
    text = format_log(LINE)
    for part in ("11:59:00", "WARNING", "watcher", "[c1]", "k=1"):
        assert part in text
    audit = {
        "recorded_at": LINE["timestamp"],
        "actor": "gpu",
        "entity": "lease",
        "entity_id": "L1",
        "event": "returned",
        "from_state": "out",
        "to_state": "returned",
        "correlation_id": "c1",
        "detail": {"job": "sieve"},
    }
    assert "lease:L1 returned (out → returned)" in format_audit(audit)
    assert parse_line("{torn") is None
    assert parse_line("[1, 2]") is None


@pytest.mark.anyio
async def test_follow_survives_truncation_and_rotation(tmp_path: Path) -> None:
    """Following keeps reading after the file is truncated and after it is replaced."""
    path = tmp_path / "log.jsonl"
    path.write_text(json.dumps({"n": 1}) + "\n")
    seen: list[int] = []
    arrived = anyio.Event()

    async def follow() -> None:
        nonlocal arrived
        async with aclosing(read_lines(path, follow=True, poll_s=0.01)) as lines:
            async for line in lines:
                seen.append(json.loads(line)["n"])
                arrived.set()
                arrived = anyio.Event()
                if len(seen) == 4:
                    return

    async def wait_for(count: int) -> None:
        with anyio.fail_after(10):
            while len(seen) < count:
                await arrived.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(follow)
        await wait_for(1)
        with path.open("a") as handle:
            handle.write(json.dumps({"n": 2}) + "\n")
        await wait_for(2)
        path.write_text("")  # truncation
        await anyio.sleep(0.05)
        with path.open("a") as handle:
            handle.write(json.dumps({"n": 3}) + "\n")
        await wait_for(3)
        rotated = tmp_path / "log.jsonl.1"
        os.replace(path, rotated)
        path.write_text(json.dumps({"n": 4}) + "\n")
    assert seen == [1, 2, 3, 4]
