"""Configuration: one TOML file validated by pydantic; every value has a default.

A bad file or value stops start-up with a `ConfigError` naming the key and the rule (exit 2).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from actors.runtime import KernelSettings
from messages.errors import ConfigError

STATE_DIR_ENV = "WATCHER_STATE_DIR"
DEFAULT_STATE_DIR = Path("var")


class Section(BaseModel):
    """Base of every config table: frozen, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class KernelConfig(Section):
    """`[kernel]`: mailboxes, supervision and shutdown bounds (ARCHITECTURE §2)."""

    mailbox_capacity: int = Field(1024, ge=1)
    """Messages an actor's mailbox holds before `tell` waits (backpressure)."""
    fairness_batch: int = Field(64, ge=1)
    """An actor yields to the scheduler after this many messages handled in a row."""
    max_restarts: int = Field(3, ge=0)
    """Restarts allowed within `restart_window_s`; one more stops the system (exit 1)."""
    restart_window_s: float = Field(5.0, gt=0)
    """The window of the restart intensity, in seconds."""
    restart_backoff_s: float = Field(0.0, ge=0)
    """Wait before a restart, times the crashes in the window (0: restart at once)."""
    phase_timeout_s: float = Field(5.0, gt=0)
    """Upper bound of each shutdown phase (one per actor, reverse start order)."""

    def settings(self) -> KernelSettings:
        """The kernel's own settings record."""
        return KernelSettings(**self.model_dump())


class IngestionConfig(Section):
    """`[ingestion]`: what a valid draw is and how the inbox is watched."""

    mod: int = Field(1000, ge=2)
    """Draw values lie in [0, mod); a value has as many digits as `mod - 1` (1000 → 3)."""
    rescan_interval_s: float = Field(5.0, gt=0)
    """Safety-net rescan of the inbox, in case a file event was missed."""
    watch_step_ms: int = Field(1, ge=1, le=1000)
    """watchfiles' step: with 1 ms a rename is seen in ~2 ms, with the default in ~70 ms."""
    max_file_mb: float = Field(64.0, gt=0)
    """Bigger inbox files are quarantined unread (a runaway writer must not exhaust memory)."""


class RegimeChange(Section):
    """One entry of `[[synthetic.regime_changes]]`: from draw `at_draw` on, another generator.

    A new `seed` restarts the generator from that seed (a fresh stream, as `pipeline.synthetic
    --switch-at` does); a new `skip` alone keeps the generator's state and changes its stride.
    """

    at_draw: int = Field(ge=1)
    """0-based position in the synthetic sequence of the first draw of the new regime."""
    seed: int | None = None
    """The new seed (restarts the generator), or None to keep it."""
    skip: int | None = Field(None, ge=0)
    """The new skip, or None to keep it."""

    @model_validator(mode="after")
    def _changes_something(self) -> RegimeChange:
        if self.seed is None and self.skip is None:
            msg = f"regime change at draw {self.at_draw} must set seed or skip (or both)"
            raise ValueError(msg)
        return self


class SyntheticConfig(Section):
    """`[synthetic]`: the synthetic draw injector (runs only when `test_mode` is true as well)."""

    enabled: bool = False
    """Switch the injector on (with `test_mode = true` too; both are re-read each injection)."""
    family: Literal["lcg32", "minstd", "xorshift32", "java_lcg"] = "lcg32"
    """PRNG family of the generated draws (defined in docs/pipeline.md)."""
    seed: int = 12345
    """The generator's seed (0 is invalid for minstd and xorshift32)."""
    skip: int = Field(0, ge=0)
    """Outputs skipped between draws."""
    mod: int | None = Field(None, ge=2)
    """Values lie in [0, mod); None: `ingestion.mod` (a bigger mod than that is refused)."""
    interval_s: float = Field(60.0, gt=0)
    """The daemon injects one draw every `interval_s` seconds."""
    stream: str = Field("synthetic", pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    """History stream of the injected draws; never `real` (synthetic data never passes for real)."""
    regime_changes: tuple[RegimeChange, ...] = ()
    """Scheduled switches of seed or skip, for scenario tests (`[[synthetic.regime_changes]]`)."""

    @model_validator(mode="after")
    def _check(self) -> SyntheticConfig:
        # Imported here: the config module stays free of the pipeline at import time.
        from pipeline.prng import get_family

        if self.stream == "real":
            msg = "stream 'real' is refused: synthetic draws are kept apart from real history"
            raise ValueError(msg)
        family = get_family(self.family)
        family.check_seed(self.seed)
        starts = [change.at_draw for change in self.regime_changes]
        if starts != sorted(set(starts)):
            msg = f"regime_changes must have strictly increasing at_draw, got {starts}"
            raise ValueError(msg)
        for change in self.regime_changes:
            if change.seed is not None:
                family.check_seed(change.seed)
        return self


class TriggerConfig(Section):
    """`[trigger]`: Chapter 13's diagnostics windows, trigger thresholds and cooldown.

    `request_every_n_draws` is the forced mode (off by default): a fixed cadence of requests
    of `request_type`, bypassing the diagnostic rules, for plumbing tests and operators who
    want one. Every other key feeds the diagnostics or a trigger rule (docs/chapter13.md).
    """

    window: int = Field(20, ge=2)
    """Scored draws per rolling window (hit rate, calibration, window decay)."""
    ci_level: float = Field(0.95, gt=0, lt=1)
    """Confidence level of the Wilson interval around the window's hit rate."""
    calibration_bins: int = Field(10, ge=1, le=100)
    """Equal-width confidence bins of the expected calibration error (ECE)."""
    retrain_after_n_draws: int = Field(10, ge=1)
    """Once a model exists: refresh the predictions (step 6) when the newest pool is this many
    real draws old; before any model: run the full pipeline after this many draws (n_draws)."""
    confidence_drift: float = Field(0.2, gt=0, le=1)
    """`confidence_drift`: mean stated confidence minus hit rate over a full window above this."""
    max_consecutive_misses: int = Field(5, ge=1)
    """`consecutive_misses`: this many scored misses in a row."""
    hit_rate_collapse: float = Field(0.01, ge=0, le=1)
    """`hit_rate_collapse`: a full window's hit rate at or below this."""
    regime_decay: float = Field(0.5, gt=0, le=1)
    """`regime_shift` needs the window decay (relative drop vs the window before) above this..."""
    regime_churn: float = Field(0.4, gt=0, le=1)
    """...and the survivor churn (1 - Jaccard of the top survivors of two runs) above this."""
    churn_top_n: int = Field(20, ge=1)
    """Top survivors of a model compared by identity for the churn."""
    cooldown_draws: int = Field(10, ge=0)
    """After a trigger fires, rules of the same or lower priority wait this many draws..."""
    cooldown_s: float = Field(600.0, ge=0)
    """...and this many seconds (both must pass). A completed retrain resets the cooldown."""
    llm_review_every_n_draws: int = Field(0, ge=0)
    """`llm_proposed`: ask the advisor for a review every N scored draws (0: never)."""
    proposal_timeout_s: float = Field(120.0, gt=0)
    """Bound on building the Chapter 13 bundle and on the advisor's answer, each."""
    request_every_n_draws: int | None = Field(None, ge=1)
    """Forced mode: file a `request_type` request every N real draws, no rules (None: off)."""
    request_type: Literal["learning_loop", "selfplay_retrain", "pipeline_rerun"] = "learning_loop"
    """Forced mode only: the request filed."""
    learning_scope: Literal["steps_3_5_6", "steps_5_6", "step_6_only"] = "step_6_only"
    """Forced mode only: the learning loop's scope."""


class PoliciesConfig(Section):
    """`[policies]`: Chapter 13's acceptance rules and the promotion gate (ARCHITECTURE §10)."""

    min_confidence: float = Field(0.60, ge=0, le=1)
    """Proposals below this confidence are rejected."""
    max_parameters: int = Field(3, ge=0)
    """Proposals changing more parameters than this are rejected."""
    frozen_parameters: tuple[str, ...] = ("mod",)
    """Never changed by a proposal (the modulus is a property of the source, not a knob)."""
    max_relative_delta: float = Field(0.3, gt=0)
    """|proposed - current| / |current| above this is rejected."""
    reversal_lookback_runs: int = Field(3, ge=0)
    """A change that undoes one made in this many last accepted runs is rejected."""
    parameter_cooldown_draws: int = Field(10, ge=0)
    """A parameter changed less than this many draws ago may not change again."""
    parameter_bounds: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {
            "min_match_rate": (0.0, 1.0),
            "half_life": (2.0, 256.0),
            "recent_window": (5.0, 100.0),
            "history_window": (0.0, 1000.0),
            "pool_size": (1.0, 16.0),
        }
    )
    """Known parameters and their [low, high]; proposals for others are rejected."""
    escalate_risk_levels: tuple[Literal["low", "medium", "high"], ...] = ("medium", "high")
    """Proposals at these risk levels go to a person."""
    max_repeated_rejects: int = Field(3, ge=1)
    """The Nth rejection in a row (for one rule) escalates instead."""
    auto_accept_confidence: float = Field(0.75, ge=0, le=1)
    """Auto-accept needs low risk, this confidence, and at most `auto_accept_max_parameters`."""
    auto_accept_max_parameters: int = Field(2, ge=0)
    """Auto-accept changes at most this many parameters (more goes to a person)."""
    min_fitness: float = -1.0
    """Gate: a candidate's selfplay fitness (holdout hit rate minus chance) at least this."""
    min_validation_score: float = Field(0.0, ge=0, le=1)
    """Gate: the candidate's holdout hit rate at least this."""
    max_train_validation_gap: float = Field(0.2, ge=0, le=1)
    """Gate: train hit rate minus holdout hit rate at most this (overfit guard)."""
    min_survivors: int = Field(1, ge=0)
    """Gate: survivors in the candidate's pool at least this."""
    shadow_draws: int = Field(10, ge=1)
    """Real draws the candidate is scored on beside the active policy before a verdict."""
    promotion_margin: float = Field(0.05, ge=0, le=1)
    """Promote only when the candidate's shadow hit rate beats the active one's by this."""


DEFAULT_STEP_JOBS: dict[str, str] = {
    "1": "sieve",
    "2": "scorer_meta",
    "3": "full_scoring",
    "4": "ml_meta",
    "5": "train",
    "6": "predict",
    "selfplay": "selfplay",
}
"""The reference pipeline's job for each unit; `[watcher.step_jobs]` entries replace single ones."""
_UNIT_KEYS = ("1", "2", "3", "4", "5", "6", "selfplay")
ParamValue = int | float | bool | str


class WatcherConfig(Section):
    """`[watcher]`: the spool, the decision thresholds and the kill switch."""

    rescan_interval_s: float = Field(5.0, gt=0)
    """Safety-net rescan of the spool's `new/`, in case a file event was missed."""
    auto_proceed_confidence: float = Field(0.70, ge=0, le=1)
    """A `proceed` verdict is followed only at this confidence or above."""
    escalate_below_confidence: float = Field(0.50, ge=0, le=1)
    """Any verdict below this confidence escalates to a person."""
    max_retries_per_step: int = Field(3, ge=0)
    """Retries of one step before it escalates."""
    max_retries_per_run: int = Field(10, ge=0)
    """Retries across all steps of one request before it escalates."""
    halt_file: str = "halt"
    """Path of the kill-switch file, relative to the state directory."""
    step_jobs: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_STEP_JOBS))
    """Which registry job runs each pipeline step ("1".."6") and selfplay; a table here
    replaces only the units it names (the others keep their default). Checked at start-up:
    every unit must name a registered job."""
    params: dict[str, dict[str, ParamValue]] = Field(default_factory=dict)
    """Per-unit job parameters, `[watcher.params.1] seed_end = 4294967296`; checked at start-up
    against the unit's job; `submit --param UNIT.NAME=VALUE` overrides them per request."""

    @field_validator("step_jobs")
    @classmethod
    def _merge_step_jobs(cls, value: dict[str, str]) -> dict[str, str]:
        for unit, job in value.items():
            if unit not in _UNIT_KEYS:
                msg = f"unknown unit {unit!r}; units: {', '.join(_UNIT_KEYS)}"
                raise ValueError(msg)
            if not job.strip():
                msg = f"unit {unit!r} has no job (an empty name); name a registered job"
                raise ValueError(msg)
        return {**DEFAULT_STEP_JOBS, **value}

    @field_validator("params")
    @classmethod
    def _known_units(cls, value: dict[str, dict[str, ParamValue]]) -> dict[str, Any]:
        for unit in value:
            if unit not in _UNIT_KEYS:
                msg = f"unknown unit {unit!r}; units: {', '.join(_UNIT_KEYS)}"
                raise ValueError(msg)
        return value

    notify_command: tuple[str, ...] = ()
    """Kept for existing configs: the same as `notify.command` (used when that one is empty)."""


class SpoolConfig(Section):
    """`[spool]`: what a request file may be (the watcher rejects, with a reason, what is not)."""

    max_request_kb: int = Field(1024, ge=1)
    """Bigger request files are rejected unread (requests are small; a runaway evidence is not)."""
    clock_skew_s: float = Field(300.0, ge=0)
    """A request whose `created_at` is further in the future than this is rejected."""


class LLMConfig(Section):
    """`[llm]`: the local model (or none: the heuristic advisor answers)."""

    model: str = "none"
    """A GGUF path, the alias `gemma3-270m`, or `none` for the heuristic advisor only."""
    n_ctx: int = Field(4096, ge=256)
    """Context length the model is loaded with, in tokens."""
    n_threads: int = Field(1, ge=1)
    """CPU threads for generation (1: with 2 cores, a second thread fights the jobs)."""
    n_gpu_layers: int = Field(0, ge=-1)
    """Layers offloaded to the GPU (-1: all; 0: CPU only)."""
    max_tokens: int = Field(2000, ge=16)
    """Upper bound of one answer, in tokens; each grammar's own worst case applies below it."""
    temperature: float = Field(0.0, ge=0, le=2)
    """Sampling temperature (0: greedy, reproducible)."""
    seed: int = 0
    """Sampling seed."""
    while_leased: Literal["heuristic", "wait"] = "heuristic"
    """How decision requests are answered while the GPU lease is out."""
    reload: Literal["eager", "lazy"] = "lazy"
    """After a lease returns: load the model at once (eager) or at the next decision (lazy).

    At start-up the model is always loaded, so a bad model or grammar stops start-up."""
    idle_unload_s: float | None = Field(None, gt=0)
    """Stop the worker after this many idle seconds (None: keep it loaded)."""
    release_deadline_s: float = Field(30.0, gt=0)
    """How long a VRAM release may take before the job goes on without the answer."""


class GpuRayConfig(Section):
    """`[gpu.ray]`: the Ray cluster GPU work runs on with `gpu.backend = "ray"`."""

    address: str = ""
    """Address of a running cluster (`ray://head:10001` or `head:6379`); empty: start a
    local Ray instance for this daemon."""
    num_gpus: int = Field(0, ge=0)
    """Local instance only: logical GPUs it offers (0: the GPUs Ray detects). Lets a machine
    without a GPU run the whole sharded path (jobs fall back to the CPU)."""
    num_cpus: int = Field(0, ge=0)
    """Local instance only: CPUs it offers (0: Ray's own count)."""
    llm_resource: str = Field("llm_gpu", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    """Custom resource marking the node whose GPU holds the LLM (start that node with
    `--resources '{"llm_gpu": 1}'`); a task placed on it runs under the VRAM lease."""
    connect_timeout_s: float = Field(60.0, gt=0)
    """How long connecting to (or starting) Ray may take at start-up."""


class GPUConfig(Section):
    """`[gpu]`: where and how jobs run: limits, sharding, the backend."""

    backend: Literal["local", "ray"] = "local"
    """`local`: processes on this machine; `ray`: Ray tasks on a cluster (extra `cluster`)."""
    cpu_slots: int = Field(1, ge=1, le=256)
    """Without a GPU: logical slots for GPU jobs on the CPU fallback (shards run at once)."""
    llm_gpu: int | None = Field(0, ge=0)
    """Local backend: the GPU index the LLM runs on; only jobs placed there take the lease
    (None: every GPU job takes it)."""
    max_shards: int = Field(0, ge=0)
    """Most shards a sharded job is split into (0: one per free GPU slot)."""
    shard_retries: int = Field(2, ge=0, le=20)
    """A failed or timed-out shard runs again (on another slot when there is one) this many
    times before the step fails naming it."""

    max_cpu_jobs: int = Field(2, ge=1)
    """CPU-only jobs that may run at once."""
    kill_grace_s: float = Field(2.0, ge=0)
    """Seconds between SIGTERM and SIGKILL of a job's process group (at shutdown at most
    half of `kernel.phase_timeout_s`, so a job ignoring SIGTERM cannot stretch the stop)."""
    output_tail_kb: int = Field(64, ge=1)
    """How much of the end of a job's stdout and stderr is kept for the record."""
    vram_wait_s: float = Field(60.0, ge=0)
    """With NVML: how long to wait for the GPU memory a job needs after the release."""
    ray: GpuRayConfig = GpuRayConfig()


class JobParamConfig(Section):
    """`[jobs.NAME.params.PARAM]`: one typed parameter of a configured job."""

    type: Literal["int", "float", "bool", "str", "path"] = "str"
    """Its type; `path` must resolve inside the state directory."""
    default: ParamValue | None = None
    """Its default; unset: the parameter is optional and omitted from the argv (or required)."""
    required: bool = False
    """A request or `[watcher.params]` must set it."""
    ge: float | None = None
    """Smallest value allowed (numbers)."""
    le: float | None = None
    """Largest value allowed (numbers)."""
    choices: tuple[ParamValue, ...] = ()
    """The only values allowed (empty: any of the type)."""
    description: str = ""
    """One line for the plan and `--help`."""


class JobConfig(Section):
    """`[jobs.NAME]`: a job of your own, registered beside the reference ones.

    Give `module` (run as `python -m MODULE` with the reference argv contract, see
    docs/pipeline.md) or `argv` (a template: `{python}`, `{state_dir}`, `{result_json}`,
    `{history}`, `{workdir}` and `{PARAM}` placeholders, each one argv element, no shell).
    """

    module: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
    """Python module run as `python -m MODULE --state-dir ... --result-json ... [flags]`."""
    argv: tuple[str, ...] = ()
    """The command as a list of template elements (instead of `module`)."""
    params: dict[str, JobParamConfig] = Field(default_factory=dict)
    """Its parameters (`[jobs.NAME.params.PARAM]`), validated before anything runs."""
    params_as_flags: bool | None = None
    """Append parameters not in the template as `--kebab-name VALUE` (default: with `module`)."""
    result_model: str = "generic"
    """`package.module:Class` the result file must match, or `generic` (GenericResult)."""
    history: bool = True
    """Pass `--history PATH --history-fingerprint FP` (module jobs) / fill `{history}`."""
    seed: bool = True
    """Pass `--seed N` (module jobs)."""
    needs_gpu: bool = False
    """A GPU job: pinned to a GPU (one per job), under the VRAM lease on the LLM's GPU."""
    gpus: int | None = Field(None, ge=0)
    """GPUs per process (default: 1 for a GPU job, else 0)."""
    vram_mb: int = Field(0, ge=0)
    """Free memory the job needs on its GPU, in MiB."""
    timeout_s: float = Field(3600.0, gt=0)
    """The job (each shard) is stopped after this many seconds."""
    shard_start: str | None = None
    """Int parameter where the job's range starts: with `shard_end` and `shard_merge`, the
    range is split over the free GPUs."""
    shard_end: str | None = None
    """Int parameter one past the range's end."""
    shard_merge: str | None = None
    """`package.module:function` merging the shards' results (see docs/pipeline.md)."""
    shard_min_size: int = Field(1, ge=1)
    """No shard smaller than this."""
    env: dict[str, str] = Field(default_factory=dict)
    """Variables added to the job's environment."""
    workdir: str = "."
    """Working directory, relative to the state directory."""
    description: str = ""
    """One line for the plan."""

    @model_validator(mode="after")
    def _one_command(self) -> JobConfig:
        if (self.module is None) == (not self.argv):
            msg = "give exactly one of 'module' and 'argv'"
            raise ValueError(msg)
        shard = (self.shard_start, self.shard_end, self.shard_merge)
        if any(shard) and not all(shard):
            msg = "sharding needs all of shard_start, shard_end and shard_merge"
            raise ValueError(msg)
        return self


class BundleConfig(Section):
    """`[bundle]`: token budgets of the LLM context (ARCHITECTURE §8)."""

    context: int = Field(32_768, ge=1024)
    """The model's context window, in tokens."""
    tier0_reserved: int = Field(1_200, ge=0)
    """Tokens reserved for tier 0 (mission, schema, grammar, guardrails): never truncated."""
    tier1_cap: int = Field(3_000, ge=128)
    """Cap of tier 1: the step's own results."""
    history_cap: int = Field(6_000, ge=64)
    """Cap of tier 2's history: recent outcomes and open incidents."""
    telemetry_cap: int = Field(3_000, ge=128)
    """Cap of tier 2's telemetry: metric trends."""
    generation_reserve: int = Field(2_000, ge=0)
    """Tokens left free for the answer; the prompt never exceeds context minus this."""


class LoggingConfig(Section):
    """`[logging]`: level of the JSON log file."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    """Lowest level written to the JSON log."""


class WebConfig(Section):
    """`[web]`: the dashboard, `/metrics` and `/healthz`, served by the daemon (docs/operations)."""

    enabled: bool = True
    """Serve the dashboard while the daemon runs (never in `--once` runs)."""
    bind: str = Field("127.0.0.1:8787", pattern=r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$")
    """HOST:PORT to listen on; loopback by default (port 0: any free port, see `web.json`)."""
    token: str = ""
    """The write-action token (approve, reject, halt, resume, submit); empty: writes are off."""
    token_file: str = ""
    """A file holding the token (relative to the state directory, or absolute); beats `token`."""
    public_url: str = ""
    """The dashboard's address as a person reaches it, for links in notifications (empty:
    derived from `bind`)."""
    chart_points: int = Field(1500, ge=50, le=20_000)
    """Most points the loop chart gets per series; longer histories are downsampled server-side."""


class NotifyConfig(Section):
    """`[notify]`: who hears about items that await a person, once per item (docs/operations.md)."""

    command: tuple[str, ...] = ()
    """Run per notification (argv, no shell); WATCHER_EVENT, WATCHER_REASON, WATCHER_URL etc.
    are in its environment. Empty: `watcher.notify_command`, if set."""
    urls: tuple[str, ...] = ()
    """Apprise URLs (mailto://, slack://, tgram://, ntfy://, json:// webhooks, ...)."""
    events: tuple[str, ...] = (
        "decision/escalate",
        "decision/no_signal",
        "request/escalation",
        "promotion/promoted",
        "promotion/rolled_back",
        "system/halted",
    )
    """Audit events (entity/event) that notify."""
    timeout_s: float = Field(30.0, gt=0)
    """Bound on one delivery (the command, or one URL)."""
    attempts: int = Field(3, ge=1, le=10)
    """Deliveries tried per notification before it is recorded as failed."""


class Settings(Section):
    """The whole configuration; `Settings()` is the embedded default."""

    state_dir: Path = DEFAULT_STATE_DIR
    """Where everything lives (inbox, spool, store, logs); see docs/configuration.md."""
    test_mode: bool = False
    """Allows test-only features (the synthetic injector, with `synthetic.enabled`)."""
    kernel: KernelConfig = KernelConfig()
    ingestion: IngestionConfig = IngestionConfig()
    synthetic: SyntheticConfig = SyntheticConfig()
    trigger: TriggerConfig = TriggerConfig()
    policies: PoliciesConfig = PoliciesConfig()
    watcher: WatcherConfig = WatcherConfig()
    spool: SpoolConfig = SpoolConfig()
    llm: LLMConfig = LLMConfig()
    gpu: GPUConfig = GPUConfig()
    bundle: BundleConfig = BundleConfig()
    logging: LoggingConfig = LoggingConfig()
    web: WebConfig = WebConfig()
    notify: NotifyConfig = NotifyConfig()
    jobs: dict[str, JobConfig] = Field(default_factory=dict)
    """Jobs of your own, `[jobs.NAME]`, registered beside the reference ones."""


def _describe(error: ValidationError, source: str) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"{source}: key {key!r}: {item['msg']}")
    return "\n".join(lines)


def load_settings(path: Path | None = None, *, state_dir: Path | None = None) -> Settings:
    """Load and validate the configuration.

    The state directory comes from, in order: `state_dir`, the file's `state_dir`, the
    WATCHER_STATE_DIR environment variable, `./var`.

    Raises:
        ConfigError: unreadable file, bad TOML, unknown key or bad value (the key is named).
    """
    data: dict[str, object] = {}
    source = "embedded defaults"
    if path is not None:
        source = str(path)
        try:
            with path.open("rb") as handle:
                data = tomllib.load(handle)
        except OSError as exc:
            msg = f"cannot read config file {path}: {exc.strerror or exc}"
            raise ConfigError(msg) from exc
        except UnicodeDecodeError as exc:
            msg = f"{path}: not UTF-8 (byte {exc.start}: {exc.object[exc.start : exc.start + 4]!r})"
            raise ConfigError(msg) from exc
        except tomllib.TOMLDecodeError as exc:
            msg = f"{path}: not valid TOML: {exc}"
            raise ConfigError(msg) from exc
    if state_dir is not None:
        data["state_dir"] = str(state_dir)
    elif "state_dir" not in data and os.environ.get(STATE_DIR_ENV):
        data["state_dir"] = os.environ[STATE_DIR_ENV]
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from exc
    _check_model_path(settings.llm.model, source)
    return settings


def _check_model_path(value: str, source: str) -> None:
    """`llm.model` as a path must name an existing file (aliases are resolved later)."""
    text = value.strip()
    if text.lower() == "none" or text == "gemma3-270m":
        return
    path = Path(text).expanduser()
    if not path.exists():
        msg = (
            f"{source}: key 'llm.model': {text!r}: no such file (a .gguf path, gemma3-270m or none)"
        )
        raise ConfigError(msg)
    if not path.is_file():
        msg = f"{source}: key 'llm.model': {text!r}: not a regular file"
        raise ConfigError(msg)
