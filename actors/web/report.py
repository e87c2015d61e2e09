"""`watcher report --out DIR`: the console's charts as one static page (and a PNG), no daemon.

The page is self-contained (uPlot, the chart code and the data are inlined), so it opens from
a ticket attachment with no server and no network. It is drawn by the very chart code the
dashboard uses (static/charts.js) from the very read model (series, readmodel), so the report
and the live page agree. The PNG is that page rendered by headless chromium (`--screenshot`):
the same pixels a person sees, rather than a second plotting stack (matplotlib) that would have
to be kept in step. Without chromium the HTML is written and the PNG is skipped, saying so.
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actors.web import readmodel
from actors.web.feed import AuditFeed
from actors.web.series import LoopSeries, audit_markers, decision_markers

if TYPE_CHECKING:
    from actors.config import Settings
    from actors.paths import StatePaths

STATIC = Path(__file__).parent / "static"
# Chromium renders, then runs the page's script, then shoots: 5 s of virtual time is plenty.
SCREENSHOT_TIMEOUT_S = 90
REPORT_POINTS = 2000


@dataclass(frozen=True)
class Report:
    """What was written."""

    html: Path
    data: Path
    png: Path | None
    note: str
    """Why there is no PNG (empty when there is one)."""


def collect(settings: Settings, paths: StatePaths) -> dict[str, Any]:
    """The report's data: the loop's series and markers, decisions, requests, pending items."""
    feed = AuditFeed(paths.audit)
    feed.load()
    series = LoopSeries()
    if not paths.db.exists():
        msg = f"no store at {paths.db}: has the daemon ever run on {paths.root}?"
        raise FileNotFoundError(msg)
    conn = readmodel.connect_readonly(paths.db)
    try:
        series.refresh(conn)
        loop = series.window(None, None, REPORT_POINTS)
        loop["markers"] = sorted(
            decision_markers(conn) + audit_markers(series, list(feed.markers)),
            key=lambda m: (m["x"], m["at"]),
        )
        data = {
            "state_dir": str(paths.root),
            "generated_at": datetime.now(UTC).isoformat(),
            "loop": loop,
            "decisions": readmodel.decisions(conn, limit=50),
            "requests": readmodel.requests(conn, paths, limit=50),
            "pending": readmodel.pending_items(conn, paths, settings),
            "audit_counts": {f"{e}/{v}": n for (e, v), n in sorted(feed.counts.items())},
        }
    finally:
        conn.close()
    plain: dict[str, Any] = json.loads(json.dumps(data, default=str))
    return plain


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_text(row.get(c)))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body or '<tr><td>none</td></tr>'}</table>"


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return "" if value is None else str(value)


def render_html(data: dict[str, Any]) -> str:
    """The whole page, with everything inlined (user text escaped)."""
    uplot_js = (STATIC / "vendor" / "uPlot.iife.min.js").read_text(encoding="utf-8")
    uplot_css = (STATIC / "vendor" / "uPlot.min.css").read_text(encoding="utf-8")
    charts_js = (STATIC / "charts.js").read_text(encoding="utf-8")
    style = (STATIC / "style.css").read_text(encoding="utf-8")
    # JSON inside <script>: "</" would end the element early; "<\/" is the same JSON string.
    payload = json.dumps(data["loop"]).replace("</", "<\\/")
    loop = data["loop"]
    scored = sum(loop.get("scored", []))
    markers = _table(loop.get("markers", []), ["x", "kind", "label", "at"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Watcher report</title>
<style>{uplot_css}
{style}</style></head>
<body><header><strong>Watcher report</strong>
<span>{html.escape(data["state_dir"])} — {html.escape(data["generated_at"])}</span></header>
<main>
<h2>The loop over time</h2>
<p class="muted">{loop.get("total", 0)} draws with figures, {scored} scored
(each point: {loop.get("bucket", 1)} draw(s)); markers: {len(loop.get("markers", []))}</p>
<div id="chart-hit" class="chart"></div><div id="chart-cal" class="chart"></div>
<h2>Awaits a person</h2>
{_table(data["pending"], ["kind", "id", "title", "reasons", "since"])}
<h2>Markers</h2>{markers}
<h2>Chapter 13 decisions (newest 50)</h2>
{_table(data["decisions"], ["draw_index", "rule", "action", "outcome", "status", "reasons"])}
<h2>Requests (newest 50)</h2>
{_table(data["requests"], ["request_id", "request_type", "status", "reason", "at"])}
</main>
<script id="loop-data" type="application/json">{payload}</script>
<script>{uplot_js}</script>
<script>{charts_js}</script>
<script>
"use strict";
const data = JSON.parse(document.getElementById("loop-data").textContent);
window.watcher = {{ data: data }};
if (data.x.length) {{
  WatcherCharts.build(data, document.getElementById("chart-hit"),
    document.getElementById("chart-cal"), 1200, () => data, null);
}} else {{
  document.getElementById("chart-hit").textContent = "no draws with figures yet";
}}
document.body.dataset.rendered = "yes";
</script>
</body></html>
"""


def find_chromium() -> str | None:
    """A headless-capable chromium on PATH, if any."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(page: Path, png: Path, browser: str) -> str:
    """Render `page` to `png` with headless chromium; the error, or "" on success."""
    argv = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        "--virtual-time-budget=5000",
        "--window-size=1280,1800",
        f"--screenshot={png}",
        page.resolve().as_uri(),
    ]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=SCREENSHOT_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"chromium failed: {exc}"
    if done.returncode != 0 or not png.exists() or png.stat().st_size == 0:
        return f"chromium exited {done.returncode}: {done.stderr.strip()[-300:]}"
    return ""


def write_report(settings: Settings, paths: StatePaths, out: Path, *, png: bool = True) -> Report:
    """Write report.html, report.json and (with chromium) report.png into `out`."""
    data = collect(settings, paths)
    out.mkdir(parents=True, exist_ok=True)
    page = out / "report.html"
    page.write_text(render_html(data), encoding="utf-8")
    data_file = out / "report.json"
    data_file.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if not png:
        return Report(page, data_file, None, "PNG not asked for (--no-png)")
    browser = find_chromium()
    if browser is None:
        return Report(page, data_file, None, "no chromium on PATH (apt-get install chromium)")
    image = out / "report.png"
    error = screenshot(page, image, browser)
    return Report(page, data_file, None if error else image, error)
