"""The job registry: what may run, with which parameters, and what its result must look like.

A request names a job and gives parameters, never a command. The registry validates the
parameters with the job's pydantic model (unknown names refused, types and ranges enforced)
and renders each value as exactly one argv element, so a parameter can never become an extra
argument, an option, or a path outside the state directory.
"""

from __future__ import annotations

import enum
import importlib
import json
import math
import os
import re
import string
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from pathlib import Path, PurePath, PurePosixPath
from typing import Any, Literal

import structlog
from pydantic import (
    BaseModel,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from messages.base import Model
from messages.errors import ConfigError, InputError

__all__ = [
    "BUILTIN_PLACEHOLDERS",
    "NOOP_JOB",
    "JobParamsError",
    "JobRegistry",
    "JobSpec",
    "JobSpecError",
    "ModelRef",
    "NoParams",
    "NoopResult",
    "ResultFileError",
    "UnknownJobError",
    "default_registry",
    "pipeline_job_specs",
]

_log = structlog.get_logger("actors.gpu.registry")

BUILTIN_PLACEHOLDERS = frozenset({"python", "state_dir", "result_json", "history", "workdir"})
"""Placeholders every template may use besides its parameters' names."""

# A result file is a summary; 16 MiB is far above any real one and stops a runaway job
# from making the dispatcher read gigabytes.
_MAX_RESULT_BYTES = 16 * 1024 * 1024
# Default for the reference pipeline's jobs: they run minutes to hours (issue 5).
_PIPELINE_TIMEOUT_S = 4 * 3600.0
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Control characters: NUL truncates a C string, a newline forges a log or protocol line.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Jobs run without a shell, but a job may hand a value to one; these only mean something there.
_SHELL_META = re.compile(r"[;&|`$<>\\]")


class JobSpecError(ConfigError):
    """Raised when a registry entry itself is wrong (bad template, unresolvable model...)."""


class UnknownJobError(InputError):
    """Raised when a request names a job the registry does not hold."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        super().__init__(f"job {name!r}", "unknown job", f"known: {', '.join(sorted(known))}")
        self.name = name


class JobParamsError(InputError):
    """Raised when a parameter breaks a rule; names the job, the parameter and the rule."""

    def __init__(self, job: str, param: str, rule: str, detail: str = "") -> None:
        super().__init__(f"job {job!r} parameter {param!r}", rule, detail)
        self.job = job
        self.param = param


class ResultFileError(InputError):
    """Raised when a job's result file is missing, unreadable, not JSON or off its schema."""

    def __init__(self, job: str, path: Path, rule: str, detail: str = "") -> None:
        super().__init__(f"result file {str(path)!r} of job {job!r}", rule, detail)
        self.job = job
        self.path = path


class NoParams(BaseModel):
    """The parameter model of a job that takes none."""

    model_config = {"frozen": True, "extra": "forbid"}


class NoopResult(Model):
    """What `python -m pipeline.noop` writes: it ran, and optionally a word about it."""

    ok: Literal[True] = True
    message: str = ""


ModelRef = type[BaseModel] | str
"""A model class, or a dotted reference `package.module:Class` resolved on first use."""


@lru_cache(maxsize=256)
def _import_model(ref: str) -> type[BaseModel]:
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        msg = f"model reference {ref!r} must look like 'package.module:Class'"
        raise JobSpecError(msg)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        msg = f"model reference {ref!r}: module {module_name!r} cannot be imported ({exc})"
        raise JobSpecError(msg) from exc
    obj: object = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            msg = f"model reference {ref!r}: {module_name!r} has no attribute {attr!r}"
            raise JobSpecError(msg) from exc
    if not (isinstance(obj, type) and issubclass(obj, BaseModel)):
        msg = f"model reference {ref!r} names {obj!r}, which is not a pydantic model class"
        raise JobSpecError(msg)
    return obj


def _template_names(element: str) -> list[str]:
    """The placeholder names of one template element; only plain `{name}` is allowed."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(element))
    except ValueError as exc:
        msg = f"argv template element {element!r} is not a valid template ({exc})"
        raise ValueError(msg) from exc
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            msg = (
                f"argv template element {element!r}: placeholder {{{field}}} must be a plain "
                "name (no attribute, index, conversion or format spec)"
            )
            raise ValueError(msg)
        names.append(field)
    return names


class JobSpec(Model):
    """One registry entry: how to run a job, what it accepts and what it must produce."""

    name: str
    """Lower-case identifier that requests use (`sieve`, `noop`...)."""
    argv: tuple[str, ...] = Field(min_length=1)
    """The command as a list; `{name}` placeholders are builtins or parameter names."""
    params_model: ModelRef = NoParams
    """Pydantic model of the parameters; must refuse unknown keys (extra="forbid")."""
    result_model: ModelRef
    """Pydantic model the result file (`--result-json`) must match."""
    timeout_s: float = Field(gt=0)
    needs_gpu: bool = False
    gpus: int = Field(default=0, ge=0)
    """GPUs the job needs; defaults to 1 when `needs_gpu`, else 0."""
    vram_mb: int = Field(default=0, ge=0)
    """Free memory the job needs on each of its GPUs."""
    env: dict[str, str] = Field(default_factory=dict)
    """Variables added to the job's environment."""
    workdir: PurePosixPath = PurePosixPath(".")
    """Working directory, relative to the state directory."""
    params_as_flags: bool = False
    """Append every parameter not named in the template as `--kebab-name VALUE`."""
    history_flag: str | None = None
    """When set and a history file is given, `[history_flag, PATH]` is appended."""
    seed_flag: str | None = None
    """When set, `build_argv(seed=N)` appends `[seed_flag, N]`; without it a seed is refused."""
    fingerprint_flag: str | None = None
    """When set, `build_argv(history_fingerprint=F)` appends `[fingerprint_flag, F]`."""
    step: int | None = None
    """The pipeline step this job implements, if any (1-6)."""
    description: str = ""

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.match(value):
            msg = f"job name {value!r} must match {_NAME.pattern}"
            raise ValueError(msg)
        return value

    @field_validator("argv")
    @classmethod
    def _check_argv(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for element in value:
            _template_names(element)
        return value

    @field_validator("env")
    @classmethod
    def _check_env(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if not _ENV_NAME.match(key) or "\x00" in item:
                msg = (
                    f"env variable {key!r} must match {_ENV_NAME.pattern} with no NUL in its value"
                )
                raise ValueError(msg)
            if key == "CUDA_VISIBLE_DEVICES":
                msg = "env variable 'CUDA_VISIBLE_DEVICES' is set by the GPU assignment, not a job"
                raise ValueError(msg)
        return value

    @field_validator("workdir")
    @classmethod
    def _check_workdir(cls, value: PurePosixPath) -> PurePosixPath:
        if value.is_absolute() or ".." in value.parts:
            msg = f"workdir {str(value)!r} must be relative to the state directory, without '..'"
            raise ValueError(msg)
        return value

    @field_validator("history_flag", "seed_flag", "fingerprint_flag")
    @classmethod
    def _check_flag(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"--[a-z0-9][a-z0-9-]*", value):
            msg = f"flag {value!r} must be an option like '--name' (lower case, digits, '-')"
            raise ValueError(msg)
        return value

    @model_validator(mode="before")
    @classmethod
    def _default_gpus(cls, data: object) -> object:
        # The default of `gpus` depends on `needs_gpu`, so it is filled in before validation.
        if isinstance(data, Mapping) and "gpus" not in data:
            try:
                needs_gpu = TypeAdapter(bool).validate_python(data.get("needs_gpu", False))
            except ValidationError:
                return data  # the field validator reports the bad needs_gpu
            return {**data, "gpus": 1 if needs_gpu else 0}
        return data

    @model_validator(mode="after")
    def _check_gpus(self) -> JobSpec:
        if self.needs_gpu and self.gpus < 1:
            msg = f"job {self.name!r} needs a GPU, so gpus={self.gpus} must be >= 1"
            raise ValueError(msg)
        if not self.needs_gpu and (self.gpus or self.vram_mb):
            msg = f"job {self.name!r} is a CPU job (needs_gpu=false): gpus and vram_mb must be 0"
            raise ValueError(msg)
        return self

    def params_class(self) -> type[BaseModel]:
        """The parameter model, imported on first use; checks that it refuses unknown keys."""
        cls = self._resolve(self.params_model, "params_model")
        if cls.model_config.get("extra") != "forbid":
            msg = (
                f"job {self.name!r}: params_model {cls.__qualname__} must refuse unknown "
                "parameters (model_config extra='forbid')"
            )
            raise JobSpecError(msg)
        return cls

    def result_class(self) -> type[BaseModel]:
        """The result model, imported on first use."""
        return self._resolve(self.result_model, "result_model")

    def _resolve(self, ref: ModelRef, field: str) -> type[BaseModel]:
        if not isinstance(ref, str):
            return ref
        try:
            return _import_model(ref)
        except JobSpecError as exc:
            msg = f"job {self.name!r} {field}: {exc}"
            raise JobSpecError(msg) from exc


def _kebab(name: str) -> str:
    return "--" + name.replace("_", "-")


class _Renderer:
    """Render validated parameter values as single argv elements, enforcing the rules."""

    def __init__(self, job: str, state_root: Path) -> None:
        self._job = job
        self._root = state_root

    def fail(self, param: str, rule: str, value: object) -> JobParamsError:
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        return JobParamsError(self._job, param, rule, f"got {shown}")

    def render(self, param: str, value: object) -> str:
        """One value → one argv element."""
        if isinstance(value, list | tuple | set | frozenset):
            items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
            parts = [self._scalar(param, item) for item in items]
            for part in parts:
                if "," in part:
                    raise self.fail(param, "a list item must not contain ','", part)
            return ",".join(parts)
        return self._scalar(param, value)

    def _scalar(self, param: str, value: object) -> str:
        if isinstance(value, enum.Enum):
            value = value.value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise self.fail(param, "a number must be finite", value)
            return repr(value)
        if isinstance(value, PurePath):
            return self._path(param, value)
        if isinstance(value, str):
            return self._string(param, value)
        raise self.fail(
            param, "unsupported parameter type (str, int, float, bool, path, enum)", value
        )

    def _plain(self, param: str, text: str, what: str) -> None:
        if (match := _CONTROL.search(text)) is not None:
            char = match.group()
            label = {"\x00": "NUL", "\n": "a newline", "\r": "a carriage return"}.get(
                char, f"control character {char!r}"
            )
            raise self.fail(param, f"a {what} must not contain {label}", text)
        if (match := _SHELL_META.search(text)) is not None:
            raise self.fail(
                param, f"a {what} must not contain the shell metacharacter {match.group()!r}", text
            )

    def _string(self, param: str, value: str) -> str:
        self._plain(param, value, "string")
        if value.startswith("-"):
            raise self.fail(
                param, "a string must not start with '-' (it would read as an option)", value
            )
        return value

    def _path(self, param: str, value: PurePath) -> str:
        text = str(value)
        self._plain(param, text, "path")
        if ".." in value.parts:
            raise self.fail(param, "a path must not contain '..'", text)
        candidate = Path(value) if value.is_absolute() else self._root / value
        resolved = candidate.resolve()
        if not resolved.is_relative_to(self._root):
            raise self.fail(
                param,
                f"a path must resolve inside the state directory {str(self._root)!r} "
                f"(resolves to {str(resolved)!r})",
                text,
            )
        return str(resolved)


class JobRegistry:
    """The jobs that may run, by name; builds argv, environment and validates results."""

    def __init__(self, jobs: Iterable[JobSpec]) -> None:
        self._jobs: dict[str, JobSpec] = {}
        for job in jobs:
            if job.name in self._jobs:
                msg = f"job {job.name!r} is registered twice; names must be unique"
                raise JobSpecError(msg)
            self._jobs[job.name] = job

    def __contains__(self, name: object) -> bool:
        return name in self._jobs

    def __iter__(self) -> Iterator[JobSpec]:
        return iter(self._jobs.values())

    def __len__(self) -> int:
        return len(self._jobs)

    def names(self) -> tuple[str, ...]:
        """Every job name, sorted."""
        return tuple(sorted(self._jobs))

    def get(self, name: str) -> JobSpec:
        """The entry for `name`; raises UnknownJobError naming the known jobs."""
        try:
            return self._jobs[name]
        except KeyError:
            raise UnknownJobError(name, self._jobs) from None

    def validate_params(self, name: str, params: Mapping[str, object]) -> BaseModel:
        """Validate `params` with the job's model; raises JobParamsError on the first problem."""
        spec = self.get(name)
        model = spec.params_class()
        for key in params:
            if not isinstance(key, str):
                raise JobParamsError(name, repr(key), "parameter names must be strings")
        try:
            return model.model_validate(dict(params))
        except ValidationError as exc:
            raise _params_error(name, model, exc) from exc

    def build_argv(
        self,
        name: str,
        params: Mapping[str, object],
        *,
        state_dir: Path,
        result_path: Path,
        history_path: Path | None = None,
        seed: int | None = None,
        history_fingerprint: str | None = None,
    ) -> list[str]:
        """Validate `params` and render the job's argv: one element per value, no shell.

        `history_path`, `seed` and `history_fingerprint` come from the dispatcher, not the
        request; each is appended with the job's flag for it (`history_flag`, `seed_flag`,
        `fingerprint_flag`). A seed or fingerprint for a job without that flag is refused.

        Raises:
            UnknownJobError: no job of that name.
            JobParamsError: a parameter is unknown, of the wrong type, out of range, a string
                starting with '-' or holding NUL/newline, or a path leaving the state dir.
            JobSpecError: the entry itself is wrong (a placeholder nobody provides...).
        """
        spec = self.get(name)
        validated = self.validate_params(name, params)
        root = state_dir.resolve()
        renderer = _Renderer(name, root)
        values: dict[str, object] = dict(validated)
        rendered: dict[str, str | None] = {
            key: None if value is None else renderer.render(key, value)
            for key, value in values.items()
        }
        builtins: dict[str, str | None] = {
            "python": sys.executable,
            "state_dir": str(root),
            "result_json": os.path.abspath(result_path),
            "history": None if history_path is None else os.path.abspath(history_path),
            "workdir": str(self.workdir(name, state_dir)),
        }
        clash = BUILTIN_PLACEHOLDERS & values.keys()
        if clash:
            msg = f"job {name!r}: parameter names {sorted(clash)} clash with builtin placeholders"
            raise JobSpecError(msg)
        lookup = {**builtins, **rendered}
        argv: list[str] = []
        used: set[str] = set()
        for element in spec.argv:
            names = _template_names(element)
            for key in names:
                if key not in lookup:
                    msg = (
                        f"job {name!r}: argv placeholder {{{key}}} is neither a builtin "
                        f"({', '.join(sorted(BUILTIN_PLACEHOLDERS))}) nor a parameter"
                    )
                    raise JobSpecError(msg)
                if lookup[key] is None:
                    rule = "is required by the job's command line"
                    if key == "history":
                        rule = "a history file is required by the job's command line"
                    raise JobParamsError(name, key, rule, "got None")
            used.update(names)
            argv.append(element.format_map(lookup))
        if spec.params_as_flags:
            argv.extend(_flags(values, rendered, used))
        if spec.history_flag is not None and builtins["history"] is not None:
            argv.extend([spec.history_flag, builtins["history"]])
        if seed is not None:
            if spec.seed_flag is None:
                raise JobParamsError(name, "seed", "this job takes no seed (no seed_flag)")
            if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
                raise JobParamsError(
                    name, "seed", "a seed must be an integer >= 0", f"got {seed!r}"
                )
            argv.extend([spec.seed_flag, str(seed)])
        if history_fingerprint is not None:
            if spec.fingerprint_flag is None:
                raise JobParamsError(
                    name,
                    "history_fingerprint",
                    "this job takes no fingerprint (no fingerprint_flag)",
                )
            argv.extend(
                [spec.fingerprint_flag, renderer.render("history_fingerprint", history_fingerprint)]
            )
        return argv

    def workdir(self, name: str, state_dir: Path) -> Path:
        """The job's working directory (absolute; not created here)."""
        spec = self.get(name)
        root = state_dir.resolve()
        path = (root / spec.workdir).resolve()
        if not path.is_relative_to(root):
            msg = f"job {name!r}: workdir {str(spec.workdir)!r} resolves outside {str(root)!r}"
            raise JobSpecError(msg)
        return path

    def build_env(
        self,
        name: str,
        *,
        base: Mapping[str, str],
        gpu_indices: Sequence[int] | None = None,
    ) -> dict[str, str]:
        """`base` plus the job's additions, pinned to `gpu_indices` when given (empty: no GPU)."""
        spec = self.get(name)
        env = {**base, **spec.env}
        if gpu_indices is not None:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in gpu_indices)
        return env

    def validate_result(self, name: str, path: Path) -> BaseModel:
        """Read and validate the job's result file against its result model.

        Blocking file I/O: call it through `anyio.to_thread.run_sync` from an actor.

        Raises:
            ResultFileError: missing, unreadable, too large, not JSON, or off the schema.
        """
        model = self.get(name).result_class()
        try:
            size = path.stat().st_size
            if size > _MAX_RESULT_BYTES:
                raise ResultFileError(
                    name, path, f"is larger than {_MAX_RESULT_BYTES} bytes", f"{size} bytes"
                )
            raw = path.read_bytes()
        except FileNotFoundError as exc:
            raise ResultFileError(name, path, "is missing (the job wrote no result)") from exc
        except OSError as exc:
            raise ResultFileError(name, path, "cannot be read", str(exc)) from exc
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ResultFileError(name, path, "is not valid JSON", str(exc)) from exc
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(top level)"
            raise ResultFileError(
                name,
                path,
                f"does not match the result schema {model.__qualname__}",
                f"{where}: {first['msg']}; {exc.error_count()} error(s)",
            ) from exc


def _params_error(job: str, model: type[BaseModel], exc: ValidationError) -> JobParamsError:
    first = exc.errors()[0]
    param = ".".join(str(p) for p in first["loc"]) or "(all)"
    if first["type"] == "extra_forbidden":
        known = ", ".join(sorted(model.model_fields)) or "none"
        return JobParamsError(job, param, "unknown parameter", f"known: {known}")
    if first["type"] == "missing":
        return JobParamsError(job, param, "required parameter is missing")
    shown = repr(first.get("input"))
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return JobParamsError(job, param, first["msg"], f"got {shown}")


def _flags(
    values: Mapping[str, object], rendered: Mapping[str, str | None], used: set[str]
) -> list[str]:
    """`--kebab-name VALUE` for each parameter the template did not place (None: omitted)."""
    out: list[str] = []
    for key, value in values.items():
        if key in used or value is None:
            continue
        if isinstance(value, bool):
            # argparse.BooleanOptionalAction: `--flag` / `--no-flag`.
            out.append(_kebab(key) if value else "--no-" + key.replace("_", "-"))
            continue
        text = rendered[key]
        assert text is not None  # None values were skipped above
        out.extend([_kebab(key), text])
    return out


def _info(info: object, *names: str, default: Any = ...) -> Any:
    """Read a field of a `pipeline.jobs.JOBS` entry, given as an object or a mapping."""
    for name in names:
        if isinstance(info, Mapping) and name in info:
            return info[name]
        if hasattr(info, name):
            return getattr(info, name)
    if default is ...:
        msg = f"pipeline.jobs entry {info!r} has none of the fields {names}"
        raise JobSpecError(msg)
    return default


def pipeline_job_specs(jobs: Mapping[str, object]) -> list[JobSpec]:
    """Registry entries for the reference pipeline from a `pipeline.jobs.JOBS`-shaped table.

    Each entry gives `module` (`pipeline.sieve` or `sieve`), `step`, `params` / `params_model`
    and `result` / `result_model`, and optionally `needs_history` (default True), `timeout_s`,
    `needs_gpu`, `gpus`, `vram_mb`. The command is `python -m MODULE --state-dir DIR
    --result-json PATH [--foo-bar VALUE for every parameter foo_bar] [--history PATH]
    [--seed N] [--history-fingerprint F]`.
    """
    specs: list[JobSpec] = []
    for name, info in jobs.items():
        module = str(_info(info, "module"))
        if "." not in module:
            module = f"pipeline.{module}"
        needs_gpu = bool(_info(info, "needs_gpu", default=False))
        needs_history = bool(_info(info, "needs_history", default=True))
        fields: dict[str, Any] = {
            "name": name,
            "argv": (
                "{python}",
                "-m",
                module,
                "--state-dir",
                "{state_dir}",
                "--result-json",
                "{result_json}",
            ),
            "params_model": _info(info, "params_model", "params"),
            "result_model": _info(info, "result_model", "result"),
            "timeout_s": float(_info(info, "timeout_s", default=_PIPELINE_TIMEOUT_S)),
            "needs_gpu": needs_gpu,
            "vram_mb": int(_info(info, "vram_mb", default=0)),
            "params_as_flags": True,
            "history_flag": "--history" if needs_history else None,
            "seed_flag": "--seed",
            "fingerprint_flag": "--history-fingerprint" if needs_history else None,
            "step": _info(info, "step", default=None),
            "description": str(_info(info, "description", "doc", default="")),
        }
        gpus = _info(info, "gpus", default=None)
        if gpus is not None:
            fields["gpus"] = int(gpus)
        try:
            specs.append(JobSpec(**fields))
        except ValidationError as exc:
            msg = f"pipeline job {name!r} cannot become a registry entry: {exc}"
            raise JobSpecError(msg) from exc
    return specs


NOOP_JOB = JobSpec(
    name="noop",
    argv=("{python}", "-m", "pipeline.noop", "--result-json", "{result_json}"),
    result_model=NoopResult,
    timeout_s=60.0,
    description='Does nothing and writes {"ok": true}: checks the dispatch path end to end.',
)
"""The job that does nothing: exercises the whole dispatch path in a fraction of a second."""


def default_registry() -> JobRegistry:
    """`noop` plus the reference pipeline's jobs when `pipeline.jobs` can be imported."""
    specs = [NOOP_JOB]
    try:
        jobs_module = importlib.import_module("pipeline.jobs")
    except ModuleNotFoundError as exc:
        if exc.name not in {"pipeline", "pipeline.jobs"}:
            raise  # pipeline.jobs exists but is broken: that must not pass silently
        _log.info("gpu.registry.no_pipeline", reason=str(exc))
        return JobRegistry(specs)
    specs.extend(pipeline_job_specs(jobs_module.JOBS))
    return JobRegistry(specs)
