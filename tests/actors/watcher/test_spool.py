"""The spool's maildir moves: atomic submit, single claim, terminal moves with reasons."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from actors.paths import StatePaths
from actors.watcher import spool
from messages.enums import LearningLoopScope
from messages.requests import LearningLoop, PipelineRerun, SelfplayRetrain, request_steps

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def paths(tmp_path: Path) -> StatePaths:
    return StatePaths(tmp_path).ensure()


def test_submit_writes_into_new_atomically_and_refuses_duplicates(paths: StatePaths) -> None:
    """A submitted request appears whole in new/, nothing stays in tmp/; an id is unique."""
    request = LearningLoop(request_id="r-1", scope=LearningLoopScope.STEPS_5_6)
    path = spool.submit(paths, request)
    assert path == paths.spool_dir("new") / "r-1.json"
    assert list(paths.spool_dir("tmp").iterdir()) == []
    assert spool.parse(path) == request
    with pytest.raises(spool.SpoolError, match="duplicate request id"):
        spool.submit(paths, request)


def test_claim_is_won_once(paths: StatePaths) -> None:
    """Two claims of one file: the first moves it to cur/, the second gets None."""
    path = spool.submit(paths, SelfplayRetrain(request_id="r-2"))
    claimed = spool.claim(paths, path)
    assert claimed == paths.spool_dir("cur") / "r-2.json"
    assert spool.claim(paths, path) is None


def test_finish_writes_the_reason_then_moves(paths: StatePaths) -> None:
    """A terminal move leaves the file and its reason side by side; nothing is overwritten."""
    path = spool.claim(paths, spool.submit(paths, SelfplayRetrain(request_id="r-3")))
    assert path is not None
    done = spool.finish(paths, path, "done", {"status": "completed"})
    assert done == paths.spool_dir("done") / "r-3.json"
    reason = json.loads((paths.spool_dir("done") / "r-3.reason.json").read_text())
    assert reason == {"status": "completed"}
    again = paths.spool_dir("cur") / "r-3.json"
    again.write_text(done.read_text())
    second = spool.finish(paths, again, "done", None)
    assert second != done
    assert done.exists()
    assert second.exists()


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        (b"\xff\xfe", "request file is not UTF-8"),
        (b"{not json", "request file is not valid JSON"),
        (
            b'{"request_type": "learning_loop", "scope": "all_of_it", "request_id": "bad"}',
            "request does not match the request schema",
        ),
        (
            b'{"request_type": "pipeline_rerun", "steps": [4, 2], "request_id": "bad"}',
            "request does not match the request schema",
        ),
        (
            b'{"request_type": "selfplay_retrain", "request_id": "other"}',
            "file name must be <request_id>.json",
        ),
    ],
)
def test_parse_names_the_rule(paths: StatePaths, body: bytes, rule: str) -> None:
    """Each malformed request file fails with the rule it broke."""
    path = paths.spool_dir("cur") / "bad.json"
    path.write_bytes(body)
    with pytest.raises(spool.SpoolError) as info:
        spool.parse(path)
    assert info.value.rule == rule


def test_stranded_claims_are_requeued(paths: StatePaths) -> None:
    """A claim left in cur/ by a crash can be put back into new/."""
    path = spool.claim(paths, spool.submit(paths, SelfplayRetrain(request_id="r-4")))
    assert path is not None
    assert spool.stranded(paths) == [path]
    spool.requeue(paths, path)
    assert spool.pending(paths) == [paths.spool_dir("new") / "r-4.json"]
    assert spool.find(paths, "r-4") == ("new", paths.spool_dir("new") / "r-4.json")


def test_request_steps_are_explicit() -> None:
    """Each request maps to its explicit unit list; step 4 only when listed."""
    assert request_steps(LearningLoop(scope=LearningLoopScope.STEPS_3_5_6)) == ("3", "5", "6")
    assert request_steps(PipelineRerun()) == ("1", "2", "3", "4", "5", "6")
    assert request_steps(PipelineRerun(steps=(2, 6))) == ("2", "6")
    assert request_steps(SelfplayRetrain()) == ("selfplay",)
    assert SelfplayRetrain().created_at <= datetime.now(UTC)
