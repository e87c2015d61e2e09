"""Jobs of your own, run by the daemon as a subprocess: from the config and from a package."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.e2e.conftest import ROOT, audit_records, drop, history, run_cli

DOC = ROOT / "docs" / "pipeline.md"
_FILE = re.compile(r"<!-- walkthrough-file: (\S+) -->\n```\w*\n(.*?)```", re.DOTALL)
_RUN = re.compile(r"<!-- walkthrough-run -->\n```sh\n(.*?)```", re.DOTALL)


def _env(**extra: str) -> dict[str, str]:
    """The environment of a user whose `python` is the project's interpreter."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def test_the_plug_in_walkthrough_runs_verbatim(tmp_path: Path) -> None:
    """docs/pipeline.md's walkthrough, pasted as written: the custom step 2 runs with the
    config's job and the `--param` value, and the audit trail records both."""
    text = DOC.read_text()
    files = _FILE.findall(text)
    commands = _RUN.findall(text)
    assert {name for name, _ in files} == {"mypipe/__init__.py", "mypipe/score.py", "watcher.toml"}
    assert len(commands) == 1
    for name, body in files:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    # The walkthrough runs from the user's folder: the project is installed, mypipe is local.
    env = _env(PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}")
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", commands[0]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "job my_score" in done.stdout
    assert re.search(
        r"argv: \S+ -m mypipe\.score .* --rounds 30 --history \S+ --seed 0"
        r" --history-fingerprint \w+",
        done.stdout,
    )
    request_id = re.findall(r"^[0-9a-f]{32}$", done.stdout, re.MULTILINE)[0]
    # Chapter 13 files its own first pipeline run once the draws are in: only ours counts here.
    ours = [
        r
        for r in audit_records(tmp_path / "var")
        if r["entity_id"] == request_id or r["detail"].get("request_id") == request_id
    ]
    dispatched = [r for r in ours if r["event"] == "dispatched"]
    assert [r["detail"]["job"] for r in dispatched] == ["my_score"]
    assert dispatched[0]["detail"]["params"] == {"rounds": 30}
    cid = dispatched[0]["correlation_id"]
    completed = [
        r
        for r in audit_records(tmp_path / "var")
        if r["correlation_id"] == cid and r["event"] == "job_completed"
    ]
    assert [r["detail"]["job"] for r in completed] == ["my_score"]
    assert [r["event"] for r in ours if r["entity"] == "request"][-1] == "completed"


def _package(site: Path) -> None:
    """A tiny installed distribution: a job module and a `watcher.jobs` entry point."""
    (site / "wjob_demo").mkdir(parents=True)
    (site / "wjob_demo" / "__init__.py").write_text("")
    (site / "wjob_demo" / "job.py").write_text(
        '"""A packaged job standing in for step 4."""\n'
        "import argparse, json, os\n"
        "JOB = {\n"
        '    "module": "wjob_demo.job",\n'
        '    "params": {"pool": {"type": "int", "default": 2, "ge": 1, "le": 16},\n'
        '               "label": {"type": "str", "default": "x", "choices": ["x", "y"]}},\n'
        '    "description": "packaged step 4",\n'
        "}\n"
        "def main() -> None:\n"
        "    p = argparse.ArgumentParser()\n"
        '    for flag in ("--state-dir", "--result-json", "--history", "--history-fingerprint"):\n'
        "        p.add_argument(flag, required=True)\n"
        '    p.add_argument("--seed", type=int, required=True)\n'
        '    p.add_argument("--pool", type=int, required=True)\n'
        '    p.add_argument("--label", required=True)\n'
        "    a = p.parse_args()\n"
        '    result = {"config": {"fitness": 0.5, "pool_size": a.pool}, "label": a.label,\n'
        '              "fingerprint": a.history_fingerprint}\n'
        '    tmp = a.result_json + ".tmp"\n'
        '    with open(tmp, "w") as h:\n'
        "        json.dump(result, h)\n"
        "    os.replace(tmp, a.result_json)\n"
        'if __name__ == "__main__":\n'
        "    main()\n"
    )
    info = site / "wjob_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: wjob-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[watcher.jobs]\npackaged_pool = wjob_demo.job:JOB\n")
    (info / "RECORD").write_text("")


def test_an_entry_point_job_runs_with_params_from_config_and_submit(tmp_path: Path) -> None:
    """A job installed by a package (entry point `watcher.jobs`) runs as step 4; its params
    come from `[watcher.params.4]` and `submit --param`, checked, recorded, and passed."""
    site = tmp_path / "site"
    _package(site)
    state = tmp_path / "state"
    config = tmp_path / "watcher.toml"
    config.write_text(
        '[watcher.step_jobs]\n"4" = "packaged_pool"\n\n[watcher.params.4]\npool = 4\n'
    )
    env = _env(PYTHONPATH=f"{site}{os.pathsep}{ROOT}")
    base = ["actors.system", "--config", str(config), "--state-dir", str(state)]
    drop(state / "inbox", "draws.json", history())
    # Ingest first: a request running before its draws are in would get an empty history.
    ingested = run_cli(*base, "--once", env=env, timeout=300)
    assert ingested.returncode in {0, 3}, ingested.stderr[-3000:]

    bad = run_cli(
        *base, "submit", "pipeline_rerun", "--steps", "4", "--param", "4.label=z", env=env
    )
    assert bad.returncode == 2
    assert "'--param 4.label'" in bad.stderr
    assert "value 'z'" in bad.stderr
    assert not list((state / "watcher_requests" / "new").glob("*.json"))

    filed = run_cli(
        *base, "submit", "pipeline_rerun", "--steps", "4", "--param", "4.label=y", env=env
    )
    assert filed.returncode == 0, filed.stderr
    ran = run_cli(*base, "--once", env=env, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    request_id = filed.stdout.strip().splitlines()[-1]
    records = audit_records(state)
    (ours,) = [r for r in records if r["detail"].get("request_id") == request_id]
    assert ours["event"] == "dispatched"
    assert ours["detail"] == {**ours["detail"], "job": "packaged_pool"}
    assert ours["detail"]["params"] == {"pool": 4, "label": "y"}
    flow = [r["event"] for r in records if r["correlation_id"] == ours["correlation_id"]]
    assert "job_completed" in flow
    assert flow[-1] == "completed"
    results = [json.loads(p.read_text()) for p in (state / "runs").glob("*/4-*/result.json")]
    result: dict[str, Any] = next(r for r in results if r["label"] == "y")
    assert result["config"]["pool_size"] == 4
    assert result["label"] == "y"
    assert result["fingerprint"]  # the dispatcher passed --history-fingerprint


def test_a_unit_naming_an_unknown_job_stops_start_up(tmp_path: Path) -> None:
    """`[watcher.step_jobs]` naming no registered job exits 2 at start-up, naming the key;
    a `[watcher.params]` value out of bounds likewise names key, value and rule."""
    config = tmp_path / "watcher.toml"
    config.write_text('[watcher.step_jobs]\n"3" = "full_scorin"\n')
    result = run_cli(
        "actors.system", "--config", str(config), "--state-dir", str(tmp_path), "--once"
    )
    assert result.returncode == 2
    assert "key 'watcher.step_jobs.3': unknown job 'full_scorin'" in result.stderr
    config.write_text("[watcher.params.1]\nseed_end = 0\n")
    result = run_cli(
        "actors.system", "--config", str(config), "--state-dir", str(tmp_path), "--once"
    )
    assert result.returncode == 2
    assert "key 'watcher.params.1.seed_end': value 0" in result.stderr
    assert "greater than or equal to 1" in result.stderr
