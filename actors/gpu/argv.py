"""Argv rendering, pure: a job's validated parameters become its command line.

Each value becomes exactly one argv element, so a parameter can never become an extra
argument, an option, or a path outside the state directory. No shell is ever involved.
"""

from __future__ import annotations

import enum
import math
import os
import re
import sys
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from actors.gpu.spec import BUILTIN_PLACEHOLDERS, JobParamsError, JobSpecError, template_names

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pydantic import BaseModel

    from actors.gpu.spec import JobSpec

__all__ = ["render_argv", "render_value"]

# Control characters: NUL truncates a C string, a newline forges a log or protocol line.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Jobs run without a shell, but a job may hand a value to one; these only mean something there.
_SHELL_META = re.compile(r"[;&|`$<>\\]")


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


def render_value(job: str, param: str, value: object, state_root: Path) -> str:
    """One validated parameter value as the one argv element it becomes (JobParamsError)."""
    return _Renderer(job, state_root.resolve()).render(param, value)


def render_argv(
    spec: JobSpec,
    validated: BaseModel,
    *,
    state_dir: Path,
    workdir: Path,
    result_path: Path,
    history_path: Path | None = None,
    seed: int | None = None,
    history_fingerprint: str | None = None,
    job_state_dir: Path | None = None,
) -> list[str]:
    """The job's argv for `validated` parameters: one element per value, no shell.

    `history_path`, `seed` and `history_fingerprint` come from the dispatcher, not the
    request; each is appended with the job's flag for it (`history_flag`, `seed_flag`,
    `fingerprint_flag`); a job without the flag does not get it. `job_state_dir` replaces
    `{state_dir}` for a shard (its own folder inside the state directory).

    Raises:
        JobParamsError: a value is a string starting with '-' or holding NUL/newline, a
            path leaving the state dir, or a value the command line requires is unset.
        JobSpecError: the entry itself is wrong (a placeholder nobody provides...).
    """
    name = spec.name
    root = state_dir.resolve()
    renderer = _Renderer(name, root)
    values: dict[str, object] = dict(validated)
    rendered: dict[str, str | None] = {
        key: None if value is None else renderer.render(key, value) for key, value in values.items()
    }
    builtins: dict[str, str | None] = {
        "python": sys.executable,
        "state_dir": str(root if job_state_dir is None else job_state_dir.resolve()),
        "result_json": os.path.abspath(result_path),
        "history": None if history_path is None else os.path.abspath(history_path),
        "workdir": str(workdir),
    }
    clash = BUILTIN_PLACEHOLDERS & values.keys()
    if clash:
        msg = f"job {name!r}: parameter names {sorted(clash)} clash with builtin placeholders"
        raise JobSpecError(msg)
    lookup = {**builtins, **rendered}
    argv: list[str] = []
    used: set[str] = set()
    for element in spec.argv:
        names = template_names(element)
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
            raise JobParamsError(name, "seed", "a seed must be an integer >= 0", f"got {seed!r}")
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
