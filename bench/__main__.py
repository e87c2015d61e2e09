"""`python -m bench [--quick]`: run every benchmark module in bench/, one process each."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

_NOT_BENCHMARKS = {"common", "scenario", "__main__"}
"""Shared modules: `scenario` is the harness bench.recovery and tests/e2e/test_recovery.py drive."""


def benchmarks() -> list[str]:
    """Names of the benchmark modules (every module of bench/ but the shared ones)."""
    folder = Path(__file__).resolve().parent
    return sorted(
        info.name
        for info in pkgutil.iter_modules([str(folder)])
        if info.name not in _NOT_BENCHMARKS
    )


def main(argv: list[str] | None = None) -> int:
    """Run each benchmark in turn; exit non-zero if any failed."""
    extra = list(sys.argv[1:] if argv is None else argv)
    failed = []
    for name in benchmarks():
        print(f"\n== bench.{name} ==", flush=True)
        code = subprocess.call([sys.executable, "-m", f"bench.{name}", *extra])
        if code != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
