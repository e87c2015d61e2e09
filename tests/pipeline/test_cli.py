"""The jobs as a user runs them: subprocesses, the full chain 1->6, help, exit codes, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from messages.artifacts import PredictionPool
from pipeline.jobs import JOBS, STEP_JOBS
from pipeline.prng import FAMILIES, draw_values

if TYPE_CHECKING:
    from .conftest import MakeHistory, RunJob

ROOT = Path(__file__).resolve().parents[2]


def cli(module: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run `python -m module args` from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_full_chain_from_the_command_line(make_history: MakeHistory, state_dir: Path) -> None:
    """Steps 1 to 6 run as commands on a synthetic history and the pool predicts the next draw."""
    history = make_history("xorshift32", 99_991, 80, skip=1)
    step_args = {
        "sieve": ["--skip-max", "1", "--seed-end", "200000"],
        "scorer_meta": [],
        "full_scoring": [],
        "ml_meta": [],
        "train": [],
        "predict": ["--k", "5"],
    }
    for step in range(1, 7):
        job = STEP_JOBS[step]
        result_path = state_dir / f"{job}.json"
        done = cli(
            JOBS[job].module,
            "--state-dir",
            state_dir,
            "--result-json",
            result_path,
            "--history",
            history,
            "--seed",
            "3",
            "--history-fingerprint",
            "fp-1",
            *step_args[job],
        )
        assert done.returncode == 0, done.stderr
        events = [json.loads(line) for line in done.stdout.splitlines()]
        assert events, f"{job} printed no progress"
        assert all(e["event"] == "progress" and e["done"] <= e["total"] for e in events)
        assert events[-1]["done"] == events[-1]["total"]
        result = JOBS[job].result.model_validate_json(result_path.read_text())
        assert result.step == step
        assert result.history_fingerprint == "fp-1"
        for name in result.artifacts:
            assert (state_dir / name).is_file()
    pool = PredictionPool.model_validate_json(
        (state_dir / "artifacts" / "prediction_pool.json").read_text()
    )
    expected_next = draw_values(FAMILIES["xorshift32"], 99_991, 81, skip=1)[-1]
    assert pool.predictions[0].value == expected_next
    assert pool.predictions[0].confidence == 1.0
    assert (pool.last_draw_id, pool.n_draws, pool.history_fingerprint) == ("syn-000079", 80, "fp-1")
    assert not list(state_dir.rglob("*.tmp-*"))


@pytest.mark.parametrize("job", list(JOBS))
def test_help_lists_every_parameter_with_its_range(
    job: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--help` names each parameter's flag, and ranged parameters show their range."""
    import importlib

    module = importlib.import_module(JOBS[job].module)
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for name, info in JOBS[job].params.model_fields.items():
        assert "--" + name.replace("_", "-") in text
        if info.metadata:
            assert "range [" in text


def test_corrupt_history_line_exits_2_naming_file_and_line(tmp_path: Path, state_dir: Path) -> None:
    """A history line that is not valid JSON gives exit 2 and one stderr line naming file:line."""
    history = tmp_path / "bad.jsonl"
    history.write_text(
        '{"draw_id": "a", "timestamp": "2024-01-01T00:00:00Z", "value": 5}\n{"draw_id": oops\n'
    )
    done = cli(
        "pipeline.sieve",
        "--state-dir",
        state_dir,
        "--result-json",
        tmp_path / "r.json",
        "--history",
        history,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert f"{history}:2" in done.stderr
    assert "not a valid HistoryRecord" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "r.json").exists()


def test_missing_artifact_exits_2_naming_the_step_to_run(
    make_history: MakeHistory, tmp_path: Path, state_dir: Path
) -> None:
    """Step 6 without a model gives exit 2 naming model.json and the step that writes it."""
    history = make_history("lcg32", 5, 30)
    done = cli(
        "pipeline.predict",
        "--state-dir",
        state_dir,
        "--result-json",
        tmp_path / "r.json",
        "--history",
        history,
    )
    assert done.returncode == 2
    assert "model.json: file is missing (run step 5 (pipeline.train) first)" in done.stderr


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        (
            ['{"draw_id": "a", "timestamp": "2024-01-01T00:00:00Z", "value": "7"}'],
            "value: Input should be a valid integer",
        ),
        (
            ['{"draw_id": "a", "timestamp": "2024-01-01T00:00:00Z", "value": -1}'],
            "greater than or equal to 0",
        ),
        (['{"draw_id": "a", "timestamp": "yesterday", "value": 1}'], "timestamp"),
        (
            ['{"draw_id": "a", "timestamp": "2024-01-01T00:00:00Z", "value": 1, "x": 2}'],
            "x: Extra inputs",
        ),
        (
            [
                '{"draw_id": "a", "timestamp": "2024-01-01T00:00:00Z", "value": 1}',
                '{"draw_id": "a", "timestamp": "2024-01-02T00:00:00Z", "value": 2}',
            ],
            "duplicate draw_id 'a'",
        ),
        (
            [
                '{"draw_id": "a", "timestamp": "2024-01-02T00:00:00Z", "value": 1}',
                '{"draw_id": "b", "timestamp": "2024-01-01T00:00:00Z", "value": 2}',
            ],
            "timestamp goes back in time",
        ),
        (
            ['{"draw_id": "a", "timestamp": "2024-01-01T00:00:00Z", "value": 1000}'],
            "value 1000 is not below mod 1000",
        ),
    ],
)
def test_bad_history_values_exit_2(
    lines: list[str],
    problem: str,
    tmp_path: Path,
    run_job: RunJob,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each broken history rule gives exit 2 with the rule in the message."""
    history = tmp_path / "h.jsonl"
    history.write_text("\n".join(lines) + "\n")
    import pipeline.sieve

    code = pipeline.sieve.main(
        [
            "--state-dir",
            str(tmp_path),
            "--result-json",
            str(tmp_path / "r.json"),
            "--history",
            str(history),
            "--window",
            "1",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert problem in err
    assert str(history) in err


def test_corrupt_artifact_exits_2(
    make_history: MakeHistory, run_job: RunJob, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A truncated survivors.json makes step 3 exit 2 naming the file and the schema."""
    history = make_history("lcg32", 77, 40)
    assert run_job("sieve", history, "--families", "lcg32", "--seed-end", "1000")[0] == 0
    path = state_dir / "artifacts" / "survivors.json"
    path.write_text(path.read_text()[:50])
    import pipeline.full_scoring

    code = pipeline.full_scoring.main(
        [
            "--state-dir",
            str(state_dir),
            "--result-json",
            str(state_dir / "r.json"),
            "--history",
            str(history),
        ]
    )
    assert code == 2
    assert f"{path}: is not a valid SurvivorSet" in capsys.readouterr().err


def test_model_and_sidecar_must_agree(
    make_history: MakeHistory, run_job: RunJob, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Step 6 refuses a model whose sidecar names another model id (exit 2)."""
    history = make_history("minstd", 31_337, 60)
    for job, args in [
        ("sieve", ["--families", "minstd", "--seed-end", "40000"]),
        ("full_scoring", []),
        ("train", []),
    ]:
        assert run_job(job, history, *args)[0] == 0
    meta = state_dir / "artifacts" / "model.meta.json"
    data = json.loads(meta.read_text())
    data["model_id"] = "model-other"
    meta.write_text(json.dumps(data))
    code, _ = run_job("predict", history)
    assert code == 2


def test_bad_parameter_exits_2_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A parameter out of range or inconsistent gives exit 2 naming the flag or the rule."""
    import pipeline.sieve

    base = ["--state-dir", str(tmp_path), "--result-json", str(tmp_path / "r.json")]
    assert pipeline.sieve.main([*base, "--window", "65"]) == 2
    assert "--window: Input should be less than or equal to 64" in capsys.readouterr().err
    assert pipeline.sieve.main([*base, "--window", "4", "--threshold", "5"]) == 2
    assert "threshold 5 > window 4" in capsys.readouterr().err
    assert pipeline.sieve.main([*base, "--families", "lcg32,mt"]) == 2
    assert "unknown PRNG families ['mt']" in capsys.readouterr().err


def test_history_is_required(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --history a job exits 2 saying so."""
    import pipeline.sieve

    assert (
        pipeline.sieve.main(
            ["--state-dir", str(tmp_path), "--result-json", str(tmp_path / "r.json")]
        )
        == 2
    )
    assert "--history: is required by this job" in capsys.readouterr().err


@pytest.mark.skipif(os.name != "posix", reason="SIGTERM semantics")
def test_sigterm_leaves_no_partial_artifact(
    make_history: MakeHistory, tmp_path: Path, state_dir: Path
) -> None:
    """A sieve terminated mid-run exits 143, leaving neither survivors.json nor a temporary file."""
    history = make_history("lcg32", 1, 30)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline.sieve",
            "--state-dir",
            str(state_dir),
            "--result-json",
            str(tmp_path / "r.json"),
            "--history",
            str(history),
            "--seed-end",
            str(1 << 40),
            "--chunk-size",
            "65536",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())
    assert first["event"] == "progress"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert "terminated by SIGTERM" in err
    assert not (state_dir / "artifacts" / "survivors.json").exists()
    assert not (tmp_path / "r.json").exists()
    assert not list(tmp_path.rglob("*.tmp-*"))
