"""The IngestionActor in the real system, the TriggerActor replaced by a probe."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import pytest

from actors.ingestion import IngestionActor
from actors.ingestion.history import verify_chain
from actors.ingestion.ingest import ingest_bytes
from actors.services import INGESTION, TRIGGER, WATCHER
from actors.store import connect
from actors.testing import ProbeRecord, harness_settings, open_test_system, probe
from messages.ingestion import DrawIngested, IngestInbox, InjectDraws
from tests.actors.ingestion.conftest import json_bytes, record

if TYPE_CHECKING:
    from pathlib import Path

    from actors.testing import Harness

pytestmark = pytest.mark.anyio


def drop(inbox: Path, name: str, records: list[dict[str, Any]] | bytes) -> None:
    """Write beside the inbox, then rename in, as writers must."""
    inbox.mkdir(parents=True, exist_ok=True)
    tmp = inbox.parent / f".{name}.tmp"
    tmp.write_bytes(records if isinstance(records, bytes) else json_bytes(records))
    os.replace(tmp, inbox / name)


async def scan(harness: Harness) -> int:
    """Ask the actor to scan the inbox now; returns the files it handled."""
    return int(await harness.system.ref(INGESTION).ask(IngestInbox(), timeout=30))


def draw_ids(record_: ProbeRecord) -> list[str]:
    return [m.draw.draw_id for m in record_.of(DrawIngested)]


async def test_good_files_are_announced_and_bad_ones_set_aside(tmp_path: Path) -> None:
    """Good draws reach the trigger in order (backfill flagged); a bad file gets a reason."""
    drop(tmp_path / "inbox", "a.json", [record(5), record(2)])
    drop(tmp_path / "inbox", "b.json", b"\xff\xfe not text")
    async with open_test_system(tmp_path, fakes={TRIGGER: probe()}) as harness:
        assert await scan(harness) == 0  # on_start's scan already took both
        await harness.system.wait_idle()
        trigger = harness.probe(TRIGGER)
        got = trigger.of(DrawIngested)
        assert [(m.draw.draw_id, m.is_backfill, m.history_len) for m in got] == [
            ("t-00005", False, 1),
            ("t-00002", True, 2),
        ]
        assert {m.correlation_id for m in got} == {got[0].correlation_id}
        assert got[-1].stream == "real"
    reason = json.loads((tmp_path / "quarantine" / "b.json.reason.json").read_text())
    assert reason["rule"] == "file is not UTF-8"
    assert reason["file"] == "b.json"
    assert (tmp_path / "quarantine" / "b.json").read_bytes() == b"\xff\xfe not text"
    assert (tmp_path / "processed" / "a.json").exists()
    assert not list((tmp_path / "inbox").iterdir())


async def test_duplicates_are_not_announced_again(tmp_path: Path) -> None:
    """The same file twice: the second is processed, nothing new is announced."""
    async with open_test_system(tmp_path, fakes={TRIGGER: probe()}) as harness:
        drop(tmp_path / "inbox", "a.json", [record(1), record(2)])
        await scan(harness)
        drop(tmp_path / "inbox", "a.json", [record(1), record(2)])
        await scan(harness)
        await harness.system.wait_idle()
        assert draw_ids(harness.probe(TRIGGER)) == ["t-00001", "t-00002"]
    assert len(list((tmp_path / "processed").iterdir())) == 2


async def test_an_oversized_file_is_quarantined_unread(tmp_path: Path) -> None:
    """A file over ingestion.max_file_mb is set aside by size, before it is read."""
    settings = harness_settings(tmp_path, ingestion={"max_file_mb": 0.001})
    drop(tmp_path / "inbox", "big.txt", b"x" * 2000)
    async with open_test_system(tmp_path, fakes={TRIGGER: probe()}, settings=settings):
        pass
    reason = json.loads((tmp_path / "quarantine" / "big.txt.reason.json").read_text())
    assert reason["rule"] == "file is larger than 1048 bytes"
    assert reason["detail"] == "2000 bytes (not read)"


async def test_a_thousand_files_dropped_at_once_each_draw_exactly_once(tmp_path: Path) -> None:
    """1,000 files renamed into a watched inbox: 1,000 announcements, no loss, no double."""
    settings = harness_settings(tmp_path, ingestion={"rescan_interval_s": 0.5})
    # The watcher is a probe too: its own awatch holds shutdown for up to 5 s (not ours).
    async with open_test_system(
        tmp_path, fakes={TRIGGER: probe(), WATCHER: probe()}, settings=settings, once=False
    ) as harness:
        inbox = harness.services.paths.inbox
        for n in range(1000):
            drop(inbox, f"f{n:04d}.json", [record(n)])
        trigger = harness.probe(TRIGGER)
        await trigger.expect(DrawIngested, within=60, after=999)
        # One more scan after the inbox is empty, and a full rescan period: nothing more.
        await scan(harness)
        await trigger.expect_nothing(for_=0.6, kind=DrawIngested)
        ids = draw_ids(trigger)
        assert len(ids) == 1000
        assert set(ids) == {f"t-{n:05d}" for n in range(1000)}
        lengths = sorted(m.history_len for m in trigger.of(DrawIngested))
        assert lengths == list(range(1, 1001))
    conn = connect(tmp_path / "state.db")
    assert tuple(
        conn.execute("SELECT COUNT(*), COUNT(DISTINCT draw_id) FROM draws").fetchone()
    ) == (
        1000,
        1000,
    )
    assert verify_chain(conn, "real").ok
    conn.close()
    assert len(list((tmp_path / "processed").iterdir())) == 1000
    assert not list((tmp_path / "inbox").iterdir())


async def test_draws_committed_before_a_crash_are_announced_once_at_start(
    tmp_path: Path,
) -> None:
    """Committed but not announced (a crash before the tells): announced at start-up; the file
    still in the inbox is moved, and its draws are not appended a second time."""
    drop(tmp_path / "inbox", "a.json", [record(1), record(2), record(3)])
    conn = connect(tmp_path / "state.db")
    ingest_bytes(
        conn,
        "a.json",
        (tmp_path / "inbox" / "a.json").read_bytes(),
        mod=1000,
        max_bytes=10**6,
        origin="inbox",
        correlation_id="before-the-crash",
    )
    conn.close()
    async with open_test_system(tmp_path, fakes={TRIGGER: probe()}) as harness:
        await harness.system.wait_idle()
        trigger = harness.probe(TRIGGER)
        assert draw_ids(trigger) == ["t-00001", "t-00002", "t-00003"]
        assert {m.correlation_id for m in trigger.of(DrawIngested)} == {"before-the-crash"}
        await scan(harness)
        await harness.system.wait_idle()
        assert len(trigger.of(DrawIngested)) == 3
    conn = connect(tmp_path / "state.db")
    assert conn.execute("SELECT COUNT(*) FROM draws").fetchone()[0] == 3
    assert (
        conn.execute("SELECT COUNT(*) FROM ingest_files WHERE announced_at IS NULL").fetchone()[0]
        == 0
    )
    assert verify_chain(conn, "real").ok
    conn.close()
    assert (tmp_path / "processed" / "a.json").exists()


def write_config(path: Path, *, test_mode: bool, enabled: bool) -> None:
    path.write_text(
        f"test_mode = {str(test_mode).lower()}\n[synthetic]\nenabled = {str(enabled).lower()}\n"
        "seed = 4242\n"
    )


async def test_the_injector_rereads_its_flags_on_every_injection(tmp_path: Path) -> None:
    """Injections run while the config file says both flags are on, and stop when it does not;
    synthetic draws go to the synthetic stream only."""
    config = tmp_path / "watcher.toml"
    write_config(config, test_mode=True, enabled=True)
    settings = harness_settings(tmp_path, synthetic={"enabled": True})
    ingestion = (ProbeRecord(), lambda s: IngestionActor(s, config_path=config))
    async with open_test_system(
        tmp_path, fakes={TRIGGER: probe(), INGESTION: ingestion}, settings=settings
    ) as harness:
        ref = harness.system.ref(INGESTION)
        assert await ref.ask(InjectDraws(count=3), timeout=10) == 3
        write_config(config, test_mode=True, enabled=False)
        assert await ref.ask(InjectDraws(count=3), timeout=10) == 0
        write_config(config, test_mode=False, enabled=True)
        assert await ref.ask(InjectDraws(count=3), timeout=10) == 0
        config.write_text("test_mode = [broken")
        assert await ref.ask(InjectDraws(count=3), timeout=10) == 0
        write_config(config, test_mode=True, enabled=True)
        assert await ref.ask(InjectDraws(count=2), timeout=10) == 2
        await harness.system.wait_idle()
        got = harness.probe(TRIGGER).of(DrawIngested)
        assert [m.draw.draw_id for m in got] == [f"syn-{n:010d}" for n in range(5)]
        assert {(m.stream, m.draw.source) for m in got} == {("synthetic", "synthetic")}
    conn = connect(tmp_path / "state.db")
    assert conn.execute("SELECT COUNT(*) FROM draws WHERE stream = 'real'").fetchone()[0] == 0
    conn.close()


async def test_the_daemon_injects_on_its_timer_in_test_mode(tmp_path: Path) -> None:
    """With both flags on and a short interval, the watching actor injects by itself."""
    settings = harness_settings(tmp_path, synthetic={"enabled": True, "interval_s": 0.01})
    # The watcher is a probe too: its own awatch holds shutdown for up to 5 s (not ours).
    async with open_test_system(
        tmp_path, fakes={TRIGGER: probe(), WATCHER: probe()}, settings=settings, once=False
    ) as harness:
        trigger = harness.probe(TRIGGER)
        await trigger.expect(DrawIngested, within=10, after=2)
        positions = [m.draw.metadata["position"] for m in trigger.of(DrawIngested)][:3]
        assert positions == [0, 1, 2]


async def test_without_test_mode_nothing_is_ever_injected(tmp_path: Path) -> None:
    """test_mode false: an InjectDraws is refused and nothing reaches the store."""
    settings = harness_settings(tmp_path, synthetic={"enabled": True}).model_copy(
        update={"test_mode": False}
    )
    async with open_test_system(tmp_path, fakes={TRIGGER: probe()}, settings=settings) as harness:
        assert await harness.system.ref(INGESTION).ask(InjectDraws(count=5), timeout=10) == 0
        await anyio.lowlevel.checkpoint()
    conn = connect(tmp_path / "state.db")
    assert conn.execute("SELECT COUNT(*) FROM draws").fetchone()[0] == 0
    conn.close()
