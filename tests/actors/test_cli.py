"""The command line's first contact: help everywhere, global options anywhere, errors that name
the key, the value and the rule, and refusals instead of silent surprises."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

import pytest

from actors.system import build_parser, main
from tests.e2e.conftest import run_cli

if TYPE_CHECKING:
    from pathlib import Path


def command_paths(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    """Every subcommand path of the parser tree (`("policy", "show")`, ...)."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found.append((*prefix, name))
                found += command_paths(child, (*prefix, name))
    return found


def test_every_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    """`--help` of the top level and of every subcommand (`logs` and `logs tail` included)
    prints a usage and exits 0."""
    paths = [(), *command_paths(build_parser()), ("logs", "tail")]
    assert ("logs",) in paths
    for path in paths:
        with pytest.raises(SystemExit) as info:
            main([*path, "--help"])
        assert info.value.code == 0, path
        assert "usage:" in capsys.readouterr().out


def test_global_options_are_accepted_after_the_subcommand(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`status --state-dir X` and `logs tail --state-dir X` read X, as the options before would."""
    assert main(["status", "--state-dir", str(tmp_path)]) == 0
    assert str(tmp_path) in capsys.readouterr().out
    log = tmp_path / "logs" / "watcher.jsonl"
    log.parent.mkdir()
    line = {"timestamp": "2026-01-01T00:00:00Z", "level": "info", "event": "e", "logger": "x"}
    log.write_text(json.dumps({**line, "correlation_id": "abcdef0123456789"}) + "\n")
    assert main(["logs", "tail", "--state-dir", str(tmp_path), "--json"]) == 0
    assert "abcdef0123456789" in capsys.readouterr().out


def test_correlation_id_accepts_the_shown_prefix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The human log shows 8 characters of the id: those 8 select the flow's lines; an id that
    matches nothing says so."""
    log = tmp_path / "logs" / "watcher.jsonl"
    log.parent.mkdir()
    base = {"timestamp": "2026-01-01T00:00:00Z", "level": "info", "logger": "x"}
    log.write_text(
        json.dumps({**base, "event": "mine", "correlation_id": "abcdef0123456789"})
        + "\n"
        + json.dumps({**base, "event": "other", "correlation_id": "ffffff0123456789"})
        + "\n"
    )
    assert main(["--state-dir", str(tmp_path), "logs", "tail", "--correlation-id", "abcdef01"]) == 0
    out = capsys.readouterr().out
    assert "mine" in out
    assert "other" not in out
    assert main(["--state-dir", str(tmp_path), "logs", "tail", "--correlation-id", "0badf00d"]) == 0
    assert "no line of the log" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["submit", "pipeline_rerun", "--steps", "7"], "steps: [7]: steps must be within 1..6"),
        (["submit", "pipeline_rerun", "--steps", "1,x"], "steps: '1,x': must be comma-separated"),
        (["submit", "selfplay_retrain", "--episodes", "900"], "episodes: 900: Input should be"),
        (
            ["submit", "learning_loop", "--episodes", "3"],
            "--episodes does not apply to learning_loop (only to selfplay_retrain)",
        ),
        (
            ["submit", "selfplay_retrain", "--scope", "steps_5_6"],
            "--scope does not apply to selfplay_retrain (only to learning_loop)",
        ),
    ],
)
def test_submit_errors_name_key_value_and_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    """A bad flag value is `key: value: rule` (no pydantic internals); a flag of another
    request type is refused, not ignored; nothing is filed."""
    assert main(["--state-dir", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert "pydantic" not in err
    assert not list((tmp_path / "watcher_requests" / "new").glob("*.json"))


@pytest.mark.parametrize("argv", [["halt"], ["resume"], ["submit", "selfplay_retrain"]])
def test_commands_on_a_missing_state_dir_refuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """halt/resume/submit on a state dir that does not exist exit 2 and create nothing."""
    missing = tmp_path / "typo"
    assert main([*argv, "--state-dir", str(missing)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not missing.exists()


def test_config_errors_exit_2_naming_the_file_or_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A non-UTF-8 config names the file; `llm.model` at a missing file names the key."""
    binary = tmp_path / "latin1.toml"
    binary.write_bytes(b"# caf\xe9\n")
    assert main(["--state-dir", str(tmp_path), "--config", str(binary), "status"]) == 2
    assert f"{binary}: not UTF-8" in capsys.readouterr().err
    model = tmp_path / "model.toml"
    model.write_text('[llm]\nmodel = "/no/such/model.gguf"\n')
    assert main(["--state-dir", str(tmp_path), "--config", str(model), "status"]) == 2
    assert "key 'llm.model': '/no/such/model.gguf': no such file" in capsys.readouterr().err


def test_dry_run_exits_3_when_a_request_would_be_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plain --dry-run over a spool holding a bad request: it says so and exits 3."""
    new = tmp_path / "watcher_requests" / "new"
    new.mkdir(parents=True)
    (new / "r-1.json").write_text("{not json")
    assert main(["--state-dir", str(tmp_path), "--dry-run"]) == 3
    out = capsys.readouterr().out
    assert "r-1.json: would be rejected" in out
    assert "needs a person" in out


def test_help_and_late_options_as_subprocesses(tmp_path: Path) -> None:
    """As a user types them: `logs --help` exits 0; `status --state-dir X` reads X."""
    helped = run_cli("actors.system", "logs", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "tail" in helped.stdout
    status = run_cli("actors.system", "status", "--state-dir", str(tmp_path))
    assert status.returncode == 0, status.stderr
    assert str(tmp_path) in status.stdout
