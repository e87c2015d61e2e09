"""Spool poison: non-regular entries, size, future dates, duplicates — rejected with a reason."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import anyio
import pytest

from actors.config import SpoolConfig
from actors.paths import StatePaths
from actors.services import GPU, LLM, TRIGGER, WATCHER
from actors.testing import PROCEED, ScriptedJob, open_test_system, probe, scripted_gpu, scripted_llm
from actors.watcher import spool
from messages.requests import ProcessSpool, SelfplayRetrain

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio


@pytest.fixture
def paths(tmp_path: Path) -> StatePaths:
    return StatePaths(tmp_path).ensure()


def test_a_request_over_the_size_limit_is_refused_unread(paths: StatePaths) -> None:
    """`spool.max_request_kb` bounds a request file (a 10 MB evidence used to run)."""
    request = SelfplayRetrain(request_id="big", evidence={"blob": "x" * 3000})
    path = paths.spool_dir("cur") / "big.json"
    path.write_text(request.model_dump_json())
    with pytest.raises(spool.SpoolError) as info:
        spool.parse(path, SpoolConfig(max_request_kb=2))
    assert info.value.rule == "file is larger than 2048 bytes"
    assert spool.parse(path, SpoolConfig(max_request_kb=8)).request_id == "big"


def test_created_at_in_the_future_beyond_the_skew_is_refused(paths: StatePaths) -> None:
    """A request dated 2099 is rejected; one a little ahead (within the skew) is taken."""
    now = datetime(2026, 6, 1, tzinfo=UTC)
    far = SelfplayRetrain(request_id="far", created_at=datetime(2099, 1, 1, tzinfo=UTC))
    near = SelfplayRetrain(request_id="near", created_at=now + timedelta(seconds=60))
    for request in (far, near):
        (paths.spool_dir("cur") / f"{request.request_id}.json").write_text(
            request.model_dump_json()
        )
    with pytest.raises(spool.SpoolError) as info:
        spool.parse(paths.spool_dir("cur") / "far.json", now=now)
    assert info.value.rule == "created_at is in the future"
    assert "clock_skew_s" in info.value.detail
    assert spool.parse(paths.spool_dir("cur") / "near.json", now=now).request_id == "near"


def test_non_regular_entries_are_refused_without_blocking(paths: StatePaths) -> None:
    """A FIFO, a directory and a symlink named `*.json` are listed and refused by parse."""
    new = paths.spool_dir("new")
    os.mkfifo(new / "fifo.json")
    (new / "dir.json").mkdir()
    (new / "zero.json").symlink_to("/dev/zero")
    (new / "gone.json").symlink_to(new / "nowhere")
    listed = spool.pending(paths)
    assert {p.name for p in listed} == {"fifo.json", "dir.json", "zero.json", "gone.json"}
    rules = {}
    for path in listed:
        with pytest.raises(spool.SpoolError) as info:
            spool.parse(path)
        rules[path.name] = info.value.rule
    assert rules == {
        "fifo.json": "not a regular file (FIFO)",
        "dir.json": "not a regular file (directory)",
        "zero.json": "not a regular file (symlink)",
        "gone.json": "not a regular file (symlink)",
    }


def test_a_duplicates_rejection_keeps_the_first_reason(paths: StatePaths) -> None:
    """Two rejections of one id: both files and both reason files stay, none overwritten."""
    for reason in ("first", "second"):
        path = paths.spool_dir("cur") / "same.json"
        path.write_text("{}")
        spool.finish(paths, path, "rejected", {"rule": reason})
    rejected = paths.spool_dir("rejected")
    bodies = sorted(json.loads(p.read_text())["rule"] for p in rejected.glob("*.reason.json"))
    assert bodies == ["first", "second"]
    assert json.loads((rejected / "same.reason.json").read_text())["rule"] == "first"
    assert len(list(rejected.glob("same*.json"))) == 4


async def test_the_watcher_rejects_spool_poison_and_runs_the_good_request(tmp_path: Path) -> None:
    """FIFO, directory, symlink and an oversized request in new/: each rejected with a reason
    file, the good request completes, the watcher never restarts."""
    paths = StatePaths(tmp_path).ensure()
    new = paths.spool_dir("new")
    os.mkfifo(new / "fifo.json")
    (new / "dir.json").mkdir()
    (new / "zero.json").symlink_to("/dev/zero")
    big = SelfplayRetrain(request_id="big", evidence={"blob": "x" * 2_000_000})
    (new / "big.json").write_text(big.model_dump_json())
    spool.submit(paths, SelfplayRetrain(request_id="good"))
    fakes = {
        LLM: scripted_llm([PROCEED]),
        GPU: scripted_gpu([ScriptedJob(result={"ok": True})]),
        TRIGGER: probe(),
    }
    async with open_test_system(tmp_path, fakes=fakes) as h:
        await h.system.ref(WATCHER).tell(ProcessSpool())
        with anyio.fail_after(30):
            await h.system.wait_idle()
        assert h.system.ref(WATCHER)._cell.restarts == 0
    rejected = paths.spool_dir("rejected")
    rules = {
        p.name.removesuffix(".reason.json"): json.loads(p.read_text())["rule"]
        for p in rejected.glob("*.reason.json")
    }
    assert rules == {
        "fifo": "not a regular file (FIFO)",
        "dir": "not a regular file (directory)",
        "zero": "not a regular file (symlink)",
        "big": "file is larger than 1048576 bytes",
    }
    assert (paths.spool_dir("done") / "good.json").exists()
    assert not list(new.iterdir())
