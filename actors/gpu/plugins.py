"""Jobs of your own: `[jobs.NAME]` config tables and installed packages' entry points.

`build_registry(settings)` is the registry the daemon runs with: `noop`, the reference
pipeline, then every `[jobs.NAME]` table and every entry point of the group `watcher.jobs`
(a package's `pyproject.toml`: `[project.entry-points."watcher.jobs"] NAME = "pkg.mod:JOB"`,
where `JOB` is a `JobSpec`, a mapping with the keys of a `[jobs.NAME]` table, or a callable
returning one of them). `check_watcher_config` then proves at start-up that every unit names
a registered job and that `[watcher.params.UNIT]` passes that job's parameter model.
Each failure is a `ConfigError` naming the key and the rule (exit 2).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ConfigDict, Field, ValidationError, create_model

from actors.config import JobConfig, JobParamConfig
from actors.gpu.registry import JobRegistry, default_registry
from actors.gpu.spec import (
    GenericResult,
    JobParamsError,
    JobSpec,
    JobSpecError,
    ShardSpec,
    UnknownJobError,
)
from messages.errors import ConfigError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from actors.config import Settings, WatcherConfig

__all__ = [
    "ENTRY_POINT_GROUP",
    "build_registry",
    "check_watcher_config",
    "config_job_spec",
    "entry_point_specs",
    "params_model",
]

ENTRY_POINT_GROUP = "watcher.jobs"
"""The entry-point group an installed package registers its jobs under."""

_TYPES: dict[str, type] = {"int": int, "float": float, "bool": bool, "str": str, "path": Path}


def params_model(job: str, params: Mapping[str, JobParamConfig]) -> type[BaseModel]:
    """A frozen pydantic model (unknown keys refused) for a configured job's parameters."""
    fields: dict[str, Any] = {}
    for name, param in params.items():
        if not name.isidentifier() or name.startswith("_"):
            msg = f"parameter name {name!r} must be an identifier not starting with '_'"
            raise JobSpecError(msg)
        kind: Any = _TYPES[param.type]
        if param.choices:
            kind = Literal[param.choices]
        if not param.required and param.default is None:
            kind = kind | None
        bounds: dict[str, Any] = {}
        if param.ge is not None or param.le is not None:
            if param.type not in {"int", "float"}:
                msg = f"parameter {name!r}: ge/le apply to int and float parameters only"
                raise JobSpecError(msg)
            bounds = {"ge": param.ge, "le": param.le}
        default: Any = ... if param.required else param.default
        fields[name] = (kind, Field(default, description=param.description or None, **bounds))
    config = ConfigDict(frozen=True, extra="forbid", strict=False)
    try:
        model: type[BaseModel] = create_model(f"{job}_params", __config__=config, **fields)
        # The defaults themselves must pass the bounds and choices (pydantic does not check).
        model.model_validate(
            {
                **{n: p.default for n, p in params.items() if p.default is not None},
                **{n: _example(p) for n, p in params.items() if p.required},
            }
        )
    except (ValidationError, TypeError) as exc:
        msg = f"parameters of job {job!r} do not form a valid model: {exc}"
        raise JobSpecError(msg) from exc
    return model


def _example(param: JobParamConfig) -> Any:
    """Some valid value of a required parameter (its first choice, or a bound)."""
    if param.choices:
        return param.choices[0]
    if param.type in {"int", "float"}:
        value = param.ge if param.ge is not None else param.le if param.le is not None else 0
        return int(value) if param.type == "int" and float(value).is_integer() else value
    return {"bool": True, "str": "x", "path": "."}[param.type]


def config_job_spec(name: str, table: JobConfig, *, source: str | None = None) -> JobSpec:
    """The registry entry of a `[jobs.NAME]` table (or an entry point's mapping).

    Raises:
        JobSpecError: the table does not make a valid entry (names the job and the rule).
    """
    origin = source or f"config [jobs.{name}]"
    try:
        model = params_model(name, table.params)
        if table.module is not None:
            argv: tuple[str, ...] = (
                "{python}",
                "-m",
                table.module,
                "--state-dir",
                "{state_dir}",
                "--result-json",
                "{result_json}",
            )
            as_flags = True if table.params_as_flags is None else table.params_as_flags
            history_flag = "--history" if table.history else None
            fingerprint_flag = "--history-fingerprint" if table.history else None
            seed_flag = "--seed" if table.seed else None
        else:
            argv = table.argv
            as_flags = bool(table.params_as_flags)
            history_flag = fingerprint_flag = seed_flag = None
        result: Any = GenericResult if table.result_model == "generic" else table.result_model
        shard = None
        if table.shard_start and table.shard_end and table.shard_merge:
            shard = ShardSpec(
                start=table.shard_start,
                end=table.shard_end,
                merge=table.shard_merge,
                min_size=table.shard_min_size,
            )
        fields: dict[str, Any] = {
            "name": name,
            "argv": argv,
            "params_model": model,
            "result_model": result,
            "timeout_s": table.timeout_s,
            "needs_gpu": table.needs_gpu,
            "vram_mb": table.vram_mb,
            "env": table.env,
            "workdir": table.workdir,
            "params_as_flags": as_flags,
            "history_flag": history_flag,
            "seed_flag": seed_flag,
            "fingerprint_flag": fingerprint_flag,
            "shard": shard,
            "description": table.description,
            "source": origin,
        }
        if table.gpus is not None:
            fields["gpus"] = table.gpus
        spec = JobSpec(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(table)"
        msg = f"{origin}: {where}: {first['msg']}"
        raise JobSpecError(msg) from exc
    except JobSpecError as exc:
        msg = f"{origin}: {exc}"
        raise JobSpecError(msg) from exc
    return spec


def _spec_from_object(name: str, obj: object, source: str) -> JobSpec:
    if callable(obj) and not isinstance(obj, type | JobSpec):
        obj = obj()
    if isinstance(obj, JobSpec):
        if obj.name != name:
            msg = f"{source}: names job {obj.name!r}; the entry point's name must be the same"
            raise JobSpecError(msg)
        return obj.model_copy(update={"source": source})
    if isinstance(obj, Mapping):
        try:
            table = JobConfig.model_validate(dict(obj))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(table)"
            msg = f"{source}: {where}: {first['msg']}"
            raise JobSpecError(msg) from exc
        return config_job_spec(name, table, source=source)
    msg = f"{source}: gives {obj!r}; expected a JobSpec, a [jobs.NAME]-style mapping or a callable"
    raise JobSpecError(msg)


def entry_point_specs(
    loader: Callable[[], Any] | None = None,
) -> list[JobSpec]:
    """The jobs installed packages register under the group `watcher.jobs`."""
    found = (loader or (lambda: importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)))()
    specs: list[JobSpec] = []
    for point in sorted(found, key=lambda p: p.name):
        source = f"entry point {point.name!r} ({point.value})"
        try:
            obj = point.load()
        except Exception as exc:  # a broken plug-in: whatever its import raises
            msg = f"{source}: cannot be loaded: {type(exc).__name__}: {exc}"
            raise JobSpecError(msg) from exc
        specs.append(_spec_from_object(point.name, obj, source))
    return specs


def build_registry(settings: Settings, *, entry_points: bool = True) -> JobRegistry:
    """The daemon's registry: builtins, `[jobs.NAME]` tables, installed entry points; checked.

    Raises:
        ConfigError: an entry is wrong, a name is registered twice, a unit names no
            registered job, or `[watcher.params.UNIT]` breaks that job's parameter model.
    """
    try:
        specs = list(default_registry())
        specs.extend(config_job_spec(name, table) for name, table in settings.jobs.items())
        if entry_points:
            specs.extend(entry_point_specs())
        registry = JobRegistry(specs)
        for spec in registry:
            try:
                spec.check()
            except JobSpecError as exc:
                if spec.source == "builtin":
                    raise
                msg = f"{spec.source}: {exc}"
                raise JobSpecError(msg) from exc
    except JobSpecError as exc:
        raise ConfigError(str(exc)) from exc
    check_watcher_config(settings.watcher, registry)
    return registry


def check_watcher_config(watcher: WatcherConfig, registry: JobRegistry) -> None:
    """Every unit names a registered job; every `[watcher.params.UNIT]` passes its model.

    Raises:
        ConfigError: naming `watcher.step_jobs.UNIT` or `watcher.params.UNIT.NAME`, the value
            and the rule.
    """
    for unit, job in sorted(watcher.step_jobs.items()):
        if job not in registry:
            known = ", ".join(registry.names())
            msg = f"key 'watcher.step_jobs.{unit}': unknown job {job!r}; registered: {known}"
            raise ConfigError(msg)
    for unit, params in sorted(watcher.params.items()):
        job = watcher.step_jobs[unit]
        try:
            registry.validate_params(job, params)
        except JobParamsError as exc:
            raise ConfigError(param_error_text(f"watcher.params.{unit}", params, exc)) from exc
        except UnknownJobError as exc:  # pragma: no cover  (step_jobs was checked above)
            raise ConfigError(str(exc)) from exc


def param_error_text(prefix: str, params: Mapping[str, object], exc: JobParamsError) -> str:
    """`key 'PREFIX.NAME': value V: RULE (detail)` for a parameter a person set."""
    name = exc.param.split(".")[0]
    shown = f"value {params[name]!r}: " if name in params else ""
    detail = f" ({exc.detail})" if exc.detail else ""
    return f"key '{prefix}.{name}': {shown}{exc.rule}{detail} [job {exc.job!r}]"
