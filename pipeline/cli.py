"""The shell every job shares: flags from its parameter model, progress lines, exit codes.

Exit codes: 0 success; 2 bad flags or a missing/corrupt input (one line on stderr naming the
file and the problem); 143 terminated by SIGTERM (no partial artifact left); 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import traceback
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ValidationError

from pipeline.array_module import ArrayModule, get_array_module
from pipeline.errors import JobTerminated, PipelineInputError
from pipeline.files import write_model
from pipeline.history import History, load_history

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from messages.artifacts import PipelineResult
    from pipeline.jobs import JobInfo

P = TypeVar("P", bound=BaseModel)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_TERMINATED = 128 + signal.SIGTERM
# Progress lines at most every 0.2 s: a 2^32 seed range has 16,384 chunks of 2^18.
_PROGRESS_INTERVAL_S = 0.2


@dataclass
class Progress:
    """Prints `{"event": "progress", "done", "total", "message"}` lines on stdout, throttled."""

    _last: float = field(default=0.0)

    def __call__(self, done: int, total: int, message: str = "", *, force: bool = False) -> None:
        """Report progress; lines closer than 0.2 s are dropped unless forced or final."""
        now = time.monotonic()
        if not force and done < total and now - self._last < _PROGRESS_INTERVAL_S:
            return
        self._last = now
        line = {"event": "progress", "done": done, "total": total, "message": message}
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()


@dataclass(frozen=True)
class JobContext:
    """What a job body gets besides its parameters."""

    job: str
    step: int | None
    state_dir: Path
    seed: int
    history_path: Path | None
    history_fingerprint: str | None
    array_module: ArrayModule
    progress: Progress
    started: float

    @property
    def artifacts_dir(self) -> Path:
        """`<state-dir>/artifacts/`."""
        return self.state_dir / "artifacts"

    def artifact(self, name: str) -> Path:
        """The path of an artifact file."""
        return self.artifacts_dir / name

    def load_history(self) -> History:
        """The validated `--history` file; PipelineInputError when it was not given."""
        if self.history_path is None:
            flag = "--history"
            raise PipelineInputError(flag, "is required by this job")
        return load_history(self.history_path)

    def result_fields(self, history: History, artifacts: Sequence[str]) -> dict[str, Any]:
        """The fields every result shares."""
        return {
            "seed": self.seed,
            "n_draws": len(history),
            "last_draw_id": history.last_draw_id,
            "history_fingerprint": self.history_fingerprint,
            "artifacts": tuple(f"artifacts/{name}" for name in artifacts),
            "elapsed_s": round(time.perf_counter() - self.started, 6),
        }


def flag_name(field_name: str) -> str:
    """The command-line flag of a parameter: `foo_bar` -> `--foo-bar`."""
    return "--" + field_name.replace("_", "-")


def _range_text(metadata: list[Any]) -> str:
    """`[lo..hi]` style range of a field from its annotated-types constraints."""
    lo = hi = ""
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            lo = f"{item.ge}"
        elif isinstance(item, annotated_types.Gt):
            lo = f">{item.gt}"
        elif isinstance(item, annotated_types.Le):
            hi = f"{item.le}"
        elif isinstance(item, annotated_types.Lt):
            hi = f"<{item.lt}"
    return f" range [{lo or '-inf'}..{hi or 'inf'}]" if lo or hi else ""


def _base_type(annotation: Any) -> tuple[Any, bool]:
    """The type inside `X | None`, and whether None is allowed."""
    if get_origin(annotation) == types.UnionType or str(get_origin(annotation)) == "typing.Union":
        args = [a for a in get_args(annotation) if a is not type(None)]
        return (args[0] if len(args) == 1 else annotation), True
    return annotation, False


def add_model_flags(parser: argparse.ArgumentParser, model: type[BaseModel]) -> None:
    """Add one flag per field of `model`, with its type, range and default in the help."""
    group = parser.add_argument_group("job parameters")
    for name, info in model.model_fields.items():
        base, optional = _base_type(info.annotation)
        default = info.get_default(call_default_factory=True)
        text = (info.description or "").rstrip(".")
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "dest": name}
        if base is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
            type_text = "bool"
        elif get_origin(base) is Literal:
            kwargs["choices"] = [str(a) for a in get_args(base)]
            type_text = "one of " + ", ".join(kwargs["choices"])
        else:
            type_text = getattr(base, "__name__", str(base))
            kwargs["metavar"] = type_text.upper()
        none_text = " or unset" if optional else ""
        kwargs["help"] = (
            f"{text}. ({type_text}{none_text}{_range_text(info.metadata)}; default {default})"
        ).replace("%", "%%")
        group.add_argument(flag_name(name), **kwargs)


def build_parser(job: str, description: str, model: type[BaseModel]) -> argparse.ArgumentParser:
    """The full parser of a job: the common flags, then the job's parameters."""
    parser = argparse.ArgumentParser(prog=f"python -m pipeline.{job}", description=description)
    parser.add_argument(
        "--state-dir", type=Path, required=True, help="state folder; artifacts go in DIR/artifacts/"
    )
    parser.add_argument(
        "--result-json",
        type=Path,
        required=True,
        help="where the result JSON is written (atomically)",
    )
    parser.add_argument(
        "--history", type=Path, default=None, help="draw history, JSON Lines, oldest first"
    )
    parser.add_argument(
        "--history-fingerprint", default=None, help="fingerprint of the history, stamped on outputs"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of every random choice (default 0)"
    )
    parser.add_argument("--cpu-only", action="store_true", help="use numpy even where cupy works")
    add_model_flags(parser, model)
    return parser


def _param_error(exc: ValidationError) -> str:
    """The first parameter error as `--flag: message`."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    where = flag_name(loc[0]) if loc else "parameters"
    return f"{where}: {err['msg']}"


def _on_sigterm(signum: int, frame: types.FrameType | None) -> None:
    """Turn SIGTERM into an exception so temporary files are removed on the way out."""
    del signum, frame
    raise JobTerminated


def run_job(
    info: JobInfo,
    body: Callable[[JobContext, P], PipelineResult],
    argv: Sequence[str] | None = None,
) -> int:
    """Parse flags, run `body`, write its result atomically; return the exit code."""
    job, step, params_model = info.name, info.step, cast("type[P]", info.params)
    prog = f"pipeline.{job}"
    parser = build_parser(job, info.description, params_model)
    args = vars(parser.parse_args(argv))
    common = {
        k: args.pop(k)
        for k in ("state_dir", "result_json", "history", "history_fingerprint", "seed", "cpu_only")
    }
    try:
        params = params_model.model_validate(args)
    except ValidationError as exc:
        sys.stderr.write(f"{prog}: error: {_param_error(exc)}\n")
        return EXIT_BAD_INPUT
    ctx = JobContext(
        job=job,
        step=step,
        state_dir=common["state_dir"],
        seed=common["seed"],
        history_path=common["history"],
        history_fingerprint=common["history_fingerprint"],
        array_module=get_array_module(prefer_gpu=not common["cpu_only"]),
        progress=Progress(),
        started=time.perf_counter(),
    )
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        result = body(ctx, params)
        write_model(common["result_json"], result)
    except PipelineInputError as exc:
        sys.stderr.write(f"{prog}: error: {exc}\n")
        return EXIT_BAD_INPUT
    except JobTerminated:
        sys.stderr.write(f"{prog}: terminated by SIGTERM; no partial file left\n")
        return EXIT_TERMINATED
    except Exception as exc:  # noqa: BLE001  (the job's last word: a clear line after the trace)
        traceback.print_exc()
        sys.stderr.write(f"{prog}: failed: {type(exc).__name__}: {exc}\n")
        return EXIT_FAILURE
    finally:
        signal.signal(signal.SIGTERM, previous)
    return EXIT_OK
