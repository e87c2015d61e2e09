"""Helpers for the pipeline tests: synthetic histories and in-process job runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.history import write_history
from pipeline.jobs import JOBS
from pipeline.synthetic import synthetic_records

RunJob = Callable[..., tuple[int, dict[str, Any]]]
MakeHistory = Callable[..., Path]


@pytest.fixture
def make_history(tmp_path: Path) -> MakeHistory:
    """Write a synthetic history (same arguments as `synthetic_records`) and return its path."""

    def make(family: str, seed: int, count: int, *, name: str = "history.jsonl", **kw: Any) -> Path:
        path = tmp_path / name
        write_history(path, synthetic_records(family, seed, count, **kw))
        return path

    return make


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """An empty state folder."""
    path = tmp_path / "state"
    path.mkdir()
    return path


@pytest.fixture
def run_job(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> RunJob:
    """Run a job in-process through its `main`; return (exit code, result dict or {})."""
    import importlib

    def run(
        job: str, history: Path | None, *args: str, state: Path | None = None
    ) -> tuple[int, dict[str, Any]]:
        target = state or state_dir
        result = target / f"{job}.result.json"
        result.unlink(missing_ok=True)
        argv = ["--state-dir", str(target), "--result-json", str(result), "--cpu-only", *args]
        if history is not None:
            argv += ["--history", str(history)]
        module = importlib.import_module(JOBS[job].module)
        code = module.main(argv)
        capsys.readouterr()
        return code, (json.loads(result.read_text()) if result.exists() else {})

    return run
