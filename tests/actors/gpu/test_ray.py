"""The Ray backend on a real multi-node cluster on this machine (started once per session).

The cluster (`ray.cluster_utils.Cluster`): a head node with 2 logical GPUs and the custom
resource `llm_gpu` (the GPU that holds the LLM), and a worker node with 2 logical GPUs.
Without Ray installed (the `cluster` extra) every test here is skipped, saying so.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from actors.gpu.actor import GPUDispatchActor
from actors.gpu.ray_runner import RayRunner
from actors.gpu.registry import JobRegistry, default_registry
from actors.ingestion.history import append_draws
from actors.services import GPU, LLM, TRIGGER
from actors.testing import ProbeRecord, harness_settings, open_test_system, probe, scripted_llm
from messages.artifacts import SurvivorSet
from messages.dispatch import CancelJobs, JobFinished, JobProgress, RunJob
from messages.ingestion import Draw
from messages.llm import ReleaseVRAM
from pipeline.synthetic import synthetic_records
from tests.actors.gpu.test_sharding import PLANTED, RANGE_JOB

ray = pytest.importorskip(
    "ray", reason="Ray is not installed (extra `cluster`): the Ray backend tests were NOT run"
)

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One Ray cluster for the whole session: head (2 GPUs + the LLM's) and one worker."""
    from ray.cluster_utils import Cluster

    temp = tmp_path_factory.mktemp("ray")
    made = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 2,
            "num_gpus": 2,
            "resources": {"llm_gpu": 1},
            "temp_dir": str(temp),
            "include_dashboard": False,
        },
    )
    made.add_node(num_cpus=2, num_gpus=2)
    made.wait_for_nodes()
    ray.init(address=made.address, log_to_driver=False, configure_logging=False)
    try:
        yield made
    finally:
        ray.shutdown()
        made.shutdown()  # type: ignore[no-untyped-call]


def _worker_nodes(cluster: Any) -> list[Any]:
    return [node for node in cluster.list_all_nodes() if node is not cluster.head_node]


def _ray_system(
    state: Path,
    registry: JobRegistry,
    llm: tuple[ProbeRecord, Any] | None = None,
    progress: Any = None,
    **gpu: Any,
) -> Any:
    """The real system with GPU dispatch on Ray (the session's cluster), other actors faked."""
    settings = harness_settings(
        state, gpu={"backend": "ray", "shard_retries": 2, "kill_grace_s": 0.5, **gpu}
    )
    fakes = {
        TRIGGER: probe(),
        LLM: llm or scripted_llm(),
        GPU: (ProbeRecord(), lambda s: GPUDispatchActor(s, registry=registry)),
    }
    return open_test_system(state, fakes=fakes, settings=settings, progress=progress)


def _range_job(markers: Path) -> JobRegistry:
    return JobRegistry([RANGE_JOB.model_copy(update={"env": {"RANGEJOB_MARKERS": str(markers)}})])


async def test_a_sharded_sieve_runs_over_the_nodes_and_leases_only_the_llm_gpu(
    cluster: Any, tmp_path: Path
) -> None:
    """Sieve over 2^22 seeds on Ray: one shard per slot on both nodes, the planted seed found,
    artifacts back in the head's state dir; only the shard on the LLM's GPU took the lease."""
    llm = scripted_llm()
    events: list[JobProgress] = []
    async with _ray_system(tmp_path, default_registry(), llm, progress=events.append) as h:
        rows = [
            Draw(draw_id=r.draw_id, timestamp=r.timestamp, value=r.value)
            for r in synthetic_records("lcg32", PLANTED, 40)
        ]
        await h.services.store.transaction(lambda c: append_draws(c, "p.json", rows, stream="real"))
        finished = await h.system.ref(GPU).ask(
            RunJob(
                job="sieve", run_id="r", step="1", params={"families": "lcg32", "seed_end": 1 << 22}
            ),
            timeout=300,
            expect=JobFinished,
        )
        leases = await h.services.store.run(
            lambda c: c.execute("SELECT node, gpu, returned_at FROM leases").fetchall()
        )
    assert finished.status == "completed", finished.error
    shards = sorted(finished.placements, key=lambda p: p["shard"])
    assert len(shards) == 5  # 2 + 2 GPUs and the LLM's
    assert len({p["ran"]["node"] for p in shards}) == 2
    on_llm = [p for p in shards if p["gpu"] == "llm"]
    assert len(on_llm) == 1
    assert len(llm[0].of(ReleaseVRAM)) == 1
    assert [(gpu, returned is not None) for _node, gpu, returned in leases] == [("llm", True)]
    assert all(p["ran"]["ray_gpu_ids"] for p in shards if p["gpu"] != "llm")
    found = SurvivorSet.model_validate_json((tmp_path / "artifacts" / "survivors.json").read_text())
    assert any(s.seed == PLANTED for s in found.survivors)
    # No live lines from Ray tasks: the one progress stream counts finished shards, to 5 of 5.
    assert [(e.done, e.total) for e in events][-1] == (5, 5)
    audit = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    started = [r["detail"] for r in audit if r["event"] == "job_started"]
    assert {d["backend"] for d in started} == {"ray"}
    assert all(d["node"] and d["gpu"] and d["shard"].startswith("shard ") for d in started)


async def test_a_worker_killed_mid_shard_is_retried_elsewhere(cluster: Any, tmp_path: Path) -> None:
    """The Ray worker running a shard dies (SIGKILL): the shard runs again on another slot."""
    markers = tmp_path / "markers"
    markers.mkdir()
    async with _ray_system(tmp_path / "state", _range_job(markers)) as h:
        finished = await h.system.ref(GPU).ask(
            RunJob(job="rangejob", run_id="r", params={"end": 500, "kill_parent_once_at": 0}),
            timeout=300,
            expect=JobFinished,
        )
    assert finished.status == "completed", finished.error
    first = [p for p in finished.placements if p["shard"] == 0]
    assert [p["status"] for p in first] == ["failed", "completed"]
    assert "Worker" in first[0]["ran"]["error"] or "died" in first[0]["ran"]["error"]
    assert first[0]["gpu"] != first[1]["gpu"] or first[0]["node"] != first[1]["node"]
    found = json.loads((tmp_path / "state" / "artifacts" / "found.json").read_text())
    assert found == [n for n in range(500) if n % 7 == 0]


async def test_a_removed_node_s_shards_are_rescheduled(cluster: Any, tmp_path: Path) -> None:
    """A worker node leaves while its shards run: they are retried on the node left, the
    step completes, and the record names the node each attempt ran on. (Two shards: the
    worker node's GPUs are handed out first, so both run there.)"""
    markers = tmp_path / "markers"
    markers.mkdir()
    (worker,) = _worker_nodes(cluster)
    try:
        async with (
            _ray_system(tmp_path / "state", _range_job(markers), max_shards=2) as h,
            anyio.create_task_group() as tg,
        ):
            result: list[JobFinished] = []

            async def run() -> None:
                result.append(
                    await h.system.ref(GPU).ask(
                        RunJob(
                            job="rangejob",
                            run_id="r",
                            params={"end": 500, "sleep_once_at": 0, "k": 7},
                        ),
                        timeout=300,
                        expect=JobFinished,
                    )
                )

            tg.start_soon(run)
            with anyio.fail_after(120):
                # Polling: the shard runs in a process on another "node".
                while not (markers / "pid-0").exists():  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            await anyio.to_thread.run_sync(cluster.remove_node, worker)
        (finished,) = result
    finally:
        cluster.add_node(num_cpus=2, num_gpus=2)
        cluster.wait_for_nodes()
    assert finished.status == "completed", finished.error
    first = [p for p in finished.placements if p["shard"] == 0]
    assert first[0]["status"] == "failed"
    assert first[-1]["status"] == "completed"
    assert first[0]["node"] != first[-1]["node"]
    assert first[-1]["node"].endswith(cluster.head_node.node_id[:8])
    found = json.loads((tmp_path / "state" / "artifacts" / "found.json").read_text())
    assert found == [n for n in range(500) if n % 7 == 0]


async def test_halt_now_cancels_the_running_ray_tasks(cluster: Any, tmp_path: Path) -> None:
    """CancelJobs (halt --now) cancels the Ray tasks: the job ends `cancelled`, its process dies."""
    markers = tmp_path / "markers"
    markers.mkdir()
    async with _ray_system(tmp_path / "state", _range_job(markers)) as h:
        gpu = h.system.ref(GPU)
        async with anyio.create_task_group() as tg:
            result: list[JobFinished] = []

            async def run() -> None:
                result.append(
                    await gpu.ask(
                        RunJob(job="rangejob", run_id="r", params={"end": 500, "sleep_once_at": 0}),
                        timeout=300,
                        expect=JobFinished,
                    )
                )

            tg.start_soon(run)
            with anyio.fail_after(120):
                while not (markers / "pid-0").exists():  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            await gpu.tell(CancelJobs(reason="halt --now"))
    (finished,) = result
    assert finished.status == "cancelled"
    pid = int((markers / "pid-0").read_text())
    with anyio.fail_after(30):
        while _state(pid) not in {"Z", "X"}:  # noqa: ASYNC110  (a process of another node)
            await anyio.sleep(0.05)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "X"


async def test_connecting_reuses_a_running_ray_and_lists_the_llm_slot(cluster: Any) -> None:
    """A driver already connected is reused (not shut down by the runner); the head's LLM GPU
    is one slot, marked, listed last."""
    from actors.config import GpuRayConfig

    runner = await RayRunner.connect(GpuRayConfig())
    slots = runner.slots()
    assert [s.llm for s in slots] == [False, False, False, False, True]
    assert slots[-1].gpu_label == "llm"
    await runner.aclose()
    assert ray.is_initialized()
