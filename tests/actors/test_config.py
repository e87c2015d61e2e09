"""Configuration: embedded defaults, the state-dir precedence, errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.config import Settings, load_settings
from messages.errors import ConfigError


def test_defaults_load_with_no_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """No file, no environment: every value has its default, state dir ./var."""
    monkeypatch.delenv("WATCHER_STATE_DIR", raising=False)
    settings = load_settings()
    assert settings == Settings()
    assert settings.state_dir == Path("var")
    assert settings.watcher.auto_proceed_confidence == 0.70
    assert settings.kernel.settings().max_restarts == 3


def test_state_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--state-dir beats the file, which beats WATCHER_STATE_DIR."""
    config = tmp_path / "w.toml"
    config.write_text('state_dir = "from-file"\n')
    monkeypatch.setenv("WATCHER_STATE_DIR", "from-env")
    assert load_settings().state_dir == Path("from-env")
    assert load_settings(config).state_dir == Path("from-file")
    assert load_settings(config, state_dir=tmp_path).state_dir == tmp_path


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ("[watcher]\nauto_proceed_confidence = 1.5\n", "watcher.auto_proceed_confidence"),
        ("[kernel]\nmailbox_capacity = 0\n", "kernel.mailbox_capacity"),
        ("[llm]\nwhile_leased = 'maybe'\n", "llm.while_leased"),
        ("[nonsense]\nx = 1\n", "nonsense"),
        ("[gpu]\nmax_cpu_jobs = 'two'\n", "gpu.max_cpu_jobs"),
    ],
)
def test_bad_values_are_reported_with_their_key(tmp_path: Path, toml: str, needle: str) -> None:
    """Each bad value or unknown key fails with the file name and the dotted key."""
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert needle in str(info.value)
    assert str(config) in str(info.value)


def test_bad_toml_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    """Unparseable TOML and an unreadable file are ConfigErrors that name the file."""
    broken = tmp_path / "broken.toml"
    broken.write_text("[watcher\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(broken)
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "missing.toml")
