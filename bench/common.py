"""What every benchmark shares: machine facts, timing summaries, the results file and the table."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
_PACKAGES = ("anyio", "trio", "pydantic", "numpy", "llama-cpp-python", "pykka", "watchfiles")


def machine_facts() -> dict[str, Any]:
    """CPU model, core count, Python and package versions: the context a figure needs."""
    cpu = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions: dict[str, str] = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
    }


def summarize(samples_s: list[float]) -> dict[str, float]:
    """Median, p99 and mean of a list of durations in seconds, returned in microseconds."""
    ordered = sorted(samples_s)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "median_us": statistics.median(ordered) * 1e6,
        "p99_us": p99 * 1e6,
        "mean_us": statistics.fmean(ordered) * 1e6,
        "n": float(len(ordered)),
    }


def parser(name: str, description: str) -> argparse.ArgumentParser:
    """The argument parser every benchmark starts from (`--quick`, `--out`)."""
    p = argparse.ArgumentParser(prog=f"python -m bench.{name}", description=description)
    p.add_argument("--quick", action="store_true", help="a run of a few seconds (smoke test)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for NAME.json")
    return p


def write_results(name: str, figures: dict[str, Any], out_dir: Path = RESULTS_DIR) -> Path:
    """Write `out_dir/NAME.json` with the figures and the machine facts; return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    payload = {"benchmark": name, "machine": machine_facts(), "figures": figures}
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def print_table(headers: list[str], rows: list[list[Any]]) -> None:
    """Print a plain, aligned table on stdout."""
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))
