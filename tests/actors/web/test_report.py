"""`report`: a self-contained page from a state directory, user text kept inert."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

import pytest

from actors.config import Settings
from actors.paths import StatePaths
from actors.web import report
from actors.web.cli import run_report
from tests.actors.web.test_series import seed

if TYPE_CHECKING:
    from pathlib import Path


def test_the_page_holds_every_draw_and_keeps_hostile_text_inert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """report.html inlines the chart data of all draws; a '</script>' in a reason cannot end
    the data element; without chromium the PNG is skipped, saying why."""
    seed(tmp_path / "state.db", 30)
    hostile = "</script><script>alert(1)</script>"
    record = {
        "entity": "request",
        "event": "escalation",
        "entity_id": "r-1",
        "recorded_at": "2026-01-01T00:00:10+00:00",
        "detail": {"reason": hostile},
    }
    (tmp_path / "audit.jsonl").write_text(json.dumps(record) + "\n")
    monkeypatch.setattr(report, "find_chromium", lambda: None)
    made = report.write_report(Settings(state_dir=tmp_path), StatePaths(tmp_path), tmp_path / "out")
    assert made.png is None
    assert "no chromium" in made.note
    page = made.html.read_text()
    assert page.count("</script>") == 4  # the data, uPlot, charts.js, the page's own script
    assert "<\\/script>" in page
    data = json.loads(made.data.read_text())
    assert data["loop"]["total"] == 30
    assert any(m["kind"] == "escalation" for m in data["loop"]["markers"])
    assert "http://" not in page.split("<body>")[0].replace("http://www.w3.org", "")


def test_no_store_is_an_error_naming_the_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A state directory the daemon never ran on: exit 1 and a sentence saying so."""
    args = argparse.Namespace(out=tmp_path / "out", no_png=True)
    assert run_report(args, Settings(state_dir=tmp_path / "never")) == 1
    assert "has the daemon ever run" in capsys.readouterr().err
