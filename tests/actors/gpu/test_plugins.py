"""Jobs of your own: `[jobs.NAME]` tables, entry points, and the start-up checks of units."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.config import JobConfig, Settings
from actors.gpu.plugins import build_registry, config_job_spec, entry_point_specs
from actors.gpu.registry import NOOP_JOB
from actors.gpu.spec import GenericResult, JobParamsError, JobSpecError
from messages.errors import ConfigError


def _settings(**data: Any) -> Settings:
    return Settings.model_validate(data)


def test_a_config_job_renders_the_reference_argv_contract(tmp_path: Path) -> None:
    """A module job gets --state-dir, --result-json, its params, --history, --seed and the
    fingerprint, in that order, and validates against its typed parameter model."""
    table = JobConfig.model_validate(
        {
            "module": "mypkg.step",
            "params": {
                "rounds": {"type": "int", "default": 10, "ge": 1, "le": 100},
                "mode": {"type": "str", "default": "a", "choices": ["a", "b"]},
                "rate": {"type": "float", "required": True},
            },
        }
    )
    registry = build_registry(_settings(jobs={"mine": table.model_dump()}))
    argv = registry.build_argv(
        "mine",
        {"rate": 0.5},
        state_dir=tmp_path,
        result_path=tmp_path / "r.json",
        history_path=tmp_path / "h.jsonl",
        seed=3,
        history_fingerprint="abc",
    )
    assert argv[1:] == [
        "-m",
        "mypkg.step",
        "--state-dir",
        str(tmp_path.resolve()),
        "--result-json",
        str(tmp_path / "r.json"),
        "--rounds",
        "10",
        "--mode",
        "a",
        "--rate",
        "0.5",
        "--history",
        str(tmp_path / "h.jsonl"),
        "--seed",
        "3",
        "--history-fingerprint",
        "abc",
    ]
    assert registry.get("mine").source == "config [jobs.mine]"
    with pytest.raises(JobParamsError, match=r"'mode'.*Input should be 'a' or 'b'"):
        registry.validate_params("mine", {"rate": 1.0, "mode": "c"})
    with pytest.raises(JobParamsError, match=r"'rate'.*required parameter is missing"):
        registry.validate_params("mine", {})


@given(bound=st.integers(-1000, 1000), value=st.integers(-2000, 2000))
def test_property_bounds_are_enforced_exactly(bound: int, value: int) -> None:
    """A value passes `le = B` exactly when value <= B; the error names the parameter."""
    spec = config_job_spec(
        "bounded",
        JobConfig.model_validate(
            {"argv": ["x"], "params": {"n": {"type": "int", "le": bound, "default": bound}}}
        ),
    )
    model = spec.params_class()
    if value <= bound:
        assert model.model_validate({"n": value}).n == value  # type: ignore[attr-defined]
    else:
        with pytest.raises(ValueError, match="less than or equal"):
            model.model_validate({"n": value})


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ({"module": "m", "argv": ["x"]}, "exactly one of 'module' and 'argv'"),
        ({"argv": ["{nope}"]}, r"placeholder \{nope\} is neither"),
        ({"module": "m", "params": {"n": {"type": "str", "ge": 1}}}, "ge/le apply"),
        ({"module": "m", "params": {"n": {"type": "int", "default": 5, "le": 3}}}, "valid model"),
        ({"module": "m", "shard_start": "a"}, "needs all of shard_start"),
        ({"module": "m", "result_model": "nowhere_xyz:Model"}, "cannot be imported"),
    ],
)
def test_bad_config_jobs_stop_start_up_naming_the_table(table: dict[str, Any], match: str) -> None:
    """A wrong `[jobs.NAME]` table is a ConfigError naming it and the rule."""
    if (match is not None and "one of" in match) or (match and "needs all" in match):
        with pytest.raises(ValueError, match=match):
            _settings(jobs={"bad": table})
        return
    settings = _settings(jobs={"bad": table})
    with pytest.raises(ConfigError, match=match) as info:
        build_registry(settings)
    assert "[jobs.bad]" in str(info.value)


def test_a_config_job_may_not_reuse_a_builtin_name() -> None:
    """`[jobs.sieve]` clashes with the reference sieve: a start-up error naming both."""
    with pytest.raises(ConfigError, match=r"'sieve' is registered twice \(builtin; config"):
        build_registry(_settings(jobs={"sieve": {"module": "m"}}))


def test_step_jobs_merge_with_the_defaults_and_are_checked() -> None:
    """Naming one unit keeps the others; an unknown job or an empty one names the key."""
    settings = _settings(watcher={"step_jobs": {"6": "noop"}})
    assert settings.watcher.step_jobs["1"] == "sieve"
    assert settings.watcher.step_jobs["6"] == "noop"
    build_registry(settings)
    with pytest.raises(ConfigError, match=r"key 'watcher.step_jobs.3': unknown job 'scoring'"):
        build_registry(_settings(watcher={"step_jobs": {"3": "scoring"}}))
    with pytest.raises(ValueError, match="unit '3' has no job"):
        _settings(watcher={"step_jobs": {"3": " "}})
    with pytest.raises(ValueError, match="unknown unit '7'"):
        _settings(watcher={"step_jobs": {"7": "noop"}})


def test_watcher_params_are_checked_against_the_units_job() -> None:
    """`[watcher.params.UNIT]` must pass the unit's job model: key, value and rule named."""
    build_registry(_settings(watcher={"params": {"1": {"seed_end": 1 << 32}}}))
    with pytest.raises(ConfigError, match=r"key 'watcher.params.1.windw'.*unknown parameter"):
        build_registry(_settings(watcher={"params": {"1": {"windw": 3}}}))
    with pytest.raises(ConfigError, match=r"key 'watcher.params.6.k': value 0: .*greater"):
        build_registry(_settings(watcher={"params": {"6": {"k": 0}}}))


class _Point:
    def __init__(self, name: str, obj: object) -> None:
        self.name = name
        self.value = f"pkg:{name}"
        self._obj = obj

    def load(self) -> object:
        if isinstance(self._obj, Exception):
            raise self._obj
        return self._obj


def test_entry_points_give_specs_mappings_or_callables() -> None:
    """An entry point may name a JobSpec, a `[jobs.NAME]`-style mapping or a callable."""
    points = [
        _Point("as_mapping", {"module": "pkg.job", "params": {"n": {"type": "int"}}}),
        _Point("as_callable", lambda: {"argv": ["{python}", "-c", "pass"]}),
        _Point("noop2", NOOP_JOB.model_copy(update={"name": "noop2"})),
    ]
    specs = {s.name: s for s in entry_point_specs(lambda: points)}
    assert set(specs) == {"as_mapping", "as_callable", "noop2"}
    assert specs["as_mapping"].result_model is GenericResult
    assert specs["noop2"].source.startswith("entry point 'noop2'")


@pytest.mark.parametrize(
    ("point", "match"),
    [
        (_Point("broken", ImportError("no module x")), "cannot be loaded: ImportError"),
        (_Point("wrong", 42), "expected a JobSpec"),
        (_Point("other", NOOP_JOB), "names job 'noop'"),
        (_Point("badtable", {"module": "m", "timeout_s": -1}), "timeout_s"),
    ],
)
def test_a_broken_entry_point_is_named(point: _Point, match: str) -> None:
    """A plug-in that does not load or does not give a job is a JobSpecError naming it."""
    with pytest.raises(JobSpecError, match=match) as info:
        entry_point_specs(lambda: [point])
    assert f"entry point '{point.name}'" in str(info.value)


def test_generic_result_rules() -> None:
    """Metrics are scalars or one level of scalars; artifacts stay inside the state dir."""
    ok = GenericResult.model_validate({"config": {"fitness": 0.4}, "scored": 3})
    assert ok.model_dump()["config"] == {"fitness": 0.4}
    with pytest.raises(ValueError, match="must be a number"):
        GenericResult.model_validate({"deep": {"x": [1]}})
    with pytest.raises(ValueError, match="inside the state directory"):
        GenericResult.model_validate({"artifacts": ["../etc/passwd"]})
