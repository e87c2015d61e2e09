"""Exactly once under kill -9: a few random crashes of the daemon mid-spool (the long run, 1,000
kills, is `python -m bench.crash`, in `make bench`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.crash import campaign

if TYPE_CHECKING:
    from pathlib import Path


def test_every_request_is_terminal_exactly_once_across_random_kills(tmp_path: Path) -> None:
    """5 requests (reruns, selfplay, malformed), 3 kill -9 at seeded random moments with a
    draw file dropped in each round, then `--once` to the end: each request has one terminal
    file, one outcome row and one terminal audit record; each draw is in the history once with
    the hash chain intact; the store passes its integrity check."""
    result = campaign(tmp_path / "state", kills=3, requests=5, seed=16)
    assert result.kills == 3
    assert len(result.request_ids) == 5
    assert result.problems == []
