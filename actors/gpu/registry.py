"""The job registry: every job that may run, by name, and what it takes and returns.

Built at start-up from the reference pipeline (`pipeline.jobs.JOBS`), `noop`, the config's
`[jobs.NAME]` tables and installed packages' entry points (group `watcher.jobs`; see
`actors.gpu.plugins`). Validation of an entry is `actors.gpu.spec`, argv rendering
`actors.gpu.argv`; this module only holds the entries and answers for them.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import BaseModel, ValidationError

from actors.gpu.argv import render_argv
from actors.gpu.spec import (
    JobParamsError,
    JobSpec,
    JobSpecError,
    NoopResult,
    ResultFileError,
    ShardSpec,
    UnknownJobError,
)

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "NOOP_JOB",
    "JobRegistry",
    "default_registry",
    "pipeline_job_specs",
]

_log = structlog.get_logger("actors.gpu.registry")

# A result file is a summary; 16 MiB is far above any real one and stops a runaway job
# from making the dispatcher read gigabytes.
_MAX_RESULT_BYTES = 16 * 1024 * 1024
# Default for the reference pipeline's jobs: they run minutes to hours (issue 5).
_PIPELINE_TIMEOUT_S = 4 * 3600.0


class JobRegistry:
    """The jobs that may run, by name; builds argv, environment and validates results."""

    def __init__(self, jobs: Iterable[JobSpec]) -> None:
        self._jobs: dict[str, JobSpec] = {}
        for job in jobs:
            if job.name in self._jobs:
                first = self._jobs[job.name].source
                msg = (
                    f"job {job.name!r} is registered twice ({first}; {job.source}); "
                    "names must be unique"
                )
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
        job_state_dir: Path | None = None,
    ) -> list[str]:
        """Validate `params` and render the job's argv: one element per value, no shell.

        `history_path`, `seed` and `history_fingerprint` come from the dispatcher, not the
        request; each is appended with the job's flag for it (`history_flag`, `seed_flag`,
        `fingerprint_flag`). A seed or fingerprint for a job without that flag is refused.
        The rendering itself is `actors.gpu.argv.render_argv` (pure).

        Raises:
            UnknownJobError: no job of that name.
            JobParamsError: a parameter is unknown, of the wrong type, out of range, a string
                starting with '-' or holding NUL/newline, or a path leaving the state dir.
            JobSpecError: the entry itself is wrong (a placeholder nobody provides...).
        """
        spec = self.get(name)
        validated = self.validate_params(name, params)
        return render_argv(
            spec,
            validated,
            state_dir=state_dir,
            workdir=self.workdir(name, state_dir),
            result_path=result_path,
            history_path=history_path,
            seed=seed,
            history_fingerprint=history_fingerprint,
            job_state_dir=job_state_dir,
        )

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
    [--seed N] [--history-fingerprint F]`. `shard_range` (a pair of int parameter names),
    `shard_merge` and `shard_min_size` make the job shardable.
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
        shard_range = _info(info, "shard_range", default=None)
        if shard_range is not None:
            start, end = shard_range
            fields["shard"] = ShardSpec(
                start=start,
                end=end,
                merge=str(_info(info, "shard_merge")),
                min_size=int(_info(info, "shard_min_size", default=1)),
            )
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
