"""How long run_process takes to start a trivial CPU job, against a bare subprocess.Popen.

Three figures per backend (asyncio, trio), each against its Popen baseline in the same run,
the samples interleaved so both see the same machine state:

- started: call → the child's PID is known (run_process's `on_started` / Popen returning);
- marker:  call → the child's first stdout line (a progress event / `readline()`);
- full:    call → the child has exited and been reaped (run_process returns / `communicate()`).

Target (issue 5): ≤ 20 ms to start a CPU job. `python -m bench.dispatch [--quick]`.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import structlog

from actors.gpu.runner import ProgressEvent, run_process
from bench.common import parser, print_table, summarize, write_results

# -S: no site import, so the child's own start-up (~10 ms of Python) weighs less in "marker".
_MARKER = 'import sys; sys.stdout.write(\'{"event": "progress", "done": 0, "total": 1}\\n\')'
COMMAND = [sys.executable, "-S", "-c", _MARKER + "; sys.stdout.flush()"]
TARGET_START_MS = 20.0


def _baseline(cwd: Path, env: dict[str, str]) -> tuple[float, float, float]:
    """One bare Popen run: (started, marker, full) in seconds."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        COMMAND,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    started = time.perf_counter() - t0
    assert proc.stdout is not None
    proc.stdout.readline()
    marker = time.perf_counter() - t0
    proc.communicate()
    full = time.perf_counter() - t0
    return started, marker, full


async def _runner(cwd: Path, env: dict[str, str]) -> tuple[float, float, float]:
    """One run_process run: (started, marker, full) in seconds."""
    marks: dict[str, float] = {}
    t0 = time.perf_counter()

    async def on_started(pid: int) -> None:
        marks["started"] = time.perf_counter() - t0

    async def on_progress(event: ProgressEvent) -> None:
        marks.setdefault("marker", time.perf_counter() - t0)

    outcome = await run_process(
        COMMAND,
        cwd=cwd,
        env=env,
        timeout_s=30,
        on_started=on_started,
        on_progress=on_progress,
    )
    full = time.perf_counter() - t0
    if outcome.status != "completed" or outcome.progress_events != 1:
        msg = f"benchmark job did not run as expected: {outcome}"
        raise RuntimeError(msg)
    return marks["started"], marks["marker"], full


async def _measure(n: int, cwd: Path, env: dict[str, str]) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {
        f"{who}_{what}": [] for who in ("runner", "popen") for what in ("started", "marker", "full")
    }
    for i in range(n + 3):
        runner = await _runner(cwd, env)
        popen = _baseline(cwd, env)
        if i < 3:  # warm-up: imports, page cache
            continue
        for what, r, p in zip(("started", "marker", "full"), runner, popen, strict=True):
            samples[f"runner_{what}"].append(r)
            samples[f"popen_{what}"].append(p)
    return samples


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table and write bench/results/dispatch.json."""
    args = parser("dispatch", __doc__.splitlines()[0] if __doc__ else "").parse_args(argv)
    # The runner logs each start at debug level; printing 1,200 lines would time the terminal.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    n = 20 if args.quick else 200
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    figures: dict[str, Any] = {"n": n, "command": COMMAND, "target_start_ms": TARGET_START_MS}
    rows: list[list[Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("asyncio", "trio"):
            samples = anyio.run(_measure, n, Path(tmp), env, backend=backend)
            per_backend: dict[str, Any] = {}
            for what in ("started", "marker", "full"):
                runner = summarize(samples[f"runner_{what}"])
                popen = summarize(samples[f"popen_{what}"])
                ratio = runner["median_us"] / popen["median_us"]
                per_backend[what] = {"run_process": runner, "popen": popen, "ratio": ratio}
                rows.append(
                    [
                        backend,
                        what,
                        f"{runner['median_us'] / 1e3:.2f}",
                        f"{runner['p99_us'] / 1e3:.2f}",
                        f"{popen['median_us'] / 1e3:.2f}",
                        f"{popen['p99_us'] / 1e3:.2f}",
                        f"{ratio:.2f}x",
                    ]
                )
            start_ms = per_backend["started"]["run_process"]["median_us"] / 1e3
            per_backend["meets_target"] = start_ms <= TARGET_START_MS
            figures[backend] = per_backend
    print_table(
        [
            "backend",
            "to",
            "run_process med ms",
            "p99 ms",
            "Popen med ms",
            "p99 ms",
            "ratio (median)",
        ],
        rows,
    )
    path = write_results("dispatch", figures, args.out)
    print(f"target: start <= {TARGET_START_MS} ms; results in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
