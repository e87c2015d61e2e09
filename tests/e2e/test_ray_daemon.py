"""The daemon with `[gpu] backend = "ray"`: its own local Ray instance with 4 logical GPUs
runs the whole pipeline; GPU steps run as Ray tasks, the lease only for the LLM's GPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import HISTORY, audit_records, drop, history, run_cli

pytest.importorskip(
    "ray", reason="Ray is not installed (extra `cluster`): the Ray daemon test was NOT run"
)


def test_the_full_pipeline_runs_on_a_local_ray_instance(tmp_path: Path) -> None:
    """Steps 1-6 on Ray (4 logical GPUs, one the LLM's): the request completes; the sieve
    is split in 4 shards over Ray's GPUs; CPU steps run locally; each GPU job names its node
    and GPU; only a process placed on the LLM's GPU took a lease, and every lease came back."""
    config = tmp_path / "watcher.toml"
    config.write_text(
        f"[trigger]\nrequest_every_n_draws = {HISTORY}\nrequest_type = 'pipeline_rerun'\n"
        '[gpu]\nbackend = "ray"\n[gpu.ray]\nnum_gpus = 4\nnum_cpus = 2\n'
    )
    drop(tmp_path / "inbox", "draws.json", history())
    ran = run_cli(
        "actors.system", "--config", str(config), "--state-dir", str(tmp_path), "--once",
        timeout=600,
    )  # fmt: skip
    records = audit_records(tmp_path)
    requests = [r for r in records if r["entity"] == "request"]
    assert ran.returncode in {0, 3}, ran.stderr[-3000:]
    assert requests[-1]["event"] == "completed", [(r["event"], r["detail"]) for r in requests]
    started = [r["detail"] for r in records if r["event"] == "job_started"]
    backends = {(d["job"], d["backend"]) for d in started}
    assert {("sieve", "ray"), ("full_scoring", "ray"), ("train", "ray")} <= backends
    assert {("scorer_meta", "local"), ("ml_meta", "local"), ("predict", "local")} <= backends
    sieve = [d for d in started if d["job"] == "sieve"]
    assert sorted(d["shard"].split(" (")[0] for d in sieve) == [f"shard {i}/4" for i in range(1, 5)]
    assert all(d["node"] and d["gpu"] for d in started if d["backend"] == "ray")
    taken = [r for r in records if r["entity"] == "lease" and r["event"] == "taken"]
    returned = [r for r in records if r["entity"] == "lease" and r["event"] == "returned"]
    assert {r["detail"]["gpu"] for r in taken} <= {"llm"}
    assert len(taken) == len([d for d in started if d["gpu"] == "llm"])
    assert len(returned) == len(taken)
    assert (tmp_path / "artifacts" / "prediction_pool.json").is_file()
