"""Chapter 13's recovery on the embedded defaults: detection and recovery delays after a switch
of seed and/or family, false alarms in a stable regime, and behaviour on unpredictable draws.

Every scenario is a whole run of the real in-process system with `Settings(state_dir=...)`
(no configuration file, no model: the heuristic advisor answers) and the real reference jobs,
fed one draw per file (bench/scenario.py, which also defines every figure). The sweep covers
the four families, seeds from the default sieve's range, bootstrap histories of 40 to 2,000
draws, switch points after 10 to 40 live draws, and a seed, a family or both changing; then
one stable regime of 1,000 live draws and three unpredictable streams. Targets (issue 13):
recovery median <= 10 draws and max <= 20, detection <= 3 draws for a model that hit >= 90 %,
0 false alarms in 1,000 stable draws, <= 1 pipeline run before the escalation on unpredictable
draws. No baseline run: the figures are draw counts, not times (the GPU-job seconds are the
jobs' own durations, as the dispatcher recorded them).
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from actors.logconfig import configure_logging
from bench.common import parser, print_table, write_results
from bench.scenario import (
    MAX_HISTORY,
    MIN_HISTORY,
    SUSTAINED,
    ScenarioResult,
    ScenarioSpec,
    Switch,
    result_from_summary,
    run_scenario,
)
from pipeline.prng import FAMILIES

RECOVERY_MAX = 20
RECOVERY_MEDIAN_MAX = 10
DETECTION_MAX = 3
GOOD_MODEL = 0.9
POST_LIVE = RECOVERY_MAX + SUSTAINED
"""Live draws after a switch: room for the latest allowed recovery to show as sustained."""
SEED_END = 1 << 20
"""The default sieve searches seeds below this."""


def switch_specs(quick: bool, rng: random.Random) -> list[ScenarioSpec]:
    """The sweep: per family, a seed, a family and a both-switch (twice each unless quick)."""
    names = sorted(FAMILIES)
    if quick:
        quick_switch = Switch(new_seed=777)
        return [
            ScenarioSpec(
                family="lcg32", seed=4242, stable_live=10, switch=quick_switch, post_live=12
            )
        ]
    histories = [MIN_HISTORY, 200, 1000, MAX_HISTORY]
    specs: list[ScenarioSpec] = []
    for family in names:
        for repeat in range(2):
            for kind in ("seed", "family", "both"):
                seed = rng.randrange(1, SEED_END)
                others = [n for n in names if n != family]
                new_family = None if kind == "seed" else rng.choice(others)
                new_seed = None if kind == "family" else rng.randrange(1, SEED_END)
                specs.append(
                    ScenarioSpec(
                        family=family,
                        seed=seed,
                        history_len=rng.choice(histories),
                        stable_live=(10, 20, 40)[(repeat + len(specs)) % 3],
                        switch=Switch(new_seed=new_seed, new_family=new_family),
                        post_live=POST_LIVE,
                    )
                )
    return specs


def _median(values: list[int | float]) -> float | None:
    return None if not values else float(statistics.median(values))


def switch_figures(results: list[ScenarioResult]) -> dict[str, Any]:
    """Delays (median, max, misses), false alarms, people and GPU seconds over switch runs."""
    detected = [r.detection_delay for r in results if r.detection_delay is not None]
    good = [r for r in results if (r.stable_hit_rate or 0.0) >= GOOD_MODEL]
    good_detected = [r.detection_delay for r in good if r.detection_delay is not None]
    first_hit = [r.recovery_delay for r in results if r.recovery_delay is not None]
    sustained = [
        r.sustained_recovery_delay for r in results if r.sustained_recovery_delay is not None
    ]
    recovered = [r for r in results if r.sustained_recovery_delay is not None]
    stable_draws = sum(r.spec.stable_live for r in results)
    alarms = sum(r.false_alarms for r in results)
    return {
        "runs": len(results),
        "detection_event": sorted({r.detection_event for r in results}),
        "detected": len(detected),
        "detection_median": _median(list(detected)),
        "detection_max": max(detected, default=None),
        "good_models": len(good),
        "good_models_detected_within_target": sum(1 for d in good_detected if d <= DETECTION_MAX),
        "recovered_first_hit": len(first_hit),
        "recovery_first_hit_median": _median(list(first_hit)),
        "recovered_sustained": len(recovered),
        "recovery_median": _median(list(sustained)),
        "recovery_max": max(sustained, default=None),
        "never_recovered": len(results) - len(recovered),
        "false_alarms": alarms,
        "stable_draws": stable_draws,
        "false_alarms_per_1000": 1000.0 * alarms / stable_draws if stable_draws else 0.0,
        "human_actions": sum(r.human_actions for r in results),
        "halted_runs": sum(1 for r in results if r.halted),
        "gpu_seconds_per_recovery_median": _median([r.gpu_seconds_to_recovery for r in recovered]),
        "gpu_seconds_after_switch_median": _median([r.gpu_seconds_after_switch for r in results]),
        "pipeline_runs_median": _median([r.pipeline_runs for r in results]),
        "stable_hit_rate_median": _median(
            [r.stable_hit_rate for r in results if r.stable_hit_rate is not None]
        ),
    }


def targets(
    switch: dict[str, Any], stable: ScenarioResult | None, unpredictable: list[ScenarioResult]
) -> dict[str, bool | None]:
    """Issue 13's targets, each met or not (None: not measured in this run)."""
    runs_before = [r.pipeline_runs_before_escalation for r in unpredictable]
    return {
        "recovery_median_le_10": switch["never_recovered"] == 0
        and (switch["recovery_median"] or 0) <= RECOVERY_MEDIAN_MAX,
        "recovery_max_le_20": switch["never_recovered"] == 0
        and (switch["recovery_max"] or 0) <= RECOVERY_MAX,
        "detection_le_3_for_good_models": switch["good_models"] > 0
        and switch["good_models_detected_within_target"] == switch["good_models"],
        "no_false_alarm_in_stable_regime": None if stable is None else stable.false_alarms == 0,
        "no_human_action_on_switches": switch["human_actions"] == 0,
        "le_1_pipeline_run_before_escalation": all(n is not None and n <= 1 for n in runs_before)
        if unpredictable
        else None,
    }


def run_all(
    specs: list[ScenarioSpec], root: Path, runs_file: Path | None = None
) -> list[ScenarioResult]:
    """Run each scenario in its own fresh state dir, printing a line per run (and appending
    its summary to `runs_file`, when given, as soon as it ends)."""
    results = []
    for n, spec in enumerate(specs):
        result = run_scenario(spec, root / f"s{n:03d}")
        results.append(result)
        if runs_file is not None:
            with runs_file.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(result.summary(), default=str) + "\n")
        print(
            f"  {spec.label()}: detect={result.detection_delay} "
            f"recover={result.recovery_delay}/{result.sustained_recovery_delay} "
            f"alarms={result.false_alarms} people={result.human_actions} "
            f"halted={result.halted} runs={result.pipeline_runs} ({result.wall_s:.0f} s)",
            flush=True,
        )
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the sweep, print the tables, write bench/results/recovery.json."""
    p = parser("recovery", __doc__.splitlines()[0])
    p.add_argument(
        "--part",
        choices=["all", "switch", "stable", "unpredictable"],
        default="all",
        help="run only part of the sweep (with --runs-file; then --from-runs writes the figures)",
    )
    p.add_argument(
        "--runs-file", type=Path, default=None, help="append each run's summary here (JSON lines)"
    )
    p.add_argument(
        "--from-runs",
        type=Path,
        nargs="+",
        default=None,
        help="run nothing: build the figures from runs files written by --runs-file",
    )
    args = p.parse_args(argv)
    if args.part != "all" and args.runs_file is None:
        p.error(f"--part {args.part} needs --runs-file (its runs are kept there)")
    configure_logging(None, "warning", console=False)
    rng = random.Random(13)
    stable_spec = ScenarioSpec(
        family="xorshift32", seed=654_321, history_len=300, stable_live=20 if args.quick else 1000
    )
    unpredictable_specs = [
        ScenarioSpec(
            seed=s, history_len=h, stable_live=10 if args.quick else 60, unpredictable=True
        )
        for s, h in ([(7, MIN_HISTORY)] if args.quick else [(7, 40), (8, 500), (9, 2000)])
    ]
    started = time.perf_counter()
    switch_list = switch_specs(args.quick, rng)
    if args.from_runs:
        saved = [
            result_from_summary(json.loads(line))
            for path in args.from_runs
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        switched = [r for r in saved if r.spec.switch is not None]
        stables = [r for r in saved if r.spec.switch is None and not r.spec.unpredictable]
        unpredictable = [r for r in saved if r.spec.unpredictable]
        if not switched:
            p.error("--from-runs needs switch runs among its files")
        # A part cut short (the stable regime is one long run) is reported as not measured.
        stable = stables[0] if stables else None
    else:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            if args.part in {"all", "switch"}:
                print("switches:", flush=True)
                switched = run_all(switch_list, root / "switch", args.runs_file)
            if args.part in {"all", "stable"}:
                print("stable regime:", flush=True)
                [stable] = run_all([stable_spec], root / "stable", args.runs_file)
            if args.part in {"all", "unpredictable"}:
                print("unpredictable:", flush=True)
                unpredictable = run_all(unpredictable_specs, root / "random", args.runs_file)
        if args.part != "all":
            print(f"part {args.part} done; figures: --from-runs {args.runs_file}")
            return 0
    sw = switch_figures(switched)
    per_family = {
        name: switch_figures([r for r in switched if r.spec.family == name])
        for name in sorted({r.spec.family for r in switched})
    }
    stable_fig = None
    if stable is not None:
        stable_fig = {
            "draws": stable.spec.stable_live,
            "change_alarms": stable.false_alarms,
            "false_alarms_per_1000": stable.false_alarms_per_1000,
            "hits": stable.outcomes.count("hit"),
            "no_pool": stable.outcomes.count("no_pool"),
            "human_actions": stable.human_actions,
            "detection_event": stable.detection_event,
            "gpu_seconds": stable.gpu_seconds_total,
        }
    everything = [*switched, *([] if stable is None else [stable]), *unpredictable]
    random_fig = [
        {
            "label": r.spec.label(),
            "pipeline_runs": r.pipeline_runs,
            "pipeline_runs_before_escalation": r.pipeline_runs_before_escalation,
            "escalations": list(r.escalations),
            "jobs_after_escalation": r.jobs_after_escalation,
            "gpu_seconds_after_escalation": r.gpu_seconds_after_escalation,
            "halted": r.halted,
            "no_pool": r.outcomes.count("no_pool"),
        }
        for r in unpredictable
    ]
    met = targets(sw, stable, unpredictable)
    figures: dict[str, Any] = {
        "quick": args.quick,
        "wall_s": round(time.perf_counter() - started, 1)
        if not args.from_runs
        else round(sum(r.wall_s for r in everything), 1),
        "switch": sw,
        "per_family": per_family,
        "stable": stable_fig,
        "unpredictable": random_fig,
        "targets_met": met,
        "runs": [r.summary() for r in everything],
    }

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        return f"{value:.1f}" if isinstance(value, float) else str(value)

    print()
    print_table(
        ["family", "runs", "detect med", "detect max", "recover med", "recover max", "never",
         "alarms/1000", "people", "GPU s/recovery"],
        [
            [name, f["runs"], cell(f["detection_median"]), cell(f["detection_max"]),
             cell(f["recovery_median"]), cell(f["recovery_max"]), f["never_recovered"],
             cell(f["false_alarms_per_1000"]), f["human_actions"],
             cell(f["gpu_seconds_per_recovery_median"])]
            for name, f in [*per_family.items(), ("all", sw)]
        ],
    )  # fmt: skip
    if stable_fig is None:
        print("\nstable regime: not measured in this run")
    else:
        print(
            f"\nstable regime: {stable_fig['draws']} draws, {stable_fig['hits']} hits, "
            f"{stable_fig['no_pool']} unpredicted, {stable_fig['change_alarms']} change alarms "
            f"(detection event: {stable_fig['detection_event']})"
        )
    for r in random_fig:
        print(
            f"{r['label']}: {r['pipeline_runs']} pipeline run(s), "
            f"{r['pipeline_runs_before_escalation']} before the escalation, "
            f"escalations {r['escalations']}, {r['jobs_after_escalation']} job(s) after it, "
            f"halted={r['halted']}"
        )
    print("\ntargets met: " + ", ".join(f"{k}={v}" for k, v in met.items()))
    path = write_results("recovery", figures, args.out)
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
