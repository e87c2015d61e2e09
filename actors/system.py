"""The daemon and its command line: `python -m actors.system`.

The system itself is assembled in `actors.assembly` (`open_system`, re-exported here); the CLI
runs it until SIGINT/SIGTERM (or, with `--once`, until everything pending is processed), then
shuts down in phases (intake first, the LLM worker last) and exits 0 — or 1 when an actor went
past its restart intensity, 2 on a configuration error (or a state directory another process
holds), 3 when `--once` left something that needs a person (docs/operations.md).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import importlib.util
import signal
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import structlog

from actors import attention, statelock, status
from actors.assembly import (
    DEFAULT_ACTORS,
    HEARTBEAT_S,
    SYSTEM,
    ActorFactory,
    LifecycleActor,
    WatcherSystem,
    open_system,
)
from actors.banner import banner
from actors.cliutil import EXIT_ATTENTION, EXIT_USAGE, settings_or_exit
from actors.config import STATE_DIR_ENV, Settings
from actors.console import write_line
from actors.foreground import dry_run, hand_over, requested, run_foreground
from actors.gpu.plugins import build_registry
from actors.logconfig import close_logging, configure_logging
from actors.logs.cli import main as logs_main
from actors.paths import StatePaths
from actors.services import SPAWN_ORDER
from messages.enums import LearningLoopScope
from messages.errors import ConfigError, WatcherError
from messages.lifecycle import Shutdown

if TYPE_CHECKING:
    from actors.runtime import ActorSystem

__all__ = [
    "DEFAULT_ACTORS",
    "HEARTBEAT_S",
    "SYSTEM",
    "ActorFactory",
    "LifecycleActor",
    "WatcherSystem",
    "build_parser",
    "main",
    "open_system",
    "run_daemon",
]
"""The assembly's names stay importable from here (tests and embedders used them here)."""

log = structlog.get_logger("system")


async def run_daemon(settings: Settings, *, once: bool, config_path: Path | None = None) -> int:
    """Run until a signal (or, with `once`, until idle); return the exit code: 0, 1 (an actor
    past its restart intensity), or with `once` 3 when something needs a person."""
    audit_path = StatePaths(settings.state_dir).audit
    start = await anyio.to_thread.run_sync(attention.audit_size, audit_path)
    async with open_system(settings, once=once, config_path=config_path) as system:
        if once:
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_stop_on_signal, system.kernel, scope)
                    await system.wait_idle()
                    tg.cancel_scope.cancel()
        else:
            write_line(banner(settings))
            async with anyio.create_task_group() as tg:
                tg.start_soon(_stop_on_signal, system.kernel, None)
                await system.kernel.wait_stop_requested()
                tg.cancel_scope.cancel()
        failed = system.kernel.failure is not None
    if failed:
        return 1
    if once:
        lines = await anyio.to_thread.run_sync(attention.needs_a_person, audit_path, start)
        if lines:
            sys.stderr.write("".join(f"needs a person: {line}\n" for line in lines))
            return EXIT_ATTENTION
    return 0


async def _stop_on_signal(kernel: ActorSystem, scope: anyio.CancelScope | None) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            name = signal.Signals(signum).name
            log.info("system.signal", signal=name)
            await kernel.ref(SYSTEM).tell(Shutdown(reason=f"signal {name}"))
            if scope is not None:
                scope.cancel()
            return


def build_parser() -> argparse.ArgumentParser:
    """The command line of `python -m actors.system`."""
    parser = argparse.ArgumentParser(
        prog="python -m actors.system",
        description=(
            "Watcher: the autonomous control loop. Without a subcommand, runs the daemon until "
            "SIGINT/SIGTERM."
        ),
    )
    add_global_options(parser)
    parser.add_argument(
        "--once", action="store_true", help="process what is pending (inbox and spool), then exit"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="console: -v every info line, -vv debug too (default: warnings and one line per"
        " draw file and request; the JSON log file always gets everything)",
    )
    parser.add_argument(
        "--backend",
        choices=["asyncio", "trio"],
        default="asyncio",
        help="event loop to run on (default: asyncio)",
    )
    parser.add_argument(
        "--dispatch-selfplay",
        action="store_true",
        help="run selfplay now, in the foreground, with progress bars",
    )
    parser.add_argument(
        "--episodes",
        type=int,
        metavar="N",
        help="with --dispatch-selfplay: episodes (1-50, default 5)",
    )
    parser.add_argument(
        "--dispatch-learning-loop",
        nargs="?",
        const="steps_3_5_6",
        choices=[scope.value for scope in LearningLoopScope],
        metavar="SCOPE",
        help="run the learning loop now: steps_3_5_6 (default), steps_5_6 or step_6_only",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="plan and print (the dispatch asked for, else every pending "
        "request); move no file, start no job, call no LLM",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("run", help="run the daemon (the default)")
    logs = sub.add_parser(
        "logs", help="show the logs or the audit trail (see: logs --help)", add_help=False
    )
    logs.add_argument("logs_args", nargs=argparse.REMAINDER)
    status.register(sub)
    for module in command_modules():
        module.register(sub)
    _globals_after_subcommands(parser)
    return parser


def add_global_options(parser: argparse.ArgumentParser, *, after: bool = False) -> None:
    """--config, --state-dir, --log-level: on the top level, and (`after`) on every subcommand,
    where they default to "not given" so they override the top level's only when written."""
    extra: dict[str, Any] = {"default": argparse.SUPPRESS} if after else {}
    parser.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help="TOML configuration file (default: the embedded defaults)",
        **extra,
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help=f"state directory (default: ${STATE_DIR_ENV}, else ./var)",
        **extra,
    )
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="log level of the JSON log file (default: from the config)",
        **extra,
    )


def _globals_after_subcommands(parser: argparse.ArgumentParser) -> None:
    """Accept the global options after any subcommand too (`status --state-dir X`)."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for name, child in action.choices.items():
            if name == "logs":
                continue  # its own parser (actors.logs) takes them
            known = {option for a in child._actions for option in a.option_strings}
            if not known & {"--config", "--state-dir", "--log-level"}:
                add_global_options(child, after=True)
            _globals_after_subcommands(child)


_VALUED = frozenset({"--config", "--state-dir", "--log-level", "--backend", "--episodes"})


def _split_logs(argv: list[str]) -> tuple[list[str], list[str]] | None:
    """(global options, the rest) when the subcommand is `logs`, else None: `logs` hands its
    arguments, `--help` included, to `python -m actors.logs`."""
    index = 0
    while index < len(argv):
        token = argv[index]
        if token == "--":
            return None
        if token.startswith("-"):
            index += 2 if token in _VALUED else 1
            continue
        return (argv[:index], argv[index + 1 :]) if token == "logs" else None
    return None


def command_modules() -> list[Any]:
    """The `cli` modules of the actor packages: each adds its subcommands via `register`.

    A module `actors/<actor>/cli.py` defines `register(subparsers)`; each subcommand it adds
    sets `handler=fn` with `fn(args, settings) -> exit code`.
    """
    found = []
    # `web` is no actor, but its `report` command reads the same state directory.
    for package in sorted((*SPAWN_ORDER, "web")):
        name = f"actors.{package}.cli"
        if importlib.util.find_spec(name) is not None:
            found.append(importlib.import_module(name))
    return found


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m actors.system` (and the `watcher` script)."""
    argv = sys.argv[1:] if argv is None else argv
    split = _split_logs(argv)
    if split is not None:
        top = build_parser().parse_args(split[0])
        extra = ["--state-dir", str(top.state_dir)] if top.state_dir else []
        return logs_main([*extra, *split[1]], prog="python -m actors.system logs")
    args = build_parser().parse_args(argv)
    try:
        settings = settings_or_exit(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    if hasattr(args, "handler"):
        return int(args.handler(args, settings))
    request = requested(args)
    try:
        # Start-up check: [jobs.*], entry points, [watcher.step_jobs], [watcher.params].
        build_registry(settings)
    except ConfigError as exc:
        sys.stderr.write(f"watcher: configuration error:\n{exc}\n")
        return EXIT_USAGE
    if args.dry_run:
        configure_logging(None, settings.logging.level, console=False)
        return dry_run(settings, request)
    paths = StatePaths(settings.state_dir).ensure()
    role = "foreground dispatch" if request is not None else "daemon"
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(statelock.hold(paths.root, role))
        except statelock.StateDirLockedError as exc:
            if request is not None:
                return hand_over(paths, request, exc)
            sys.stderr.write(f"watcher: {exc}\n")
            return EXIT_USAGE
        configure_logging(paths.log_file, settings.logging.level, verbosity=args.verbose)
        # A long-running daemon allocates many short-lived messages: with the default gen-0
        # threshold (700) the collector ran ~1/3 of a 100k-draw ingest (bench/ingest.py).
        gc.set_threshold(50_000, 20, 20)
        try:
            if request is not None:
                return anyio.run(partial(run_foreground, settings, request), backend=args.backend)
            daemon = partial(run_daemon, settings, once=args.once, config_path=args.config)
            return anyio.run(daemon, backend=args.backend)
        except WatcherError as exc:
            log.critical("system.error", error=str(exc))
            sys.stderr.write(f"watcher: {exc}\n")
            return 1
        finally:
            close_logging()
    return EXIT_USAGE  # not reached: the block returns


if __name__ == "__main__":
    raise SystemExit(main())
