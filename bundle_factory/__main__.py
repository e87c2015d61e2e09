"""`python -m bundle_factory --self-test | --show STEP [--model GGUF]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bundle_factory.catalog import BUNDLE_TYPES
from bundle_factory.errors import BundleError
from bundle_factory.selftest import render_sample, run_self_test, sample_env
from bundle_factory.tokenizer import EstimatorTokenizer, LlamaVocabTokenizer, Tokenizer


def _parser() -> argparse.ArgumentParser:
    known = ", ".join(str(k) for k in sorted(BUNDLE_TYPES))
    p = argparse.ArgumentParser(
        prog="python -m bundle_factory",
        description="Check the bundle factory: build and render every bundle type from samples.",
    )
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--self-test",
        action="store_true",
        help="build every bundle type and print a table; exit 0 only if all pass",
    )
    mode.add_argument(
        "--show",
        type=int,
        metavar="STEP",
        help=f"print the rendered sample prompt of STEP ({known})",
    )
    p.add_argument(
        "--model",
        type=Path,
        metavar="GGUF",
        help="count tokens with this model's own tokenizer (default: the estimator)",
    )
    return p


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (0 all passed, 1 a check failed, 2 bad usage)."""
    args = _parser().parse_args(argv)
    out, err = sys.stdout, sys.stderr
    try:
        tokenizer: Tokenizer = (
            LlamaVocabTokenizer(args.model) if args.model else EstimatorTokenizer()
        )
    except BundleError as exc:
        err.write(f"error: {exc}\n")
        return 2
    if args.show is not None:
        if args.show not in BUNDLE_TYPES:
            known = ", ".join(str(k) for k in sorted(BUNDLE_TYPES))
            err.write(f"error: unknown step id {args.show}; known bundle types: {known}\n")
            return 2
        with sample_env() as env:
            prompt, _bundle = render_sample(env, args.show, tokenizer)
        out.write(prompt + "\n")
        return 0
    rows = run_self_test(tokenizer)
    table = [
        [
            f"{r.step_id} {r.step_name}",
            r.grammar,
            str(r.tier0),
            str(r.tier1),
            str(r.tier2),
            str(r.total),
            r.sha256,
            "ok" if r.passed else "FAIL: " + "; ".join(r.problems),
        ]
        for r in rows
    ]
    headers = ["type", "grammar", "tier0", "tier1", "tier2", "total", "prompt sha256", "status"]
    failed = sum(not r.passed for r in rows)
    out.write(f"tokenizer: {tokenizer.name}\n")
    out.write(_table(headers, table) + "\n")
    out.write(f"{len(rows) - failed} of {len(rows)} bundle types passed\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
