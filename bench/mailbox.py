"""Mailbox benchmark: the kernel's tell throughput and ask round-trip against baselines.

Baselines measured in the same run: `asyncio.Queue` (the floor for an in-process hand-off on
asyncio), a raw anyio memory object stream, and pykka (thread-based actors) when installed.
Targets (not tests): tell >= 0.5x asyncio.Queue; ask median <= 3x asyncio.Queue.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

import anyio

from actors.runtime import Actor, handles, open_actor_system
from bench.common import parser, print_table, summarize, write_results
from messages.base import Message


class Ping(Message):
    """The benchmark's message."""

    kind: Literal["bench_ping"] = "bench_ping"
    n: int = 0


class Counter(Actor):
    """Counts messages; sets the event at the expected count; echoes asks."""

    def __init__(self, expected: int, done: anyio.Event) -> None:
        super().__init__()
        self.expected = expected
        self.done = done
        self.count = 0

    @handles(Ping)
    async def on_ping(self, msg: Ping) -> int:
        self.count += 1
        if self.count == self.expected:
            self.done.set()
        return msg.n


async def kernel_tell(n: int, msgs: list[Ping]) -> float:
    done = anyio.Event()
    async with open_actor_system() as system:
        ref = await system.spawn("counter", lambda: Counter(n, done))
        start = time.perf_counter()
        for msg in msgs:
            await ref.tell(msg)
        await done.wait()
        return time.perf_counter() - start


async def kernel_ask(n: int) -> list[float]:
    samples = []
    async with open_actor_system() as system:
        ref = await system.spawn("counter", lambda: Counter(-1, anyio.Event()))
        msg = Ping(n=1)
        for _ in range(n):
            start = time.perf_counter()
            await ref.ask(msg, timeout=5)
            samples.append(time.perf_counter() - start)
    return samples


async def queue_tell(n: int, msgs: list[Ping]) -> float:
    queue: asyncio.Queue[Ping] = asyncio.Queue(maxsize=1024)
    done = asyncio.Event()

    async def consumer() -> None:
        for _ in range(n):
            await queue.get()
        done.set()

    task = asyncio.ensure_future(consumer())
    start = time.perf_counter()
    for msg in msgs:
        await queue.put(msg)
    await done.wait()
    elapsed = time.perf_counter() - start
    await task
    return elapsed


async def queue_ask(n: int) -> list[float]:
    queue: asyncio.Queue[tuple[Ping, asyncio.Future[int]]] = asyncio.Queue(maxsize=1024)

    async def server() -> None:
        while True:
            msg, reply = await queue.get()
            reply.set_result(msg.n)

    task = asyncio.ensure_future(server())
    loop = asyncio.get_running_loop()
    samples = []
    msg = Ping(n=1)
    for _ in range(n):
        start = time.perf_counter()
        reply: asyncio.Future[int] = loop.create_future()
        await queue.put((msg, reply))
        await reply
        samples.append(time.perf_counter() - start)
    task.cancel()
    return samples


async def stream_tell(n: int, msgs: list[Ping]) -> float:
    send, receive = anyio.create_memory_object_stream[Ping](1024)
    done = anyio.Event()

    async def consumer() -> None:
        async with receive:
            for _ in range(n):
                await receive.receive()
        done.set()

    async with anyio.create_task_group() as tg, send:
        tg.start_soon(consumer)
        start = time.perf_counter()
        for msg in msgs:
            await send.send(msg)
        await done.wait()
        elapsed = time.perf_counter() - start
    return elapsed


async def stream_ask(n: int) -> list[float]:
    send, receive = anyio.create_memory_object_stream[tuple[Ping, Any]](1024)
    samples: list[float] = []

    async def server() -> None:
        async with receive:
            async for msg, reply in receive:
                await reply.send(msg.n)

    async with anyio.create_task_group() as tg:
        tg.start_soon(server)
        msg = Ping(n=1)
        async with send:
            for _ in range(n):
                start = time.perf_counter()
                rs, rr = anyio.create_memory_object_stream[int](1)
                await send.send((msg, rs))
                await rr.receive()
                rs.close()
                rr.close()
                samples.append(time.perf_counter() - start)
    return samples


def pykka_figures(n: int, asks: int, msgs: list[Ping]) -> tuple[float, list[float]] | None:
    try:
        import pykka
    except ImportError:
        return None

    class PykkaCounter(pykka.ThreadingActor):
        def on_receive(self, message: Any) -> Any:
            return message.n

    ref = PykkaCounter.start()
    try:
        start = time.perf_counter()
        for msg in msgs:
            ref.tell(msg)
        ref.ask(Ping(n=0))  # FIFO: when this answers, every tell before it was handled
        tell = time.perf_counter() - start
        samples = []
        for _ in range(asks):
            t0 = time.perf_counter()
            ref.ask(Ping(n=1))
            samples.append(time.perf_counter() - t0)
    finally:
        ref.stop()
    return tell, samples


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    args = parser("mailbox", __doc__.splitlines()[0]).parse_args(argv)
    n = 20_000 if args.quick else 200_000
    asks = 2_000 if args.quick else 20_000
    msgs = [Ping(n=i) for i in range(n)]
    rows: dict[str, dict[str, float]] = {}

    def record(name: str, tell_s: float, ask_samples: list[float]) -> None:
        stats = summarize(ask_samples)
        rows[name] = {
            "tell_msgs_per_s": n / tell_s,
            "ask_median_us": stats["median_us"],
            "ask_p99_us": stats["p99_us"],
        }

    record("asyncio.Queue", anyio.run(queue_tell, n, msgs), anyio.run(queue_ask, asks))
    record("anyio stream", anyio.run(stream_tell, n, msgs), anyio.run(stream_ask, asks))
    record("kernel (asyncio)", anyio.run(kernel_tell, n, msgs), anyio.run(kernel_ask, asks))
    record(
        "kernel (trio)",
        anyio.run(kernel_tell, n, msgs, backend="trio"),
        anyio.run(kernel_ask, asks, backend="trio"),
    )
    if (pyk := pykka_figures(n, asks, msgs)) is not None:
        record("pykka (threads)", *pyk)
    base = rows["asyncio.Queue"]
    for figures in rows.values():
        figures["tell_ratio_vs_queue"] = figures["tell_msgs_per_s"] / base["tell_msgs_per_s"]
        figures["ask_ratio_vs_queue"] = figures["ask_median_us"] / base["ask_median_us"]
    print_table(
        ["implementation", "tell msg/s", "x queue", "ask median us", "ask p99 us", "x queue"],
        [
            [
                name,
                f"{f['tell_msgs_per_s']:,.0f}",
                f"{f['tell_ratio_vs_queue']:.2f}",
                f"{f['ask_median_us']:.1f}",
                f"{f['ask_p99_us']:.1f}",
                f"{f['ask_ratio_vs_queue']:.2f}",
            ]
            for name, f in rows.items()
        ],
    )
    path = write_results("mailbox", {"messages": n, "asks": asks, "rows": rows}, args.out)
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
