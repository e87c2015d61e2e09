"""A job's registry entry and its validation: what may run, with what, producing what.

A request names a job and gives parameters, never a command. `JobSpec` says how the job is
started (an argv template), its parameter model (pydantic, unknown keys refused), its result
model, its GPU and memory needs, its timeout and, for a job whose work splits over a range
(the sieve's seeds), how it is sharded and how the shards' results merge.
"""

from __future__ import annotations

import importlib
import re
import string
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
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
    "GenericResult",
    "JobParamsError",
    "JobSpec",
    "JobSpecError",
    "ModelRef",
    "NoParams",
    "NoopResult",
    "ResultFileError",
    "ShardSpec",
    "UnknownJobError",
    "import_ref",
    "template_names",
]

BUILTIN_PLACEHOLDERS = frozenset({"python", "state_dir", "result_json", "history", "workdir"})
"""Placeholders every template may use besides its parameters' names."""

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Ray and CUDA pin devices through these; a job setting them would escape its assignment.
_PINNED_ENV = frozenset({"CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES"})
_ARTIFACT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,255}$")


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


class GenericResult(Model):
    """The result contract of a job that is not one of the reference ones.

    Besides `ok`, `summary` and `artifacts`, every other top-level key is a metric the
    step's evaluation reads by name: a number, a boolean or a string, or one level of such
    values in an object (`{"config": {"fitness": 0.4}}` is metric `config.fitness`). A job
    standing in for step N reports the metrics of step N's thresholds (docs/bundles.md).
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    ok: bool = True
    """False: the job ran but says its output is not usable (the step's advisor sees it)."""
    summary: str = Field(default="", max_length=2000)
    artifacts: tuple[str, ...] = ()
    """Files the job wrote, relative to the state directory (no '..', no absolute path)."""

    @model_validator(mode="after")
    def _metrics(self) -> GenericResult:
        extra = self.__pydantic_extra__ or {}
        if len(extra) > 1000:
            msg = f"{len(extra)} metrics; at most 1000"
            raise ValueError(msg)
        for key, value in extra.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", key):
                msg = f"metric name {key!r} must be an identifier of at most 64 characters"
                raise ValueError(msg)
            inner = value.values() if isinstance(value, dict) else [value]
            for item in inner:
                if not isinstance(item, int | float | bool | str):
                    msg = (
                        f"metric {key!r} must be a number, boolean or string, or an object "
                        f"of those (got {type(item).__name__})"
                    )
                    raise ValueError(msg)  # noqa: TRY004  (pydantic turns ValueError into a rule)
        return self

    @field_validator("artifacts")
    @classmethod
    def _relative(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not _ARTIFACT.match(item) or ".." in PurePosixPath(item).parts:
                msg = f"artifact {item!r} must be a relative path inside the state directory"
                raise ValueError(msg)
        return value


ModelRef = type[BaseModel] | str
"""A model class, or a dotted reference `package.module:Class` resolved on first use."""


@lru_cache(maxsize=256)
def import_ref(ref: str) -> object:
    """The object a `package.module:attr.path` reference names; JobSpecError when it cannot."""
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        msg = f"reference {ref!r} must look like 'package.module:Name'"
        raise JobSpecError(msg)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        msg = f"reference {ref!r}: module {module_name!r} cannot be imported ({exc})"
        raise JobSpecError(msg) from exc
    obj: object = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            msg = f"reference {ref!r}: {module_name!r} has no attribute {attr!r}"
            raise JobSpecError(msg) from exc
    return obj


def _import_model(ref: str) -> type[BaseModel]:
    obj = import_ref(ref)
    if not (isinstance(obj, type) and issubclass(obj, BaseModel)):
        msg = f"model reference {ref!r} names {obj!r}, which is not a pydantic model class"
        raise JobSpecError(msg)
    return obj


def template_names(element: str) -> list[str]:
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


class ShardSpec(Model):
    """How a job splits: over the integer range `[start, end)` of two of its parameters.

    Each shard runs the job with its own sub-range and its own state directory
    (`runs/<run>/<unit>/shard-K`), so shards never write the same artifact; `merge` then
    combines the shards' results into the one result (and artifacts) of the step. A merge
    that finds the shards inconsistent raises ValueError (the step fails, the reason named).
    """

    start: str
    """Parameter holding the range's first value (inclusive), e.g. `seed_start`."""
    end: str
    """Parameter holding one past the range's last value, e.g. `seed_end`."""
    merge: str
    """`package.module:function` called as `merge(results, shard_dirs, state_dir, params)`:
    the shards' validated results in range order, their state folders, the real state
    directory and the step's (unsplit) validated parameters; returns the step's result."""
    min_size: int = Field(default=1, ge=1)
    """No shard is smaller than this (a tiny range is not worth a process per GPU)."""

    def merger(self) -> Callable[..., BaseModel]:
        """The merge function, imported on first use."""
        obj = import_ref(self.merge)
        if not callable(obj):
            msg = f"shard merge reference {self.merge!r} names {obj!r}, which is not callable"
            raise JobSpecError(msg)
        return obj


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
    shard: ShardSpec | None = None
    """How the job splits over GPUs; None: it runs as one process."""
    source: str = "builtin"
    """Where the entry came from: `builtin`, `config [jobs.NAME]` or `entry point NAME`."""
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
            template_names(element)
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
            if key in _PINNED_ENV:
                msg = f"env variable {key!r} is set by the GPU assignment, not a job"
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

    def check(self) -> None:
        """Resolve both models and the shard's merge function now (start-up), not mid-run.

        Raises:
            JobSpecError: a model or merge reference does not resolve, the parameter model
                accepts unknown keys, or a shard parameter is not an integer parameter.
        """
        params = self.params_class()
        self.result_class()
        for element in self.argv:
            for name in template_names(element):
                if name not in BUILTIN_PLACEHOLDERS and name not in params.model_fields:
                    msg = (
                        f"job {self.name!r}: argv placeholder {{{name}}} is neither a builtin "
                        f"({', '.join(sorted(BUILTIN_PLACEHOLDERS))}) nor a parameter"
                    )
                    raise JobSpecError(msg)
        if self.shard is None:
            return
        for role, name in (("start", self.shard.start), ("end", self.shard.end)):
            field = params.model_fields.get(name)
            if field is None or field.annotation is not int:
                msg = (
                    f"job {self.name!r}: shard {role} {name!r} must be an int parameter of "
                    f"{params.__qualname__}"
                )
                raise JobSpecError(msg)
        try:
            self.shard.merger()
        except JobSpecError as exc:
            msg = f"job {self.name!r} shard: {exc}"
            raise JobSpecError(msg) from exc
