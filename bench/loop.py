"""Reaction times of the loop: a request file renamed into new/ → its job process started, and a
draw file renamed into inbox/ → Chapter 13's request filed in the spool.

In-process, with the real ingestion, trigger, watcher and GPU dispatch watching their folders,
the heuristic advisor, and the `noop` job. Baseline in the same run: a bare watchfiles watcher
seeing a rename in the same folder (the inotify floor the actors sit on).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import watchfiles

from actors.audit import read_audit
from actors.runtime import Actor, handles
from actors.services import LLM, TRIGGER, WATCHER
from actors.testing import (
    PROCEED,
    harness_settings,
    open_test_system,
    probe,
    scripted_llm,
)
from bench.common import parser, print_table, summarize, write_results
from messages.enums import LearningLoopScope
from messages.requests import LearningLoop, RequestFiled, RequestFinished


async def inotify_floor(folder: Path, count: int) -> list[float]:
    """Rename → watchfiles event, for a bare watcher (the floor)."""
    folder.mkdir(parents=True, exist_ok=True)
    samples: list[float] = []
    seen = anyio.Event()

    async def watch() -> None:
        nonlocal seen
        async for _changes in watchfiles.awatch(folder, step=1, debounce=10):
            seen.set()
            seen = anyio.Event()

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        await anyio.sleep(0.3)
        for n in range(count):
            waiter = seen
            tmp = folder.parent / f".f{n}"
            tmp.write_text("x")
            start = time.perf_counter()
            tmp.rename(folder / f"f{n}")
            await waiter.wait()
            samples.append(time.perf_counter() - start)
        tg.cancel_scope.cancel()
    return samples


async def request_to_dispatch(state: Path, count: int) -> list[float]:
    """Request renamed into new/ → its job's `job_started` audit record."""
    settings = harness_settings(state, watcher={"step_jobs": {"6": "noop"}})
    fakes = {LLM: scripted_llm(default=PROCEED), TRIGGER: probe()}
    samples: list[float] = []
    async with open_test_system(state, fakes=fakes, settings=settings, once=False) as h:
        await anyio.sleep(0.5)
        for n in range(count):
            request = LearningLoop(request_id=f"bench-{n}", scope=LearningLoopScope.STEP_6_ONLY)
            tmp = state / "watcher_requests" / "tmp" / f"{request.request_id}.json"
            tmp.write_text(request.model_dump_json())
            renamed = time.time()
            tmp.rename(state / "watcher_requests" / "new" / tmp.name)
            await h.system.wait_idle()
            done = anyio.Path(state / "watcher_requests" / "done" / tmp.name)
            with anyio.fail_after(60):
                # Polling: the request's end is a file move, seen from outside the actors.
                while not await done.exists():  # noqa: ASYNC110
                    await anyio.sleep(0.01)
            started = next(
                r
                for r in read_audit(state / "audit.jsonl")
                if r.event == "job_started" and r.correlation_id == request.correlation_id
            )
            samples.append(started.recorded_at.timestamp() - renamed)
    return samples


class ClosingWatcher(Actor):
    """Stands in for the watcher: notes when each request arrives and closes it at once.

    (Chapter 13 files no second request of a kind while one is open.)
    """

    def __init__(self, arrivals: list[float], arrived: list[anyio.Event]) -> None:
        super().__init__()
        self.arrivals = arrivals
        self.arrived = arrived

    @handles(RequestFiled)
    async def on_request_filed(self, msg: RequestFiled) -> None:
        self.arrivals.append(time.perf_counter())
        self.arrived[0].set()
        await self.system.ref(TRIGGER).tell(
            RequestFinished.caused_by(
                msg, request_id=msg.request_id, request_type="learning_loop", status="failed"
            )
        )


async def draw_to_request(state: Path, count: int, day: str = "2026-01-01") -> list[float]:
    """Draw file renamed into inbox/ → RequestFiled at the watcher (a stand-in here)."""
    settings = harness_settings(
        state, trigger={"request_every_n_draws": 1, "request_type": "learning_loop"}
    )
    arrivals: list[float] = []
    arrived = [anyio.Event()]
    fakes = {WATCHER: (probe()[0], lambda _s: ClosingWatcher(arrivals, arrived))}
    samples: list[float] = []
    async with open_test_system(state, fakes=fakes, settings=settings, once=False) as h:
        await anyio.sleep(0.5)
        for n in range(count):
            draw = {
                "draw_id": f"b{n}",
                "timestamp": f"{day}T00:{n // 60:02d}:{n % 60:02d}Z",
                "value": n % 1000,
            }
            tmp = state / f".d{n}.json"
            tmp.write_text(json.dumps(draw))
            arrived[0] = anyio.Event()
            start = time.perf_counter()
            tmp.rename(state / "inbox" / f"d{n}.json")
            with anyio.fail_after(30):
                await arrived[0].wait()
            samples.append(arrivals[-1] - start)
            await h.system.wait_idle()
    return samples


def _decisions_since(state: Path, since: float) -> list[float]:
    """When Chapter 13 recorded decisions on a rule, after `since` (wall clock)."""
    return [
        r.recorded_at.timestamp()
        for r in read_audit(state / "audit.jsonl")
        if r.actor == "trigger"
        and r.entity == "decision"
        and r.detail.get("rule")
        and r.recorded_at.timestamp() >= since
    ]


async def draw_to_decision(state: Path, count: int, model: str) -> list[float]:
    """Draw renamed into inbox/ → Chapter 13's decision recorded, with `model` advising.

    Rule mode, before any model exists: every draw fires n_draws, so every draw waits for a
    proposal from the LLM (Bundle 13 → Decide on the chapter_13 grammar) before the
    acceptance rules decide. The watcher is a stand-in that closes requests at once.
    """
    settings = harness_settings(
        state,
        trigger={"retrain_after_n_draws": 1, "cooldown_draws": 0, "cooldown_s": 0},
        llm={"model": model},
    )
    arrivals: list[float] = []
    fakes = {WATCHER: (probe()[0], lambda _s: ClosingWatcher(arrivals, [anyio.Event()]))}
    samples: list[float] = []
    async with open_test_system(state, fakes=fakes, settings=settings, once=False) as h:
        await anyio.sleep(0.5)
        for n in range(count):
            draw = {
                "draw_id": f"g{n}",
                "timestamp": f"2026-02-01T00:{n // 60:02d}:{n % 60:02d}Z",
                "value": n % 1000,
            }
            tmp = state / f".g{n}.json"
            tmp.write_text(json.dumps(draw))
            renamed = time.time()
            tmp.rename(state / "inbox" / f"g{n}.json")
            with anyio.fail_after(300):
                # Polling: the decision is an audit record; nothing in-process to wait on here.
                while not (decided := _decisions_since(state, renamed)):  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            samples.append(decided[0] - renamed)
            await h.system.wait_idle()
    return samples


def main(argv: list[str] | None = None) -> int:
    """Run the reaction-time benchmarks and print the table."""
    p = parser("loop", __doc__.splitlines()[0])
    p.add_argument(
        "--llm",
        metavar="MODEL",
        help="also time draw → Chapter 13 decision with this model advising "
        "(e.g. gemma3-270m), reported as its own row",
    )
    args = p.parse_args(argv)
    count = 10 if args.quick else 200
    dispatch_count = 5 if args.quick else 50
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        floor = anyio.run(inotify_floor, root / "floor" / "in", count)
        to_request = anyio.run(draw_to_request, root / "d2r", count)
        to_dispatch = anyio.run(request_to_dispatch, root / "r2d", dispatch_count)
        with_llm = (
            anyio.run(draw_to_decision, root / "llm", 3 if args.quick else 10, args.llm)
            if args.llm
            else None
        )
    rows: dict[str, Any] = {
        "inotify floor (rename → event)": summarize(floor),
        "draw → request filed": summarize(to_request),
        "request → job started": summarize(to_dispatch),
    }
    if with_llm:
        rows[f"draw → Chapter 13 decision ({args.llm} advising)"] = summarize(with_llm)
    base = rows["inotify floor (rename → event)"]["median_us"]
    print_table(
        ["path", "median ms", "p99 ms", "x floor", "n"],
        [
            [
                name,
                f"{f['median_us'] / 1000:.2f}",
                f"{f['p99_us'] / 1000:.2f}",
                f"{f['median_us'] / base:.1f}",
                int(f["n"]),
            ]
            for name, f in rows.items()
        ],
    )
    path = write_results("loop", rows, args.out)
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
