"""The console's costs: page and API latency over a big history, the chart's payload, SSE
latency from an audit record to a client, and the loop's draw → request time with the
dashboard off vs on (with a client connected that re-fetches on every event, as a page does),
draws 0.3 s apart so each page refresh ends before the next draw, as at production rates.

In-process, the real system on a seeded state directory (N draws of Chapter 13 figures and
scores, a decision every 50 draws), requests over real loopback HTTP from a worker thread.
The on/off comparison alternates off, on, off, on in the same run, so drift hits both.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
import urllib.request
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from actors.services import WATCHER
from actors.store import connect
from actors.testing import harness_settings, open_test_system, probe
from bench.common import parser, print_table, summarize, write_results
from bench.loop import ClosingWatcher

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from actors.testing import Harness


def seed(state: Path, draws: int) -> None:
    """`draws` draws with figures and scores, a decision every 50 draws (blocking)."""
    conn = connect(state / "state.db")
    try:
        conn.execute("BEGIN")
        diagnostics, scores, decisions = [], [], []
        for i in range(draws):
            hit_rate = 0.5 + 0.4 * ((i // 500) % 2) - 0.2 * ((i % 97) / 97)
            body = {
                "draw_id": f"s{i}",
                "draw_index": i,
                "hit_rate": hit_rate,
                "chance_rate": 0.01,
                "ci_low": max(0.0, hit_rate - 0.2),
                "ci_high": min(1.0, hit_rate + 0.2),
                "brier": 0.2,
                "ece": 0.05,
                "statistic": (i % 500) / 50,
                "threshold": 8.0,
            }
            stamp = f"2026-01-01T00:00:00.{i:06d}+00:00"
            diagnostics.append((f"s{i}", json.dumps(body), stamp))
            scores.append((f"s{i}", i % 2))
            if i % 50 == 0:
                decisions.append((f"dec-{i}", i, "refresh" if i % 100 else "regime_shift"))
        conn.executemany(
            "INSERT INTO trigger_diagnostics (draw_id, schema_version, body, recorded_at)"
            " VALUES (?, 1, ?, ?)",
            diagnostics,
        )
        conn.executemany(
            "INSERT INTO trigger_scores (stream, draw_id, status, hit, body, scored_at)"
            " VALUES ('real', ?, 'scored', ?, '{}', '')",
            scores,
        )
        conn.executemany(
            "INSERT INTO trigger_decisions (decision_id, draw_index, correlation_id, rule,"
            " action, evidence, outcome, reasons, status, created_at) VALUES"
            " (?, ?, 'c', ?, 'learning_loop', '{}', 'ACCEPT', '[]', 'filed', 'then')",
            decisions,
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


def fetch(url: str) -> tuple[float, int]:
    """GET: seconds and body bytes (blocking)."""
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as reply:
        size = len(reply.read())
    return time.perf_counter() - start, size


@asynccontextmanager
async def system(state: Path, *, web: bool, **sections: Any) -> AsyncIterator[tuple[Harness, str]]:
    """The real system with the console on a free port (or off); yields (harness, URL)."""
    settings = harness_settings(state, web={"enabled": web, "bind": "127.0.0.1:0"}, **sections)
    arrivals: list[float] = []
    fakes = {WATCHER: (probe()[0], lambda _s: ClosingWatcher(arrivals, [anyio.Event()]))}
    async with open_test_system(state, fakes=fakes, settings=settings, once=False) as h:
        url = ""
        if web:
            url = str(json.loads((state / "web.json").read_text())["url"]).rstrip("/")
        yield h, url


async def latencies(state: Path, samples: int) -> dict[str, Any]:
    """Median and p99 per page/API, the cold and warm chart payload, and SSE latency."""
    out: dict[str, Any] = {}
    async with system(state, web=True) as (h, url):
        cold, size = await anyio.to_thread.run_sync(fetch, url + "/api/loop")
        out["api_loop_cold_ms"] = cold * 1e3
        out["chart_payload_bytes"] = size
        paths = {
            "overview": "/",
            "loop_page": "/loop",
            "pending": "/pending",
            "requests": "/requests",
            "api_loop": "/api/loop",
            "api_loop_zoom_1000": "/api/loop?lo=40000&hi=41000",
            "api_overview": "/api/overview",
            "metrics": "/metrics",
        }
        for name, path in paths.items():
            times = []
            for _ in range(samples):
                seconds, _size = await anyio.to_thread.run_sync(fetch, url + path)
                times.append(seconds)
            out[name] = summarize(times)
        out["sse"] = summarize(await sse_latency(h, url, samples))
    return out


async def sse_latency(h: Harness, url: str, samples: int) -> list[float]:
    """Audit record appended → its SSE event read by a client (another thread)."""
    got: dict[str, float] = {}
    ready = threading.Event()
    done = threading.Event()

    def listen() -> None:
        with urllib.request.urlopen(url + "/events", timeout=60) as stream:
            for raw in stream:
                line = raw.decode("utf-8")
                if line.startswith(": connected"):
                    ready.set()
                if line.startswith("data:") and "bench-sse-" in line:
                    ident = json.loads(line[5:])["entity_id"]
                    got[ident] = time.perf_counter()
                    if len(got) >= samples:
                        done.set()
                        return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    await anyio.to_thread.run_sync(ready.wait, 30)
    sent: dict[str, float] = {}
    for n in range(samples):
        ident = f"bench-sse-{n}"
        sent[ident] = time.perf_counter()
        await h.services.audit(
            actor="bench", entity="system", entity_id=ident, event="probed", correlation_id=ident
        )
        with anyio.fail_after(30):
            while ident not in got:  # noqa: ASYNC110 (the client is another thread)
                await anyio.sleep(0.001)
    await anyio.to_thread.run_sync(done.wait, 30)
    return [got[k] - sent[k] for k in sent]


async def draw_to_request(state: Path, count: int, *, web: bool, day: str) -> list[float]:
    """Draw renamed into inbox/ → the request filed (the audit's `request/filed`), web on/off.

    With the dashboard on, a client follows /events and re-fetches the pending fragment and
    the chart data on every event, as an open page does.
    """
    trigger = {"request_every_n_draws": 1, "request_type": "learning_loop"}
    samples: list[float] = []
    async with system(state, web=web, trigger=trigger) as (h, url):
        stop = threading.Event()
        if web:
            threading.Thread(target=browser_like, args=(url, stop), daemon=True).start()
        await anyio.sleep(0.5)
        filed = h.services.paths.spool
        for n in range(count):
            draw = {
                "draw_id": f"{day}-{n}",
                "timestamp": f"{day}T00:{n // 60:02d}:{n % 60:02d}Z",
                "value": n % 1000,
            }
            before = {p.name for p in (filed / "new").iterdir()}
            tmp = state / f".d{n}.json"
            tmp.write_text(json.dumps(draw))
            start = time.perf_counter()
            tmp.rename(state / "inbox" / f"{day}-{n}.json")
            with anyio.fail_after(30):
                # The request's arrival is a file in the spool, seen from outside the actors.
                while {p.name for p in (filed / "new").iterdir()} <= before:  # noqa: ASYNC110
                    await anyio.sleep(0.0005)
            samples.append(time.perf_counter() - start)
            await h.system.wait_idle()
            # Draws come minutes apart in production; 0.3 s lets the page's refresh after this
            # draw (150 ms debounce + its fetches) finish, in both modes alike.
            await anyio.sleep(0.3)
        stop.set()
    return samples


def browser_like(url: str, stop: threading.Event) -> None:
    """Two open pages, Pending and Loop, as app.js runs them: follow /events; 150 ms after
    the last event of a burst, re-fetch the pending fragment and the chart data (blocking)."""
    pending = threading.Event()

    def refresher() -> None:
        while not stop.is_set():
            if pending.wait(0.5):
                time.sleep(0.15)  # app.js debounces a burst of records into one refresh
                pending.clear()
                fetch(url + "/pending?fragment=1")
                fetch(url + "/api/loop?points=1200")

    threading.Thread(target=refresher, daemon=True).start()
    with urllib.request.urlopen(url + "/events", timeout=120) as stream:
        for raw in stream:
            if stop.is_set():
                return
            if raw.startswith(b"data:"):
                pending.set()


def main(argv: list[str] | None = None) -> int:
    """Run the console benchmark and print the table."""
    p = parser("web", __doc__.splitlines()[0])
    p.add_argument(
        "--draws",
        type=int,
        metavar="N",
        help="draws in the seeded store (default 100,000; 5,000 quick)",
    )
    args = p.parse_args(argv)
    draws = args.draws or (5_000 if args.quick else 100_000)
    samples = 10 if args.quick else 50
    per_mode = 10 if args.quick else 60
    figures: dict[str, Any] = {"draws_in_store": draws, "samples": samples}
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "big"
        state.mkdir()
        seed(state, draws)
        figures.update(anyio.run(latencies, state, samples))
    off: list[float] = []
    on: list[float] = []
    for rnd in range(2):
        for web, into in ((False, off), (True, on)):
            with tempfile.TemporaryDirectory() as tmp:
                into += anyio.run(
                    partial(draw_to_request, web=web, day=f"2026-03-0{rnd + 1}"),
                    Path(tmp),
                    per_mode,
                )
    figures["draw_to_request_web_off"] = summarize(off)
    figures["draw_to_request_web_on"] = summarize(on)
    figures["draw_to_request_on_off_ratio"] = statistics.median(on) / statistics.median(off)
    path = write_results("web", figures, args.out)
    rows = [
        [name, f"{v['median_us'] / 1e3:.2f}", f"{v['p99_us'] / 1e3:.2f}", int(v["n"])]
        for name, v in figures.items()
        if isinstance(v, dict)
    ]
    print_table(["what", "median ms", "p99 ms", "n"], rows)
    print(
        f"\n{draws} draws in the store; chart payload {figures['chart_payload_bytes']} bytes"
        f" (cold /api/loop {figures['api_loop_cold_ms']:.0f} ms); draw -> request with the"
        f" dashboard on / off: {figures['draw_to_request_on_off_ratio']:.3f}\nwrote {path}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
