"""The write actions' argv: a fixed vocabulary, ids that look like ids, no shell anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.web.actions import ID, ActionError, build_argv, command_args


def test_each_action_maps_to_its_cli_command() -> None:
    """approve/reject/resume/halt/submit are the CLI's own subcommands, values as arguments."""
    assert command_args("approve", {"id": "abc-1"}) == ["approve", "abc-1"]
    assert command_args("reject", {"id": "abc-1", "reason": "no"}) == [
        "reject", "abc-1", "--reason", "no"
    ]  # fmt: skip
    assert command_args("resume", {}) == ["resume"]
    assert command_args("halt", {"reason": "x; rm -rf /"}) == ["halt", "--reason", "x; rm -rf /"]
    assert command_args("submit", {"request_type": "learning_loop"})[:2] == [
        "submit", "learning_loop"
    ]  # fmt: skip
    argv = build_argv(Path("state"), None, "resume", {})
    assert argv[1:3] == ["-m", "actors.system"]
    assert Path(argv[4]).is_absolute()


@pytest.mark.parametrize(
    ("action", "fields", "says"),
    [
        ("drop_tables", {}, "unknown action"),
        ("reject", {"id": "abc"}, "needs a reason"),
        ("approve", {"id": "--config=/etc/passwd"}, "not a decision id"),
        ("submit", {"request_type": "rm"}, "request_type"),
        ("halt", {"reason": "x" * 5000}, "at most"),
    ],
)
def test_bad_actions_are_refused_naming_the_rule(
    action: str, fields: dict[str, str], says: str
) -> None:
    """Unknown actions, missing reasons, option-like ids, unknown types, huge text: refused."""
    with pytest.raises(ActionError, match=says):
        command_args(action, fields)


@given(st.text(max_size=200))
def test_only_id_shaped_text_reaches_approve(text: str) -> None:
    """Any text that is not id-shaped (e.g. starts with '-', holds '/' or spaces) is refused."""
    if ID.match(text):
        assert command_args("approve", {"id": text}) == ["approve", text]
        assert not text.startswith("-")
        assert "/" not in text
    else:
        with pytest.raises(ActionError):
            command_args("approve", {"id": text})
