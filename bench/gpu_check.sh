#!/usr/bin/env bash
# One prepared check for a machine with an NVIDIA GPU (issue 14's benchmark, GPU part):
#   1. the GPUs NVML sees (the dispatcher's inventory);
#   2. the reference sieve's seeds/s with cupy against numpy on the same range, same survivors;
#   3. a lease verified by NVML: a GPU job allocating VRAM runs through the real dispatcher
#      under the lease; NVML shows the memory taken while it runs and given back after.
# Usage: bench/gpu_check.sh [PYTHON]  (default: .venv/bin/python, else python3). Needs numpy,
# pydantic, anyio, structlog, nvidia-ml-py and cupy (extra `gpu`) importable by PYTHON; the
# repository root is put on PYTHONPATH. Writes bench/results/gpu_check.json; exit 0 when every
# check passed, 1 when one failed, 2 when there is no usable GPU (nothing was measured).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-}"
if [[ -z "$PY" ]]; then
    if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi -L || { echo "gpu_check: nvidia-smi found no GPU" >&2; exit 2; }
exec "$PY" - <<'PYEOF'
import json
import sys
import tempfile
import time
from pathlib import Path

import anyio
import numpy as np

from actors.gpu.inventory import NvmlInventory, detect_inventory
from pipeline.array_module import get_array_module
from pipeline.prng import FAMILIES
from pipeline.seed_search import ChunkSieve, choose_anchors, make_window
from pipeline.synthetic import synthetic_records

figures: dict[str, object] = {}
failed: list[str] = []

# 1. Inventory.
inventory = detect_inventory()
gpus = inventory.gpus()
figures["gpus"] = [g.model_dump() for g in gpus]
if not isinstance(inventory, NvmlInventory) or not gpus:
    print("gpu_check: NVML sees no GPU", file=sys.stderr)
    sys.exit(2)
print(f"NVML: {len(gpus)} GPU(s): {', '.join(g.name for g in gpus)}")

# 2. Sieve: cupy vs numpy, same range, same survivors.
cupy = get_array_module(prefer_gpu=True)
numpy_am = get_array_module(prefer_gpu=False)
if cupy.name != "cupy":
    failed.append("cupy is not usable (extra `gpu`); the sieve ran on numpy only")
records = synthetic_records("lcg32", 3_141_592, 64)
values = np.array([r.value for r in records], dtype=np.int64)
anchors = choose_anchors(len(values), 8, 64)
window = make_window(values, anchors, 8, 1000, 8)
seeds = 1 << 26
chunk = 1 << 20
sieve_rows = []
for family in ("lcg32", "xorshift32"):
    found: dict[str, set[tuple[int, int]]] = {}
    for am in (numpy_am, cupy) if cupy.name == "cupy" else (numpy_am,):
        sieve = ChunkSieve(FAMILIES[family], 0, window, am)
        lo = max(1, FAMILIES[family].seed_min)
        sieve.run(lo, lo + chunk)  # warm-up: kernels compiled, memory pooled
        started = time.perf_counter()
        hits: set[tuple[int, int]] = set()
        for start in range(lo, lo + seeds, chunk):
            out = sieve.run(start, min(lo + seeds, start + chunk))
            hits.update(zip(out.seeds.tolist(), out.anchors.tolist(), strict=True))
        elapsed = time.perf_counter() - started
        found[am.name] = hits
        sieve_rows.append({"family": family, "module": am.name, "seeds": seeds,
                           "seconds": elapsed, "seeds_per_s": seeds / elapsed})
        print(f"sieve {family:10s} {am.name:5s} {seeds / elapsed / 1e6:10.1f} M seeds/s")
    if len(found) == 2 and found["numpy"] != found["cupy"]:
        failed.append(f"sieve {family}: cupy and numpy found different survivors")
figures["sieve"] = sieve_rows
by = {(r["family"], r["module"]): r["seeds_per_s"] for r in sieve_rows}
figures["sieve_speedup"] = {
    f: by[(f, "cupy")] / by[(f, "numpy")] for f in ("lcg32", "xorshift32") if (f, "cupy") in by
}

# 3. A lease verified by NVML: a job holding 2 GiB on GPU 0 under the real dispatcher.
HOLD_MB = 2048
JOB = (
    "import sys, time, json, cupy\n"
    f"block = cupy.zeros({HOLD_MB} * 2**20, dtype=cupy.uint8)\n"
    "block += 1; cupy.cuda.Device().synchronize()\n"
    "open(sys.argv[1] + '.holding', 'w').write('x')\n"
    "time.sleep(3)\n"
    "open(sys.argv[1], 'w').write(json.dumps(dict(ok=True)))\n"
)


async def lease_check() -> dict[str, object]:
    from actors.gpu.actor import GPUDispatchActor
    from actors.gpu.registry import NOOP_JOB, JobRegistry
    from actors.gpu.spec import JobSpec
    from actors.services import GPU, TRIGGER
    from actors.testing import harness_settings, open_test_system, probe
    from messages.dispatch import JobFinished, RunJob

    spec = JobSpec(name="hold", argv=("{python}", "-c", JOB.replace("{", "{{").replace("}", "}}"),
                   "{result_json}"), result_model=NOOP_JOB.result_model, timeout_s=120,
                   needs_gpu=True, vram_mb=HOLD_MB)
    registry = JobRegistry([NOOP_JOB, spec])
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        settings = harness_settings(state, gpu={"llm_gpu": 0})
        fakes = {TRIGGER: probe(),
                 GPU: (probe()[0], lambda s: GPUDispatchActor(s, registry=registry))}
        before = inventory.free_bytes(0)
        during = before
        async with open_test_system(state, fakes=fakes, settings=settings) as h:
            async with anyio.create_task_group() as tg:
                result: list[JobFinished] = []

                async def run() -> None:
                    result.append(await h.system.ref(GPU).ask(
                        RunJob(job="hold", run_id="check"), timeout=300, expect=JobFinished))

                tg.start_soon(run)
                with anyio.fail_after(120):
                    while not list(state.glob("runs/*/*/result.json.holding")):
                        await anyio.sleep(0.05)
                during = inventory.free_bytes(0)
            leases = await h.services.store.run(lambda c: c.execute(
                "SELECT gpu, returned_at FROM leases").fetchall())
        await anyio.sleep(1)
        after = inventory.free_bytes(0)
    finished = result[0]
    taken_mb = (before - during) / 2**20
    return {"status": finished.status, "free_before_mb": before / 2**20,
            "free_during_mb": during / 2**20, "free_after_mb": after / 2**20,
            "taken_mb": taken_mb, "leases": [list(map(str, row)) for row in leases],
            "ok": finished.status == "completed" and taken_mb >= HOLD_MB * 0.9
            and len(leases) == 1 and leases[0][1] is not None
            and after >= during + HOLD_MB * 0.9 * 2**20}


lease = anyio.run(lease_check)
figures["lease"] = lease
print(f"lease: job {lease['status']}, NVML free {lease['free_before_mb']:.0f} -> "
      f"{lease['free_during_mb']:.0f} -> {lease['free_after_mb']:.0f} MiB, leases {lease['leases']}")
if not lease["ok"]:
    failed.append("the NVML-verified lease check failed")
figures["failed"] = failed
out = Path("bench/results")
out.mkdir(parents=True, exist_ok=True)
(out / "gpu_check.json").write_text(json.dumps({"benchmark": "gpu_check", "figures": figures},
                                               indent=2, default=str) + "\n")
for line in failed:
    print(f"FAILED: {line}", file=sys.stderr)
sys.exit(1 if failed else 0)
PYEOF
