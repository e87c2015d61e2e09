"""JobRegistry: argv built from validated parameters, never from a command; results validated."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from actors.gpu.registry import NOOP_JOB, JobRegistry, default_registry, pipeline_job_specs
from actors.gpu.runner import run_process
from actors.gpu.spec import (
    JobParamsError,
    JobSpec,
    JobSpecError,
    NoopResult,
    ResultFileError,
    UnknownJobError,
)
from messages.errors import InputError

JOB = Path(__file__).parent / "jobs" / "testjob.py"


class DemoParams(BaseModel):
    """Parameters of the demo job: one of each kind the registry renders."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str = "run"
    count: int = Field(3, ge=1, le=100)
    rate: float = Field(0.5, ge=0.0, le=1.0)
    target: Path | None = None
    mode: Literal["fast", "slow"] = "fast"
    verbose: bool = False
    seeds: tuple[int, ...] = ()


class RequiredParams(BaseModel):
    """A model with a required parameter."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window: int = Field(ge=1)


class LaxParams(BaseModel):
    """A model that forgot extra="forbid": the registry must refuse it."""

    window: int = 1


class DemoResult(BaseModel):
    """What testjob.py `ok` writes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    answer: int
    label: str


NOT_A_MODEL = 42


def _registry() -> JobRegistry:
    return JobRegistry(
        [
            JobSpec(
                name="demo",
                argv=("{python}", "-m", "demo", "--out", "{result_json}", "--label={label}"),
                params_model=DemoParams,
                result_model=DemoResult,
                timeout_s=10,
                params_as_flags=True,
                history_flag="--history",
                env={"DEMO": "1"},
            ),
            JobSpec(
                name="needs_window",
                argv=("{python}", "{window}", "{history}"),
                params_model=RequiredParams,
                result_model=DemoResult,
                timeout_s=10,
            ),
            JobSpec(
                name="runs",
                argv=("{python}", str(JOB), "ok", "{result_json}"),
                result_model="tests.actors.gpu.test_registry:DemoResult",
                timeout_s=10,
            ),
            JobSpec(
                name="bad_result",
                argv=("{python}", str(JOB), "badresult", "{result_json}"),
                result_model=DemoResult,
                timeout_s=10,
            ),
        ]
    )


def _build(tmp_path: Path, params: dict[str, object], job: str = "demo") -> list[str]:
    return _registry().build_argv(
        job, params, state_dir=tmp_path, result_path=tmp_path / "result.json"
    )


def test_unknown_job_names_the_known_ones() -> None:
    """get() of an unknown name raises UnknownJobError listing the registered jobs."""
    with pytest.raises(UnknownJobError, match=r"job 'rm': unknown job \(known: .*demo.*runs"):
        _registry().get("rm")


def test_build_argv_renders_defaults_as_flags(tmp_path: Path) -> None:
    """Template placeholders are filled, the other parameters follow as --kebab flags."""
    argv = _build(tmp_path, {})
    assert argv == [
        sys.executable,
        "-m",
        "demo",
        "--out",
        str(tmp_path / "result.json"),
        "--label=run",
        "--count",
        "3",
        "--rate",
        "0.5",
        "--mode",
        "fast",
        "--no-verbose",
        "--seeds",
        "",
    ]


def test_build_argv_renders_every_kind_of_value(tmp_path: Path) -> None:
    """Paths become absolute inside the state dir, lists one comma-joined element, True a flag."""
    params = {
        "label": "a b",
        "count": 7,
        "rate": 0.25,
        "target": "data/in.json",
        "mode": "slow",
        "verbose": True,
        "seeds": [3, 1, 2],
    }
    argv = _registry().build_argv(
        "demo",
        params,
        state_dir=tmp_path,
        result_path=tmp_path / "r.json",
        history_path=tmp_path / "h.jsonl",
    )
    assert argv[5:] == [
        "--label=a b",
        "--count",
        "7",
        "--rate",
        "0.25",
        "--target",
        str(tmp_path.resolve() / "data" / "in.json"),
        "--mode",
        "slow",
        "--verbose",
        "--seeds",
        "3,1,2",
        "--history",
        str(tmp_path / "h.jsonl"),
    ]


@pytest.mark.parametrize(
    ("params", "param", "rule"),
    [
        ({"label": "; rm -rf /"}, "label", "shell metacharacter ';'"),
        ({"label": "$(reboot)"}, "label", "shell metacharacter '$'"),
        ({"label": "x | sh"}, "label", "shell metacharacter '|'"),
        ({"count": "3; rm -rf /"}, "count", "valid integer"),
        ({"mode": "fast; rm -rf /"}, "mode", "Input should be 'fast' or 'slow'"),
        ({"label": "--delete-everything"}, "label", "must not start with '-'"),
        ({"label": "-rf"}, "label", "must not start with '-'"),
        ({"label": "a\nb"}, "label", "must not contain a newline"),
        ({"label": "a\x00b"}, "label", "must not contain NUL"),
        ({"label": "a\x1bb"}, "label", "control character"),
        ({"target": "../outside"}, "target", "must not contain '..'"),
        ({"target": "data/../../outside"}, "target", "must not contain '..'"),
        ({"target": "/etc/passwd"}, "target", "must resolve inside the state directory"),
        ({"target": "x\ny"}, "target", "must not contain a newline"),
        ({"bogus": 1}, "bogus", "unknown parameter"),
        ({"count": 1000}, "count", "less than or equal to 100"),
        ({"count": 0}, "count", "greater than or equal to 1"),
        ({"rate": float("nan")}, "rate", "rate"),
    ],
)
def test_bad_parameters_are_rejected_naming_parameter_and_rule(
    tmp_path: Path, params: dict[str, object], param: str, rule: str
) -> None:
    """Injection attempts, unknown names, bad types and ranges raise JobParamsError."""
    with pytest.raises(JobParamsError) as info:
        _build(tmp_path, params)
    assert isinstance(info.value, InputError)
    assert info.value.param == param
    assert f"job 'demo' parameter {param!r}" in str(info.value)
    assert rule in str(info.value)


def test_unknown_parameter_lists_the_known_ones(tmp_path: Path) -> None:
    """The error for an unknown parameter lists the parameters the job accepts."""
    with pytest.raises(JobParamsError, match=r"known: count, label, mode, rate, seeds, target"):
        _build(tmp_path, {"bogus": 1})


def test_symlink_out_of_the_state_dir_is_rejected(tmp_path: Path) -> None:
    """A path inside the state dir that is a symlink to elsewhere is refused."""
    state = tmp_path / "state"
    outside = tmp_path / "outside"
    state.mkdir()
    outside.mkdir()
    (state / "link").symlink_to(outside)
    with pytest.raises(JobParamsError, match="must resolve inside the state directory"):
        _registry().build_argv(
            "demo", {"target": "link/x"}, state_dir=state, result_path=state / "r.json"
        )


def test_absolute_path_inside_the_state_dir_is_accepted(tmp_path: Path) -> None:
    """An absolute path is fine when it lies inside the state directory."""
    argv = _build(tmp_path, {"target": str(tmp_path / "a.json")})
    assert str(tmp_path.resolve() / "a.json") in argv


def test_missing_required_parameter_and_history(tmp_path: Path) -> None:
    """A required parameter or a required history file that is absent is named."""
    with pytest.raises(JobParamsError, match="'window': required parameter is missing"):
        _build(tmp_path, {}, job="needs_window")
    with pytest.raises(JobParamsError, match="'history': a history file is required"):
        _build(tmp_path, {"window": 2}, job="needs_window")
    argv = _registry().build_argv(
        "needs_window",
        {"window": 2},
        state_dir=tmp_path,
        result_path=tmp_path / "r.json",
        history_path=tmp_path / "h.jsonl",
    )
    assert argv == [sys.executable, "2", str(tmp_path / "h.jsonl")]


SAFE = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(label=SAFE)
def test_property_a_string_param_is_one_element_never_an_option(tmp_path: Path, label: str) -> None:
    """Any string either is refused or lands as one element; it never begins with '-'."""
    registry = JobRegistry(
        [
            JobSpec(
                name="echo",
                argv=("{python}", "{label}", "--fixed"),
                params_model=DemoParams,
                result_model=DemoResult,
                timeout_s=1,
            )
        ]
    )
    try:
        argv = registry.build_argv(
            "echo", {"label": label}, state_dir=tmp_path, result_path=tmp_path / "r"
        )
    except JobParamsError as exc:
        refused: JobParamsError | None = exc
    else:
        refused = None
    if refused is not None:
        assert refused.param == "label"
        return
    assert argv == [sys.executable, label, "--fixed"]
    assert not argv[1].startswith("-")
    assert "\x00" not in argv[1]
    assert "\n" not in argv[1]


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=SAFE)
def test_property_a_path_param_never_leaves_the_state_dir(tmp_path: Path, target: str) -> None:
    """Any path either is refused or renders as one absolute element inside the state dir."""
    try:
        argv = _build(tmp_path, {"target": target})
    except JobParamsError as exc:
        refused: JobParamsError | None = exc
    else:
        refused = None
    if refused is not None:
        assert refused.param == "target"
        return
    flags = [i for i, a in enumerate(argv) if a == "--target"]
    if not flags:  # "" parses as None? no: Path("") is "." — it is always rendered
        pytest.fail(f"--target missing from {argv}")
    rendered = Path(argv[flags[0] + 1])
    assert rendered.is_absolute()
    assert rendered.is_relative_to(tmp_path.resolve())
    assert len(argv) == len(_build(tmp_path, {"target": "x"}))


def test_jobspec_rules() -> None:
    """JobSpec refuses bad names, placeholders, env and workdirs; fills the GPU count."""
    base = {"argv": ("{python}",), "result_model": DemoResult, "timeout_s": 1}
    assert JobSpec(name="g", needs_gpu=True, **base).gpus == 1
    assert JobSpec(name="c", **base).gpus == 0
    bad: list[tuple[dict[str, object], str]] = [
        ({"name": "Bad Name"}, "must match"),
        ({"name": "x", "argv": ("{label!r}",)}, "must be a plain name"),
        ({"name": "x", "argv": ("{a.b}",)}, "must be a plain name"),
        ({"name": "x", "argv": ("{",)}, "not a valid template"),
        ({"name": "x", "vram_mb": 100}, "CPU job"),
        ({"name": "x", "needs_gpu": True, "gpus": 0}, "must be >= 1"),
        ({"name": "x", "env": {"CUDA_VISIBLE_DEVICES": "0"}}, "set by the GPU assignment"),
        ({"name": "x", "env": {"A=B": "0"}}, "must match"),
        ({"name": "x", "workdir": "../up"}, "must be relative"),
        ({"name": "x", "workdir": "/abs"}, "must be relative"),
        ({"name": "x", "history_flag": "h"}, "must be an option like '--name'"),
        ({"name": "x", "seed_flag": "--Seed x"}, "must be an option like '--name'"),
    ]
    for extra, match in bad:
        with pytest.raises(ValidationError, match=match):
            JobSpec(**{**base, **extra})
    with pytest.raises(JobSpecError, match="registered twice"):
        JobRegistry([JobSpec(name="c", **base), JobSpec(name="c", **base)])


def test_params_model_must_forbid_extra(tmp_path: Path) -> None:
    """A parameter model that would silently accept unknown keys is a configuration error."""
    registry = JobRegistry(
        [
            JobSpec(
                name="lax",
                argv=("x",),
                params_model=LaxParams,
                result_model=DemoResult,
                timeout_s=1,
            )
        ]
    )
    with pytest.raises(JobSpecError, match="must refuse unknown parameters"):
        registry.build_argv("lax", {}, state_dir=tmp_path, result_path=tmp_path / "r")


@pytest.mark.parametrize(
    ("ref", "match"),
    [
        ("no_colon", "must look like 'package.module:Name'"),
        ("no_such_module_xyz:Model", "cannot be imported"),
        ("tests.actors.gpu.test_registry:Missing", "has no attribute 'Missing'"),
        ("tests.actors.gpu.test_registry:NOT_A_MODEL", "not a pydantic model class"),
    ],
)
def test_dotted_result_model_errors_are_clear(tmp_path: Path, ref: str, match: str) -> None:
    """A result model given as a dotted path is resolved on use, with a clear error."""
    registry = JobRegistry([JobSpec(name="j", argv=("x",), result_model=ref, timeout_s=1)])
    (tmp_path / "r.json").write_text("{}")
    with pytest.raises(JobSpecError, match=match) as info:
        registry.validate_result("j", tmp_path / "r.json")
    assert "job 'j' result_model" in str(info.value)


def test_unknown_placeholder_is_a_spec_error(tmp_path: Path) -> None:
    """A template naming neither a builtin nor a parameter fails with JobSpecError."""
    registry = JobRegistry(
        [JobSpec(name="j", argv=("{nope}",), result_model=DemoResult, timeout_s=1)]
    )
    with pytest.raises(JobSpecError, match=r"placeholder \{nope\} is neither a builtin"):
        registry.build_argv("j", {}, state_dir=tmp_path, result_path=tmp_path / "r")


def test_build_env_and_workdir(tmp_path: Path) -> None:
    """The environment is base + the job's additions, pinned when GPU indices are given."""
    registry = _registry()
    env = registry.build_env("demo", base={"PATH": "/bin"}, gpu_indices=[1, 3])
    assert env == {"PATH": "/bin", "DEMO": "1", "CUDA_VISIBLE_DEVICES": "1,3"}
    assert "CUDA_VISIBLE_DEVICES" not in registry.build_env("demo", base={})
    assert registry.workdir("demo", tmp_path) == tmp_path.resolve()


def test_workdir_symlink_escape_is_refused(tmp_path: Path) -> None:
    """A workdir that is a symlink out of the state directory is a configuration error."""
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "work").symlink_to(tmp_path)
    registry = JobRegistry(
        [JobSpec(name="j", argv=("x",), result_model=DemoResult, timeout_s=1, workdir="work")]
    )
    with pytest.raises(JobSpecError, match="resolves outside"):
        registry.workdir("j", tmp_path / "state")


def test_validate_result_rules(tmp_path: Path) -> None:
    """Missing, unreadable, non-JSON and off-schema result files each get their own rule."""
    registry = _registry()
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"answer": 1, "label": "x"}))
    assert registry.validate_result("demo", good) == DemoResult(answer=1, label="x")
    cases = {
        tmp_path / "missing.json": "is missing",
        tmp_path: "cannot be read",
        tmp_path / "text.json": "is not valid JSON",
        tmp_path / "bad.json": "does not match the result schema DemoResult",
    }
    (tmp_path / "text.json").write_text("answer = 1")
    (tmp_path / "bad.json").write_text(json.dumps({"answer": "many", "label": "x"}))
    for path, rule in cases.items():
        with pytest.raises(ResultFileError) as info:
            registry.validate_result("demo", path)
        assert rule in str(info.value)
        assert str(path) in str(info.value)
        assert info.value.path == path


@pytest.mark.anyio
async def test_real_job_result_is_validated(tmp_path: Path) -> None:
    """A real job run through run_process writes a result that validates (dotted model)."""
    registry = _registry()
    result = tmp_path / "result.json"
    argv = registry.build_argv("runs", {}, state_dir=tmp_path, result_path=result)
    outcome = await run_process(
        argv, cwd=registry.workdir("runs", tmp_path), env=dict(os.environ), timeout_s=30
    )
    assert outcome.status == "completed"
    assert registry.validate_result("runs", result) == DemoResult(answer=42, label="ok")


@pytest.mark.anyio
async def test_real_job_with_a_schema_breaking_result(tmp_path: Path) -> None:
    """A job that exits 0 but writes an off-schema result is caught by validate_result."""
    registry = _registry()
    result = tmp_path / "result.json"
    argv = registry.build_argv("bad_result", {}, state_dir=tmp_path, result_path=result)
    outcome = await run_process(argv, cwd=tmp_path, env=dict(os.environ), timeout_s=30)
    assert outcome.status == "completed"
    with pytest.raises(ResultFileError, match=r"answer: Input should be a valid integer"):
        registry.validate_result("bad_result", result)


def test_default_registry_has_noop(tmp_path: Path) -> None:
    """The default registry always holds noop, a CPU job writing {"ok": true}."""
    registry = default_registry()
    noop = registry.get("noop")
    assert noop == NOOP_JOB
    assert not noop.needs_gpu
    assert noop.timeout_s == 60
    argv = registry.build_argv("noop", {}, state_dir=tmp_path, result_path=tmp_path / "r.json")
    assert argv == [
        sys.executable,
        "-m",
        "pipeline.noop",
        "--result-json",
        str(tmp_path / "r.json"),
    ]
    (tmp_path / "r.json").write_text('{"ok": true}')
    assert registry.validate_result("noop", tmp_path / "r.json") == NoopResult()
    if importlib.util.find_spec("pipeline.jobs") is None:
        assert registry.names() == ("noop",)
    else:
        jobs = importlib.import_module("pipeline.jobs")
        assert set(registry.names()) == {"noop", *jobs.JOBS}


class SieveParams(BaseModel):
    """Stand-in for a pipeline job's parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed_start: int = 0
    seed_end: int = Field(1 << 20, ge=1)
    families: tuple[str, ...] = ("lcg32",)
    dry: bool = False
    note: str | None = None


@dataclass(frozen=True)
class FakeJobInfo:
    """Stand-in for an entry of `pipeline.jobs.JOBS` (an object with attributes)."""

    module: str
    step: int | None
    params: type[BaseModel]
    result: type[BaseModel]
    needs_gpu: bool = False
    vram_mb: int = 0


def test_pipeline_job_specs_from_a_fake_jobs_table(tmp_path: Path) -> None:
    """JOBS entries (objects or mappings) become `python -m pipeline.<job>` flag commands."""
    table: dict[str, object] = {
        "sieve": FakeJobInfo("pipeline.sieve", 1, SieveParams, DemoResult, True, 512),
        "predict": {
            "module": "predict",
            "step": 6,
            "params_model": RequiredParams,
            "result_model": DemoResult,
            "timeout_s": 30,
            "needs_history": False,
        },
    }
    registry = JobRegistry(pipeline_job_specs(table))
    sieve = registry.get("sieve")
    assert (sieve.step, sieve.needs_gpu, sieve.gpus, sieve.vram_mb) == (1, True, 1, 512)
    assert registry.get("predict").timeout_s == 30
    argv = registry.build_argv(
        "sieve",
        {"seed_start": 7, "families": ["lcg32", "minstd"], "dry": True},
        state_dir=tmp_path,
        result_path=tmp_path / "r.json",
        history_path=tmp_path / "h.jsonl",
        seed=11,
        history_fingerprint="sha256:abc",
    )
    root = str(tmp_path.resolve())
    assert argv == [
        sys.executable,
        "-m",
        "pipeline.sieve",
        "--state-dir",
        root,
        "--result-json",
        str(tmp_path / "r.json"),
        "--seed-start",
        "7",
        "--seed-end",
        str(1 << 20),
        "--families",
        "lcg32,minstd",
        "--dry",
        "--history",
        str(tmp_path / "h.jsonl"),
        "--seed",
        "11",
        "--history-fingerprint",
        "sha256:abc",
    ]
    argv = registry.build_argv(
        "predict",
        {"window": 4},
        state_dir=tmp_path,
        result_path=tmp_path / "r",
        history_path=tmp_path / "h.jsonl",
    )
    assert argv[2] == "pipeline.predict"
    assert argv[-2:] == ["--window", "4"]  # needs_history=False: no --history
    with pytest.raises(JobParamsError, match="'history_fingerprint': this job takes no"):
        registry.build_argv(
            "predict",
            {"window": 4},
            state_dir=tmp_path,
            result_path=tmp_path / "r",
            history_fingerprint="f",
        )
    with pytest.raises(JobSpecError, match="has none of the fields"):
        pipeline_job_specs({"broken": {"step": 1}})


@pytest.mark.parametrize(
    ("job", "seed", "match"),
    [
        ("demo", 3, "'seed': this job takes no seed"),
        ("sieve", -1, "'seed': a seed must be an integer >= 0"),
        ("sieve", True, "'seed': a seed must be an integer >= 0"),
    ],
)
def test_bad_seeds_are_refused(tmp_path: Path, job: str, seed: int, match: str) -> None:
    """A seed for a job without a seed flag, or a seed that is not an int >= 0, is refused."""
    registry = JobRegistry(
        [
            *_registry(),
            *pipeline_job_specs(
                {"sieve": FakeJobInfo("pipeline.sieve", 1, SieveParams, DemoResult)}
            ),
        ]
    )
    with pytest.raises(JobParamsError, match=match):
        registry.build_argv(job, {}, state_dir=tmp_path, result_path=tmp_path / "r", seed=seed)


@pytest.mark.anyio
async def test_real_noop_runs_end_to_end(tmp_path: Path) -> None:
    """The default registry's noop, run for real, completes and its result validates."""
    registry = default_registry()
    result = tmp_path / "result.json"
    argv = registry.build_argv("noop", {}, state_dir=tmp_path, result_path=result)
    outcome = await run_process(
        argv, cwd=registry.workdir("noop", tmp_path), env=dict(os.environ), timeout_s=60
    )
    assert outcome.status == "completed", outcome.stderr_tail
    assert outcome.progress_events == 1
    assert isinstance(registry.validate_result("noop", result), NoopResult)


@pytest.mark.skipif(
    importlib.util.find_spec("pipeline.jobs") is None, reason="pipeline.jobs not written yet"
)
def test_real_pipeline_jobs_accept_every_flag_the_registry_renders(tmp_path: Path) -> None:
    """For every reference job, the argv built from its defaults parses with the job's parser."""
    jobs = importlib.import_module("pipeline.jobs")
    cli = importlib.import_module("pipeline.cli")
    registry = default_registry()
    for name, info in jobs.JOBS.items():
        argv = registry.build_argv(
            name,
            {},
            state_dir=tmp_path,
            result_path=tmp_path / "r.json",
            history_path=tmp_path / "h.jsonl",
            seed=5,
            history_fingerprint="abc",
        )
        assert argv[:3] == [sys.executable, "-m", info.module]
        parsed = cli.build_parser(name, "", info.params).parse_args(argv[3:])
        assert parsed.seed == 5
        assert parsed.state_dir == tmp_path.resolve()
        # The values parsed back from the flags rebuild the default parameters exactly.
        fields = {
            key: getattr(parsed, key) for key in info.params.model_fields if hasattr(parsed, key)
        }
        assert info.params.model_validate(fields) == info.params()
