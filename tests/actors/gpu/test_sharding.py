"""Sharded GPU work on the local backend: split, run at once, retry, merge, add progress up."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from actors.gpu.actor import GPUDispatchActor
from actors.gpu.registry import JobRegistry, default_registry
from actors.gpu.spec import GenericResult, JobSpec, ShardSpec
from actors.ingestion.history import append_draws
from actors.services import GPU, LLM, TRIGGER
from actors.testing import harness_settings, open_test_system, probe, scripted_llm
from messages.artifacts import SurvivorSet
from messages.dispatch import JobFinished, JobProgress, RunJob
from messages.ingestion import Draw
from pipeline.synthetic import synthetic_records

pytestmark = pytest.mark.anyio

JOBS = Path(__file__).parent / "jobs"
PLANTED = 3_141_592
"""The seed the history was drawn from: below 2^22, so the search must find it."""
SEEDS = 1 << 22


class RangeParams(BaseModel):
    """Parameters of `jobs/rangejob.py`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: int = 0
    end: int = 4000
    k: int = 7
    die_once_at: int | None = None
    fail_at: int | None = None
    marker_dir: Path | None = None
    kill_parent_once_at: int | None = None
    sleep_once_at: int | None = None


def merge_found(
    results: Sequence[BaseModel], shard_dirs: Sequence[Path], state_dir: Path, params: RangeParams
) -> GenericResult:
    """The range job's merge: the union of the multiples each shard found."""
    found: list[int] = []
    for folder in shard_dirs:
        found.extend(json.loads((folder / "artifacts" / "found.json").read_text()))
    (state_dir / "artifacts").mkdir(exist_ok=True)
    (state_dir / "artifacts" / "found.json").write_text(json.dumps(sorted(found)))
    return GenericResult.model_validate(
        {"found": len(found), "shards": len(results), "start": params.start, "end": params.end}
    )


RANGE_JOB = JobSpec(
    name="rangejob",
    argv=(
        "{python}",
        str(JOBS / "rangejob.py"),
        "--state-dir",
        "{state_dir}",
        "--result-json",
        "{result_json}",
    ),
    params_model=RangeParams,
    result_model=GenericResult,
    timeout_s=60,
    needs_gpu=True,
    params_as_flags=True,
    shard=ShardSpec(start="start", end="end", merge=f"{__name__}:merge_found", min_size=1),
)


async def _dispatch(
    state: Path,
    job: str,
    params: dict[str, Any],
    *,
    slots: int,
    registry: JobRegistry,
    draws: int = 0,
) -> tuple[JobFinished, list[JobProgress]]:
    """Run one job through the real GPU dispatcher with `slots` logical GPU slots."""
    settings = harness_settings(
        state, gpu={"cpu_slots": slots, "shard_retries": 2, "kill_grace_s": 0.5}
    )
    events: list[JobProgress] = []
    fakes = {
        TRIGGER: probe(),
        LLM: scripted_llm(),
        GPU: (probe()[0], lambda s: GPUDispatchActor(s, registry=registry)),
    }
    async with open_test_system(state, fakes=fakes, settings=settings, progress=events.append) as h:
        if draws:
            records = synthetic_records("lcg32", PLANTED, draws)
            rows = [Draw(draw_id=r.draw_id, timestamp=r.timestamp, value=r.value) for r in records]
            await h.services.store.transaction(
                lambda c: append_draws(c, "planted.json", rows, stream="real")
            )
        finished = await h.system.ref(GPU).ask(
            RunJob(job=job, run_id="r", params=params, step="1"), timeout=300, expect=JobFinished
        )
    return finished, events


async def test_sharded_sieve_finds_exactly_the_unsharded_survivors(tmp_path: Path) -> None:
    """A sieve over 2^22 seeds in 4 shards finds exactly what one process finds, planted seed
    included; the merged progress adds up to the whole range."""
    params = {"families": "lcg32", "seed_end": SEEDS, "skip_max": 0}
    registry = default_registry()
    whole, _ = await _dispatch(
        tmp_path / "one", "sieve", params, slots=1, registry=registry, draws=40
    )
    split, events = await _dispatch(
        tmp_path / "four", "sieve", params, slots=4, registry=registry, draws=40
    )
    assert whole.status == "completed", whole.error
    assert split.status == "completed", split.error
    assert {p["shard"] for p in whole.placements} == {0}
    assert sorted(p["shard"] for p in split.placements) == [0, 1, 2, 3]
    assert {p["gpu"] for p in split.placements} == {"cpu"}
    assert [p["range"] for p in sorted(split.placements, key=lambda p: p["shard"])] == [
        [0, 1 << 20],
        [1 << 20, 2 << 20],
        [2 << 20, 3 << 20],
        [3 << 20, 4 << 20],
    ]

    def survivors(state: Path) -> SurvivorSet:
        path = state / "artifacts" / "survivors.json"
        return SurvivorSet.model_validate_json(path.read_text())

    one, four = survivors(tmp_path / "one"), survivors(tmp_path / "four")
    assert four.survivors == one.survivors
    assert (four.seed_start, four.seed_end) == (0, SEEDS)
    assert any(s.seed == PLANTED and s.anchor == 0 for s in four.survivors)
    assert split.result is not None
    assert whole.result is not None
    assert split.result["seeds_tested"] == whole.result["seeds_tested"] == SEEDS
    assert split.result["survivors"] == whole.result["survivors"]
    # One progress stream: the sum over the 4 shards, ending with everything done.
    assert events
    last = events[-1]
    assert last.done == last.total
    assert last.total == SEEDS // 8192  # chunks of the default 2^13 seeds, over all shards
    assert {e.done for e in events} > {0, last.total}


async def test_a_killed_shard_is_retried_and_the_merge_is_complete(tmp_path: Path) -> None:
    """A shard killed by SIGKILL runs again; the step completes with every shard's finds."""
    registry = JobRegistry([RANGE_JOB])
    (tmp_path / "markers").mkdir(parents=True)
    finished, _ = await _dispatch(
        tmp_path,
        "rangejob",
        {"end": 4000, "die_once_at": 1000, "marker_dir": str(tmp_path / "markers")},
        slots=4,
        registry=registry,
    )
    assert finished.status == "completed", finished.error
    attempts = [(p["shard"], p["attempt"], p["status"]) for p in finished.placements]
    assert (1, 1, "failed") in attempts
    assert (1, 2, "completed") in attempts
    found = json.loads((tmp_path / "artifacts" / "found.json").read_text())
    assert found == [n for n in range(4000) if n % 7 == 0]
    assert finished.result is not None
    assert finished.result["found"] == len(found)
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    retried = [r for r in audit if r["event"] == "job_shard_retried"]
    assert [r["detail"]["shard"] for r in retried] == ["shard 2/4 (start=1000, end=2000)"]


async def test_a_shard_that_always_fails_fails_the_step_naming_it(tmp_path: Path) -> None:
    """Past `shard_retries` the step fails, naming the shard, its range and what it said."""
    registry = JobRegistry([RANGE_JOB])
    finished, _ = await _dispatch(
        tmp_path, "rangejob", {"end": 4000, "fail_at": 2000}, slots=4, registry=registry
    )
    assert finished.status == "failed"
    assert finished.error is not None
    assert "shard 3/4 (start=2000, end=3000) failed 3 time(s)" in finished.error
    assert "exit code 1" in finished.error
    assert "refuses to run" in finished.error
    assert not (tmp_path / "artifacts" / "found.json").exists()


async def test_dry_run_plans_every_shard(tmp_path: Path) -> None:
    """A dry run of a sharded job lists each shard's exact argv and starts nothing."""
    registry = JobRegistry([RANGE_JOB])
    settings = harness_settings(tmp_path, gpu={"cpu_slots": 3})
    fakes = {
        TRIGGER: probe(),
        LLM: scripted_llm(),
        GPU: (probe()[0], lambda s: GPUDispatchActor(s, registry=registry)),
    }
    async with open_test_system(tmp_path, fakes=fakes, settings=settings) as h:
        finished = await h.system.ref(GPU).ask(
            RunJob(job="rangejob", run_id="r", params={"end": 30}, dry_run=True),
            timeout=60,
            expect=JobFinished,
        )
    assert finished.status == "planned"
    assert finished.result is not None
    shards = finished.result["shards"]
    assert [s["range"] for s in shards] == [[0, 10], [10, 20], [20, 30]]
    assert all(s["argv"][0] == sys.executable for s in shards)
    assert shards[1]["argv"][6:10] == ["--start", "10", "--end", "20"]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("result.json"))
