"""Configuration: one TOML file validated by pydantic; every value has a default.

A bad file or value stops start-up with a `ConfigError` naming the key and the rule (exit 2).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from actors.runtime import KernelSettings
from messages.errors import ConfigError

STATE_DIR_ENV = "WATCHER_STATE_DIR"
DEFAULT_STATE_DIR = Path("var")


class Section(BaseModel):
    """Base of every config table: frozen, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class KernelConfig(Section):
    """`[kernel]`: mailboxes, supervision and shutdown bounds (ARCHITECTURE §2)."""

    mailbox_capacity: int = Field(1024, ge=1)
    fairness_batch: int = Field(64, ge=1)
    max_restarts: int = Field(3, ge=0)
    restart_window_s: float = Field(5.0, gt=0)
    restart_backoff_s: float = Field(0.0, ge=0)
    phase_timeout_s: float = Field(5.0, gt=0)

    def settings(self) -> KernelSettings:
        """The kernel's own settings record."""
        return KernelSettings(**self.model_dump())


class IngestionConfig(Section):
    """`[ingestion]`: what a valid draw is and how the inbox is watched."""

    mod: int = Field(1000, ge=2)
    """Draw values lie in [0, mod)."""
    rescan_interval_s: float = Field(5.0, gt=0)
    """Safety-net rescan of the inbox, in case a file event was missed."""
    watch_step_ms: int = Field(1, ge=1, le=1000)
    """watchfiles' step: with 1 ms a rename is seen in ~2 ms, with the default in ~70 ms."""


class TriggerConfig(Section):
    """`[trigger]`: when Chapter 13 files a request (the skeleton rule: every N draws)."""

    request_every_n_draws: int = Field(10, ge=1)
    request_type: Literal["learning_loop", "selfplay_retrain", "pipeline_rerun"] = "pipeline_rerun"
    learning_scope: Literal["steps_3_5_6", "steps_5_6", "step_6_only"] = "step_6_only"


class WatcherConfig(Section):
    """`[watcher]`: the spool, the decision thresholds and the kill switch."""

    rescan_interval_s: float = Field(5.0, gt=0)
    auto_proceed_confidence: float = Field(0.70, ge=0, le=1)
    escalate_below_confidence: float = Field(0.50, ge=0, le=1)
    max_retries_per_step: int = Field(3, ge=0)
    max_retries_per_run: int = Field(10, ge=0)
    halt_file: str = "halt"
    """Path of the kill-switch file, relative to the state directory."""
    step_jobs: dict[str, str] = Field(
        default_factory=lambda: {
            "1": "sieve",
            "2": "scorer_meta",
            "3": "full_scoring",
            "4": "ml_meta",
            "5": "train",
            "6": "predict",
            "selfplay": "selfplay",
        }
    )
    """Which registry job runs each pipeline step ("1".."6") and selfplay."""


class LLMConfig(Section):
    """`[llm]`: the local model (or none: the heuristic advisor answers)."""

    model: str = "none"
    """A GGUF path, the alias `gemma3-270m`, or `none` for the heuristic advisor only."""
    n_ctx: int = Field(4096, ge=256)
    n_threads: int = Field(2, ge=1)
    n_gpu_layers: int = Field(0, ge=-1)
    max_tokens: int = Field(512, ge=16)
    temperature: float = Field(0.0, ge=0, le=2)
    seed: int = 0
    while_leased: Literal["heuristic", "wait"] = "heuristic"
    """How decision requests are answered while the GPU lease is out."""
    reload: Literal["eager", "lazy"] = "lazy"
    release_deadline_s: float = Field(30.0, gt=0)


class GPUConfig(Section):
    """`[gpu]`: job running limits."""

    max_cpu_jobs: int = Field(2, ge=1)
    kill_grace_s: float = Field(5.0, ge=0)
    output_tail_kb: int = Field(64, ge=1)
    vram_wait_s: float = Field(60.0, ge=0)


class LoggingConfig(Section):
    """`[logging]`: level of the JSON log file."""

    level: Literal["debug", "info", "warning", "error"] = "info"


class Settings(Section):
    """The whole configuration; `Settings()` is the embedded default."""

    state_dir: Path = DEFAULT_STATE_DIR
    test_mode: bool = False
    kernel: KernelConfig = KernelConfig()
    ingestion: IngestionConfig = IngestionConfig()
    trigger: TriggerConfig = TriggerConfig()
    watcher: WatcherConfig = WatcherConfig()
    llm: LLMConfig = LLMConfig()
    gpu: GPUConfig = GPUConfig()
    logging: LoggingConfig = LoggingConfig()


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
        except tomllib.TOMLDecodeError as exc:
            msg = f"{path}: not valid TOML: {exc}"
            raise ConfigError(msg) from exc
    if state_dir is not None:
        data["state_dir"] = str(state_dir)
    elif "state_dir" not in data and os.environ.get(STATE_DIR_ENV):
        data["state_dir"] = os.environ[STATE_DIR_ENV]
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from exc
