"""The audit trail: append-only, one JSON record per line, versioned, read back in order."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from actors.audit import AuditError, AuditLog, AuditRecord, read_audit

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio


async def test_records_are_appended_and_read_back_in_order(tmp_path: Path) -> None:
    """Concurrent appends each land whole; reading gives every record once."""
    log = AuditLog(tmp_path / "audit.jsonl")

    async def write(n: int) -> None:
        await log.append(
            AuditRecord(
                correlation_id=f"c{n}",
                entity="step",
                entity_id=str(n),
                event="done",
                actor="test",
                detail={"n": n},
            )
        )

    async with anyio.create_task_group() as tg:
        for n in range(50):
            tg.start_soon(write, n)
    log.close()
    records = list(read_audit(tmp_path / "audit.jsonl"))
    assert sorted(int(r.entity_id) for r in records) == list(range(50))
    with pytest.raises(AuditError, match="closed"):
        log.append_sync(records[0])


def test_a_broken_line_is_reported_with_its_number(tmp_path: Path) -> None:
    """A corrupt line names the file and line; an unknown schema version is refused."""
    path = tmp_path / "audit.jsonl"
    good = AuditRecord(
        correlation_id="c", entity="system", entity_id="s", event="started", actor="system"
    )
    path.write_text(good.model_dump_json() + "\n{oops\n")
    with pytest.raises(AuditError, match=r"audit.jsonl:2"):
        list(read_audit(path))
    path.write_text(good.model_copy(update={"schema_version": 99}).model_dump_json() + "\n")
    with pytest.raises(AuditError, match="unknown audit schema_version 99"):
        list(read_audit(path))
