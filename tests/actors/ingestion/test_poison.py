"""Poison in the inbox is quarantined with a reason and never takes the actor down."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.ingestion import actor as ingestion_actor
from actors.ingestion.inflight import MAX_ATTEMPTS, NOTE, InFlight, write_note
from actors.ingestion.parse import DrawFileError, parse_draw_file
from actors.safefile import (
    MAX_DEPTH,
    NotRegularError,
    TooLargeError,
    lease_says_written,
    open_writers,
    read_regular,
)
from actors.services import INGESTION, TRIGGER
from actors.testing import open_test_system, probe
from messages.ingestion import Draw, DrawIngested, IngestInbox
from tests.actors.ingestion.conftest import json_bytes, record

if TYPE_CHECKING:
    from pathlib import Path

    from actors.testing import Harness

pytestmark = pytest.mark.anyio


def drop(inbox: Path, name: str, body: bytes) -> None:
    """Write beside the inbox, then rename in."""
    inbox.mkdir(parents=True, exist_ok=True)
    tmp = inbox.parent / f".{name}.tmp"
    tmp.write_bytes(body)
    os.replace(tmp, inbox / name)


def reasons(quarantine: Path) -> dict[str, dict[str, Any]]:
    """file name -> its reason record, for every reason file in `quarantine`."""
    out = {}
    for path in quarantine.glob("*.reason.json"):
        data = json.loads(path.read_text())
        out[data["file"]] = data
    return out


async def scan(harness: Harness) -> int:
    return int(await harness.system.ref(INGESTION).ask(IngestInbox(), timeout=30))


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        (b'[{"timestamp": "2026-01-01T00:00Z", "value": ' + b"7" * 5000 + b"}]", "digits"),
        (b'[{"timestamp": "0001-01-01T00:00+05:00", "value": 1}]', "timestamp out of range"),
        (b'[{"timestamp": "9999-12-31T23:59-05:00", "value": 1}]', "timestamp out of range"),
        (b'[{"timestamp": "1850-01-01T00:00Z", "value": 1}]', "timestamp out of range"),
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper"),
        (
            b'[{"timestamp": "2026-01-01T00:00Z", "value": 1, "m": '
            + b"[" * 40
            + b"]" * 40
            + b"}]",
            "nested deeper",
        ),
    ],
)
def test_unbounded_inputs_break_a_named_rule(body: bytes, rule: str) -> None:
    """Huge integers, year-1/9999 offsets, deep nesting: a DrawFileError naming the bound."""
    with pytest.raises(DrawFileError) as info:
        parse_draw_file("x.json", body, mod=1000)
    assert rule in info.value.rule


@settings(max_examples=150, deadline=None)
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
            lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids),
            max_leaves=30,
        ).map(lambda v: json.dumps(v).encode()),
    ),
    suffix=st.sampled_from([".json", ".csv", ".txt", ".xml"]),
)
def test_any_bytes_parse_or_break_a_rule(body: bytes, suffix: str) -> None:
    """Whatever the bytes, parsing returns draws or raises DrawFileError, nothing else."""
    rule = ""
    draws: tuple[Draw, ...] = ()
    try:
        draws = parse_draw_file("f" + suffix, body, mod=1000)
    except DrawFileError as exc:
        rule = exc.rule
    assert bool(rule) != bool(draws)
    assert all(0 <= d.value < 1000 for d in draws)


def test_read_regular_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    """FIFO, directory, symlink (even to a regular file) are refused without blocking; a file
    over the limit is refused unread."""
    os.mkfifo(tmp_path / "f.json")
    (tmp_path / "d.json").mkdir()
    (tmp_path / "real.json").write_bytes(b"[]")
    (tmp_path / "s.json").symlink_to(tmp_path / "real.json")
    (tmp_path / "z.json").symlink_to("/dev/zero")
    kinds = {}
    for name in ("f.json", "d.json", "s.json", "z.json"):
        with pytest.raises(NotRegularError) as info:
            read_regular(tmp_path / name, 1000)
        kinds[name] = info.value.kind
    assert kinds == {
        "f.json": "FIFO",
        "d.json": "directory",
        "s.json": "symlink",
        "z.json": "symlink",
    }
    (tmp_path / "big.json").write_bytes(b"x" * 1001)
    with pytest.raises(TooLargeError):
        read_regular(tmp_path / "big.json", 1000)
    assert read_regular(tmp_path / "real.json", 1000) == b"[]"


def test_open_writers_names_a_file_held_open_for_writing(tmp_path: Path) -> None:
    """A file held open for writing is named by both probes (lease, /proc); once closed, not."""
    with (tmp_path / "w.txt").open("w") as handle:
        handle.write("x")
        handle.flush()
        (tmp_path / "r.txt").write_text("done")
        assert open_writers(tmp_path) == {"w.txt"}
        assert lease_says_written(tmp_path / "w.txt") is True
        assert lease_says_written(tmp_path / "r.txt") is False
    assert open_writers(tmp_path) == set()
    assert lease_says_written(tmp_path / "w.txt") is False
    assert lease_says_written(tmp_path / "gone.txt") is None


async def test_poison_entries_are_quarantined_and_good_files_still_processed(
    tmp_path: Path,
) -> None:
    """A batch of poison (FIFO, directories, symlinks, .xml, huge integer, year-1 offset) and two
    good files: every poison entry is quarantined with its rule, the good draws announced."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    os.mkfifo(inbox / "fifo.json")
    for n in range(3):
        (inbox / f"dir{n}.json").mkdir()
        (inbox / f"dir{n}.json" / "inner.json").write_bytes(json_bytes([record(90 + n)]))
    (inbox / "zero.json").symlink_to("/dev/zero")
    (inbox / "dangling.csv").symlink_to(tmp_path / "nowhere")
    drop(inbox, "a.xml", b"<draws/>")
    drop(inbox, "big.json", b'[{"timestamp": "2026-01-01T00:00Z", "value": ' + b"9" * 5000 + b"}]")
    drop(inbox, "year1.json", b'[{"timestamp": "0001-01-01T00:00+05:00", "value": 1}]')
    drop(inbox, "good1.json", json_bytes([record(1), record(2)]))
    drop(inbox, "good2.txt", b"2026-01-01T00:03Z 417\n")
    async with open_test_system(tmp_path, fakes={TRIGGER: probe()}) as harness:
        await harness.system.wait_idle()
        assert await scan(harness) == 0
        got = sorted(m.draw.value for m in harness.probe(TRIGGER).of(DrawIngested))
        assert got == sorted([7, 14, 417])
        assert harness.system.ref(INGESTION)._cell.restarts == 0
    found = reasons(tmp_path / "quarantine")
    rules = {name: found[name]["rule"] for name in found}
    assert rules["fifo.json"] == "not a regular file (FIFO)"
    assert rules["zero.json"] == "not a regular file (symlink)"
    assert rules["dangling.csv"] == "not a regular file (symlink)"
    assert all(rules[f"dir{n}.json"] == "not a regular file (directory)" for n in range(3))
    assert rules["a.xml"].startswith("unknown file type '.xml'")
    assert "digits" in rules["big.json"]
    assert rules["year1.json"] == "timestamp out of range [1900, 2200)"
    assert not list(inbox.iterdir())
    assert (tmp_path / "quarantine" / "zero.json").is_symlink()


async def test_a_file_that_crashes_the_handler_is_quarantined_with_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception no rule foresaw: the file is quarantined with it; the actor never restarts
    and the next file is processed."""

    def explode(name: str, data: bytes, **_: Any) -> Any:
        if name == "boom.json":
            msg = "a bug the corpus found"
            raise RuntimeError(msg)
        return parse_draw_file(name, data, mod=1000)

    monkeypatch.setattr(ingestion_actor, "parse_draw_file", explode)
    drop(tmp_path / "inbox", "boom.json", json_bytes([record(1)]))
    drop(tmp_path / "inbox", "fine.json", json_bytes([record(2)]))
    async with open_test_system(tmp_path, fakes={TRIGGER: probe()}) as harness:
        await harness.system.wait_idle()
        assert [m.draw.draw_id for m in harness.probe(TRIGGER).of(DrawIngested)] == ["t-00002"]
        assert harness.system.ref(INGESTION)._cell.restarts == 0
    reason = reasons(tmp_path / "quarantine")["boom.json"]
    assert reason["rule"] == "file crashed the ingestion handler"
    assert reason["detail"] == "RuntimeError: a bug the corpus found"


async def test_a_file_still_open_for_writing_is_left_until_closed(tmp_path: Path) -> None:
    """Written in place (no rename): not read while its writer holds it open; read after."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    async with open_test_system(tmp_path, fakes={TRIGGER: probe()}) as harness:
        with (inbox / "slow.txt").open("w") as handle:
            handle.write("2026-01-01T00:01Z 1")
            handle.flush()
            assert await scan(harness) == 1
            assert (inbox / "slow.txt").exists()
            handle.write("23\n2026-01-01T00:02Z 456\n")
        assert await scan(harness) == 1
        await harness.system.wait_idle()
        values = [m.draw.value for m in harness.probe(TRIGGER).of(DrawIngested)]
        assert values == [123, 456]


def test_depth_bound_is_the_documented_one() -> None:
    """MAX_DEPTH levels pass, one more is refused (for metadata-free lists of records)."""
    ok = b"[" * (MAX_DEPTH - 1) + b"[]" + b"]" * (MAX_DEPTH - 1)
    with pytest.raises(DrawFileError) as info:
        parse_draw_file("x.json", ok, mod=1000)
    assert "nested deeper" not in info.value.rule
    too_deep = b"[" * MAX_DEPTH + b"[]" + b"]" * MAX_DEPTH
    with pytest.raises(DrawFileError, match="nested deeper"):
        parse_draw_file("x.json", too_deep, mod=1000)


@pytest.mark.parametrize(("attempts", "quarantined"), [(MAX_ATTEMPTS, True), (1, False)])
async def test_a_file_the_daemon_died_on_repeatedly_is_quarantined_at_start(
    tmp_path: Path, attempts: int, quarantined: bool
) -> None:
    """The in-flight note names a file still in the inbox: after MAX_ATTEMPTS deaths on it,
    the start quarantines it unread; after one (a kill -9 mid-file), it is ingested again.
    Either way the other file is ingested and the note is gone."""
    inbox = tmp_path / "inbox"
    drop(inbox, "killer.json", json_bytes([record(1)]))
    drop(inbox, "other.json", json_bytes([record(2)]))
    write_note(tmp_path, InFlight("killer.json", (inbox / "killer.json").stat().st_ino, attempts))
    async with open_test_system(tmp_path, fakes={TRIGGER: probe()}) as harness:
        await harness.system.wait_idle()
        got = sorted(m.draw.draw_id for m in harness.probe(TRIGGER).of(DrawIngested))
    assert got == (["t-00002"] if quarantined else ["t-00001", "t-00002"])
    found = reasons(tmp_path / "quarantine")
    if quarantined:
        assert found["killer.json"]["rule"] == (
            f"file was being handled when the daemon died {MAX_ATTEMPTS} times"
        )
    else:
        assert found == {}
    assert not (tmp_path / NOTE).exists()
