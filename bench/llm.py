"""LLM worker benchmark: `python -m bench.llm [--quick] [--model PATH|gemma3-270m] [--threads N]`.

Measures, with the packaged gemma3-270m by default: worker start + load time, prompt tok/s,
generation tok/s unconstrained and under each grammar (and the grammar overhead ratio, target
<= 2x), release (stop) time and freed memory, reload time, and decision latency per grammar.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import anyio

from actors.llm.client import WorkerClient
from actors.llm.decide import decide
from actors.llm.heuristic import heuristic_decision
from actors.llm.models import resolve_model
from bench.common import parser, print_table, summarize, write_results
from grammars import GRAMMAR_NAMES, grammar_max_tokens

SYSTEM = "You are a careful reviewer. Answer with one JSON object only. Keep text fields short."
TASK = (
    "Step 3 of the learning loop finished. Metrics: accuracy 0.93 (min 0.90), loss 0.21 "
    "(max 0.30), hit rate 0.12 over the last 40 draws (was 0.31), 37 of 100000 seeds survived "
    "the sieve with best score 0.82, learning_rate 0.01. Judge the result and answer."
)
LONG_PROMPT = " ".join([TASK] * 8)  # ~500 tokens: enough to time prompt evaluation


async def _generate_tps(
    client: WorkerClient, grammar: str | None, prompt_s: float, runs: int, cap: int | None
) -> tuple[float, int]:
    """Generation tokens per second (prompt time removed) and mean tokens out."""
    rates, outs = [], []
    for seed in range(runs):
        max_tokens = grammar_max_tokens(grammar) if grammar else 200
        if cap is not None:
            max_tokens = min(max_tokens, cap)
        result = await client.generate(
            TASK, grammar, max_tokens=max_tokens, temperature=0.7, seed=seed, system=SYSTEM
        )
        gen_s = max(result.seconds - prompt_s, 1e-9)
        rates.append(result.tokens_out / gen_s)
        outs.append(result.tokens_out)
    return sum(rates) / len(rates), round(sum(outs) / len(outs))


async def run(model: Path, threads: int, quick: bool) -> dict[str, Any]:
    """All measurements; returns the figures written to bench/results/llm.json."""
    runs = 1 if quick else 3
    # --quick: a smoke test of seconds, so answers are cut at 48 tokens and only one decision
    # is timed; its figures are not the report's.
    cap = 48 if quick else None
    decided = ("json_generic",) if quick else GRAMMAR_NAMES
    figures: dict[str, Any] = {
        "model": str(model),
        "threads": threads,
        "runs": runs,
        "quick": quick,
    }

    started = time.perf_counter()
    client = await WorkerClient.start(model, n_ctx=4096, n_threads=threads)
    figures["start_and_load_s"] = time.perf_counter() - started
    figures["load_in_worker_s"] = client.loaded.seconds if client.loaded else None

    # Prompt evaluation: one output token on the long prompt, and on the short task prompt.
    long = await client.generate(LONG_PROMPT, None, max_tokens=1, system=SYSTEM)
    figures["prompt_tokens"] = long.tokens_in
    figures["prompt_tok_per_s"] = long.tokens_in / long.seconds
    short = await client.generate(TASK, None, max_tokens=1, system=SYSTEM)
    prompt_s = short.seconds

    rows: list[list[Any]] = []
    free_tps, free_out = await _generate_tps(client, None, prompt_s, runs, cap)
    figures["generation"] = {"unconstrained": {"tok_per_s": free_tps, "tokens_out": free_out}}
    rows.append(["unconstrained", f"{free_tps:.1f}", free_out, "1.00"])
    for name in GRAMMAR_NAMES:
        tps, out = await _generate_tps(client, name, prompt_s, runs, cap)
        ratio = free_tps / tps
        figures["generation"][name] = {"tok_per_s": tps, "tokens_out": out, "overhead": ratio}
        rows.append([name, f"{tps:.1f}", out, f"{ratio:.2f}"])

    latencies: dict[str, Any] = {}
    for name in decided:

        async def generate(prompt: str, grammar_name: str) -> str:
            result = await client.generate(
                prompt, grammar_name, max_tokens=grammar_max_tokens(grammar_name), system=SYSTEM
            )
            return result.text

        samples, sources = [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            outcome = await decide(
                TASK,
                name,
                generate=generate,
                heuristic=lambda name=name: heuristic_decision(name, {}, []),  # type: ignore[misc]
            )
            samples.append(time.perf_counter() - t0)
            sources.append(outcome.source)
        latencies[name] = {**summarize(samples), "sources": sources}
    figures["decision_latency"] = latencies

    t0 = time.perf_counter()
    freed = await client.stop()
    figures["release_s"] = time.perf_counter() - t0
    figures["freed_bytes"] = freed
    t0 = time.perf_counter()
    client = await WorkerClient.start(model, n_ctx=4096, n_threads=threads)
    figures["reload_s"] = time.perf_counter() - t0
    await client.stop()

    print_table(["grammar", "gen tok/s", "tokens out", "overhead x"], rows)
    print()
    print_table(
        ["grammar", "decision median ms", "sources"],
        [[n, f"{v['median_us'] / 1000:.0f}", ",".join(v["sources"])] for n, v in latencies.items()],
    )
    print()
    print_table(
        ["figure", "value"],
        [
            ["start + load s", f"{figures['start_and_load_s']:.2f}"],
            ["prompt tok/s", f"{figures['prompt_tok_per_s']:.0f}"],
            ["release s", f"{figures['release_s']:.3f}"],
            ["freed MB", f"{freed / 2**20:.0f}"],
            ["reload s", f"{figures['reload_s']:.2f}"],
        ],
    )
    return figures


def main() -> None:
    """Parse arguments, run, write the results file."""
    p = parser("llm", __doc__ or "")
    p.add_argument("--model", default="gemma3-270m", help="a GGUF path or gemma3-270m")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="llama.cpp threads")
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=Path.home() / ".cache" / "watcher" / "models",
        help="where the packaged model is assembled",
    )
    args = p.parse_args()
    model = resolve_model(args.model, cache_dir=args.cache_dir)
    if model is None:
        p.error("--model none: nothing to benchmark")
    figures = anyio.run(run, model, args.threads, args.quick)
    path = write_results("llm", figures, args.out)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
