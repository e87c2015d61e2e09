"""The console end to end: the daemon as a subprocess, a real headless browser, real notifications.

One daemon (then its restarts) serves every test of this module, in order: 40 draws and a
few single draws go through the real loop (the full pipeline, then a refresh per draw, each
scored against the pool made before it); Debian's chromium, driven by Playwright, opens the
pages; `/metrics` is scraped and parsed with prometheus_client's parser; a loopback HTTP
receiver stands in for a webhook (Apprise's json:// target). Then the daemon restarts with a
stricter confidence floor, so the next refresh escalates: the pending page shows it without a
reload, the receiver gets one notification, and a second restart (with the notifier's cursor
rewound, as after a crash) sends nothing more. Screenshots land in the module's tmp dir.

No sleeps: every wait polls a file, the store or the page with a deadline.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.synthetic import synthetic_records
from tests.e2e.conftest import ROOT, drop, wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HISTORY = 40
SINGLES = 4
"""Single draws after the history: each is scored, each files a refresh."""
TOKEN = "t0ken-for-tests"
DEADLINE_S = 60.0
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    """A port free on loopback now (the daemon binds it a moment later; restarts reuse it)."""
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Receiver:
    """A loopback HTTP server that records every POST body (a webhook's stand-in)."""

    def __init__(self) -> None:
        bodies: list[dict[str, Any]] = []
        self.bodies = bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(size)
                try:
                    bodies.append(json.loads(raw))
                except ValueError:
                    bodies.append({"raw": raw.decode("utf-8", "replace")})
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def about(self, needle: str) -> list[dict[str, Any]]:
        """Bodies that mention `needle`."""
        return [b for b in self.bodies if needle in json.dumps(b)]

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


class Daemon:
    """The daemon on one state directory, restartable with another config."""

    def __init__(self, state_dir: Path, port: int, receiver: Receiver) -> None:
        self.state_dir = state_dir
        self.port = port
        self.receiver = receiver
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{port}"
        self.starts = 0

    def config(self, extra: str = "") -> Path:
        """Write the config: the test loop's cadence, the web port, the token, the webhook."""
        path = self.state_dir / f"watcher-{self.starts}.toml"
        path.write_text(
            f"""
[trigger]
retrain_after_n_draws = 1
window = 10
cooldown_draws = 2
cooldown_s = 0

[web]
bind = "127.0.0.1:{self.port}"
token = "{TOKEN}"

[notify]
urls = ["json://127.0.0.1:{self.receiver.port}/hook"]
events = ["request/escalation", "decision/escalate", "system/halted"]
{extra}
"""
        )
        return path

    def start(self, extra: str = "") -> None:
        """Start it and wait until the dashboard answers and the notifier has caught up."""
        config = self.config(extra)
        self.starts += 1
        with (self.state_dir / f"daemon-{self.starts}.out").open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "actors.system", "--state-dir", str(self.state_dir),
                 "--config", str(config)],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"daemon exited {self.proc.returncode}: {self.output()}")
            try:
                health = json.loads(get(self.url + "/healthz"))
            except OSError:
                return False
            return bool(health["ok"] and (health["notifier"] or {}).get("ready"))

        wait_for(ready, timeout=DEADLINE_S, what="the dashboard's /healthz")

    def stop(self) -> int:
        """SIGTERM, then its exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"daemon did not stop on SIGTERM: {self.output()}")

    def output(self) -> str:
        """The tail of the current run's output."""
        return (self.state_dir / f"daemon-{self.starts}.out").read_text()[-3000:]

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows from the store, read-only beside the daemon."""
        db = self.state_dir / "state.db"
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
            try:
                return [tuple(r) for r in conn.execute(sql, params).fetchall()]
            except sqlite3.OperationalError:
                return []

    def feed(self, draws: list[dict[str, Any]], name: str) -> None:
        """Drop draws in one file; wait until the loop registered a pool after the last."""
        drop(self.state_dir / "inbox", name, {"draws": draws})
        last = draws[-1]["draw_id"]
        wait_for(
            lambda: self.query(
                "SELECT 1 FROM trigger_pools WHERE after_draw_id = ? AND stale = 0", last
            ),
            timeout=DEADLINE_S,
            what=f"a pool after {last}: {self.output()}",
        )


def get(url: str, **headers: str) -> str:
    """GET a URL (loopback), the body as text."""
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as reply:
        return str(reply.read().decode("utf-8"))


def records() -> list[dict[str, Any]]:
    """The planted history and the single draws after it (lcg32, seed 4242)."""
    draws = synthetic_records("lcg32", 4242, HISTORY + SINGLES + 4)
    return [json.loads(r.model_dump_json(exclude={"schema_version"})) for r in draws]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """The daemon after the history and SINGLES single draws went through the loop."""
    state_dir = tmp_path_factory.mktemp("console")
    receiver = Receiver()
    running = Daemon(state_dir, free_port(), receiver)
    running.start()
    draws = records()
    running.feed(draws[:HISTORY], "history.json")
    for index in range(HISTORY, HISTORY + SINGLES):
        running.feed([draws[index]], f"d-{index:04d}.json")
    running.draws = draws  # type: ignore[attr-defined]
    try:
        yield running
    finally:
        if running.proc is not None and running.proc.poll() is None:
            running.stop()
        receiver.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium under Playwright (skipped, saying why, when it cannot be had)."""
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH: `make test` installs Debian's chromium (apt-get)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.skip(f"playwright is not installed ({exc}); `make setup` installs it")
    with sync_playwright() as pw:
        # The browser is Debian's, never one Playwright downloads.
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page; console errors fail the test (bypass_csp: Playwright's waits use eval)."""
    context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.set_default_timeout(DEADLINE_S * 1000)
    yield tab
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def shot(page: Any, daemon: Daemon, name: str) -> None:
    """A full-page screenshot under the module's tmp dir."""
    path = daemon.state_dir / "screenshots" / f"{name}.png"
    path.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5_000


def test_loop_chart_holds_the_scored_draws_and_the_markers(daemon: Daemon, page: Any) -> None:
    """The loop page's chart data has every draw with figures, the scored ones, and markers."""
    page.goto(daemon.url + "/loop")
    page.wait_for_function("() => window.watcher && window.watcher.data && window.watcher.chart")
    data = page.evaluate("() => window.watcher.data")
    stored = daemon.query("SELECT COUNT(*) FROM trigger_diagnostics")[0][0]
    scored = daemon.query(
        "SELECT COUNT(*) FROM trigger_scores WHERE stream = 'real' AND hit IS NOT NULL"
    )[0][0]
    assert scored >= SINGLES
    assert data["total"] == stored
    assert sum(data["scored"]) == scored
    assert len(data["x"]) == stored  # far below the point budget: one point per draw
    decisions = daemon.query("SELECT decision_id, rule FROM trigger_decisions")
    marked = {m["id"] for m in data["markers"]}
    assert {d for d, _rule in decisions} <= marked
    kinds = {m["kind"] for m in data["markers"]}
    assert kinds & {"refresh", "retrain"}, kinds
    # The marker table lists them, as links to their evidence.
    assert page.locator("#markers tbody tr").count() == len(data["markers"])
    # uPlot drew the series: its canvas exists and the legend names them.
    assert page.locator("#chart-hit canvas").count() >= 1
    assert "hit rate" in page.locator("#chart-hit").inner_text()
    shot(page, daemon, "loop")
    # Zoom (what a drag does): the page asks the server for that range only.
    loads = page.evaluate("() => window.watcher.chartLoads")
    page.evaluate("() => window.watcher.chart.setScale('x', {min: 40, max: 44})")
    page.wait_for_function(f"() => window.watcher.chartLoads > {loads}")
    zoomed = page.evaluate("() => window.watcher.data")
    assert zoomed["x"]
    assert all(40 <= x <= 44 for x in zoomed["x"])
    assert all(40 <= m["x"] <= 44 for m in zoomed["markers"])


def test_overview_and_requests_pages_show_the_store(daemon: Daemon, page: Any) -> None:
    """Overview shows the running daemon; Requests lists every finished request, linked."""
    page.goto(daemon.url + "/")
    assert "running" in page.locator(".card").first.inner_text()
    shot(page, daemon, "overview")
    # Halt and resume from the overview, with the token (the reason comes from a prompt).
    page.on("dialog", lambda dialog: dialog.accept("maintenance <b>window</b>"))
    page.fill("#token", TOKEN)
    page.click("button[data-action='halt']")
    wait_for(lambda: (daemon.state_dir / "halt").exists(), timeout=DEADLINE_S, what="halt")
    page.wait_for_function("() => document.getElementById('live').innerText.includes('HALTED by')")
    assert "maintenance <b>window</b>" in page.locator("#live").inner_text()  # shown as text
    page.click("button[data-action='resume']")
    wait_for(lambda: not (daemon.state_dir / "halt").exists(), timeout=DEADLINE_S, what="resume")
    page.goto(daemon.url + "/requests")
    finished = daemon.query("SELECT request_id FROM request_outcomes")
    assert finished
    text = page.locator("#requests").inner_text()
    assert all(rid in text for (rid,) in finished)
    shot(page, daemon, "requests")
    page.click(f"a[href='/requests/{finished[0][0]}']")
    page.wait_for_selector("table.audit")
    assert page.locator("table.audit tr").count() > 3  # audit records by correlation id
    assert "heuristic" in page.locator("table.advice").inner_text()  # who advised, and why
    assert " / " in page.locator("table.jobs").inner_text()  # node / GPU / shard
    shot(page, daemon, "request")


def scrape(daemon: Daemon) -> dict[str, float]:
    """Every sample of /metrics, parsed by prometheus_client: name{labels} -> value."""
    out = {}
    for family in text_string_to_metric_families(get(daemon.url + "/metrics")):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


def total(samples: dict[str, float], name: str) -> float:
    """The sum of one metric's samples over its labels."""
    return sum(v for k, v in samples.items() if k.split("{")[0] == name)


METRICS = (
    "watcher_draws_ingested_total",
    "watcher_draws_quarantined_total",
    "watcher_draws_scored_total",
    "watcher_hit_rate",
    "watcher_brier_score",
    "watcher_change_alarms_total",
    "watcher_requests_total",
    "watcher_job_duration_seconds_count",
    "watcher_lease_duration_seconds_count",
    "watcher_llm_decision_seconds_count",
    "watcher_llm_fallbacks_total",
    "watcher_mailbox_depth",
    "watcher_dead_letters_total",
)


def test_metrics_are_present_and_move_as_draws_and_requests_go_through(daemon: Daemon) -> None:
    """Each listed metric is in /metrics; draws, scores, requests and jobs move with a draw."""
    before = scrape(daemon)
    missing = [name for name in METRICS if not any(k.split("{")[0] == name for k in before)]
    assert missing == []
    drop(daemon.state_dir / "inbox", "broken.json", "{not json")
    wait_for(
        lambda: (
            total(scrape(daemon), "watcher_draws_quarantined_total")
            > total(before, "watcher_draws_quarantined_total")
        ),
        timeout=DEADLINE_S,
        what="the broken file's quarantine",
    )
    index = HISTORY + SINGLES
    daemon.feed([daemon.draws[index]], f"d-{index:04d}.json")  # type: ignore[attr-defined]
    wait_for(
        lambda: (
            total(scrape(daemon), "watcher_requests_total")
            > total(before, "watcher_requests_total")
        ),
        timeout=DEADLINE_S,
        what="the refresh request to finish",
    )
    after = scrape(daemon)
    for name in (
        "watcher_draws_ingested_total",
        "watcher_draws_scored_total",
        "watcher_requests_total",
        "watcher_job_duration_seconds_count",
        "watcher_llm_decision_seconds_count",
        "watcher_llm_fallbacks_total",
    ):
        assert total(after, name) > total(before, name), name
    # Leases: step 6 is a CPU job (no lease); the full pipeline's GPU steps took them.
    assert total(after, "watcher_lease_duration_seconds_count") >= 1
    assert 0 <= total(after, "watcher_hit_rate") <= 1


def test_write_actions_refuse_without_the_token_and_cross_origin(daemon: Daemon) -> None:
    """No token, a wrong token, a cross-site origin: 401/403, and nothing changes."""
    url = daemon.url + "/api/actions/halt"

    def post(headers: dict[str, str], body: bytes = b"{}") -> int:
        request = urllib.request.Request(url, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return int(reply.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    json_type = {"Content-Type": "application/json"}
    assert post(json_type) == 401
    assert post({**json_type, "X-Watcher-Token": "wrong"}) == 401
    good = {**json_type, "X-Watcher-Token": TOKEN}
    assert post({**good, "Origin": "http://evil.example"}) == 403
    assert post({**good, "Sec-Fetch-Site": "cross-site"}) == 403
    assert post({**good, "Content-Type": "text/plain"}) == 415
    assert not (daemon.state_dir / "halt").exists()


def test_escalation_appears_live_resume_needs_the_token_and_notifies_once(
    daemon: Daemon, page: Any
) -> None:
    """A restart makes the next refresh escalate: the open page shows it without a reload;
    resume is refused without the token and works with it; the webhook hears it exactly once,
    even after another restart that re-reads the audit trail."""
    page.goto(daemon.url + "/pending")
    page.wait_for_selector("#nothing-pending")
    page.evaluate("() => { window.__loadedOnce = 'yes'; }")
    daemon.stop()
    # Any verdict below full confidence now escalates: the next step 6 will.
    daemon.start("[watcher]\nescalate_below_confidence = 1.0\n")
    index = HISTORY + SINGLES + 1
    drop(
        daemon.state_dir / "inbox",
        f"d-{index:04d}.json",
        {"draws": [daemon.draws[index]]},  # type: ignore[attr-defined]
    )
    page.wait_for_selector("li.item")
    assert page.evaluate("() => window.__loadedOnce") == "yes"  # the same page: no reload

    def escalated() -> list[str]:
        return [
            json.loads(line)["entity_id"]
            for line in (daemon.state_dir / "audit.jsonl").read_text().splitlines()
            if '"escalation"' in line and '"entity":"request"' in line
        ]

    rid = wait_for(escalated, timeout=DEADLINE_S, what=f"the escalation: {daemon.output()}")[0]
    wait_for(lambda: daemon.receiver.about(rid), timeout=DEADLINE_S, what="the notification")
    note = daemon.receiver.about(rid)
    assert len(note) == 1
    assert f"{daemon.url}/requests/{rid}" in json.dumps(note[0])
    shot(page, daemon, "pending")

    # Resume without the token: refused, the item stays.
    button = page.locator("button[data-action='resume']").first
    button.click()
    page.wait_for_selector("#action-result.bad")
    assert "401" in page.locator("#action-result").inner_text()
    assert json.loads(get(daemon.url + "/api/pending"))  # still waiting for a person
    page.fill("#token", TOKEN)
    page.locator("button[data-action='resume']").first.click()
    page.wait_for_selector("#action-result.ok")
    audit = (daemon.state_dir / "audit.jsonl").read_text()
    assert '"event":"web_resume"' in audit.replace(" ", "")

    # Resumed, step 6 runs again and escalates again: a second escalation, a second message.
    def escalations() -> int:
        return sum(
            1
            for line in (daemon.state_dir / "audit.jsonl").read_text().splitlines()
            if '"escalation"' in line and rid in line and '"entity":"request"' in line
        )

    wait_for(lambda: escalations() >= 2, timeout=DEADLINE_S, what="the second escalation")
    wait_for(lambda: len(daemon.receiver.about(rid)) >= 2, timeout=DEADLINE_S, what="message 2")

    # Restart with the notifier's cursor rewound (as if it crashed before saving it): both
    # escalations are read again, and neither is sent again.
    daemon.stop()
    sent = escalations()
    with closing(sqlite3.connect(daemon.state_dir / "state.db")) as conn:
        conn.execute("UPDATE notify_cursor SET audit_offset = 0")
        conn.commit()
    daemon.start("[watcher]\nescalate_below_confidence = 1.0\n")
    rows = daemon.query("SELECT status FROM notifications WHERE entity_id = ?", rid)
    assert [r[0] for r in rows] == ["sent"] * sent
    assert len(daemon.receiver.about(rid)) == sent


def test_report_draws_the_same_charts_without_the_daemon(daemon: Daemon, page: Any) -> None:
    """With the daemon stopped, `report --out DIR` writes a self-contained page with the
    chart data of every draw, and a PNG of it (chromium)."""
    daemon.stop()
    out = daemon.state_dir / "report"
    result = subprocess.run(
        [sys.executable, "-m", "actors.system", "--state-dir", str(daemon.state_dir),
         "report", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads((out / "report.json").read_text())
    stored = daemon.query("SELECT COUNT(*) FROM trigger_diagnostics")[0][0]
    assert data["loop"]["total"] == stored
    assert {m["kind"] for m in data["loop"]["markers"]} & {"refresh", "retrain", "escalation"}
    assert (out / "report.png").stat().st_size > 10_000
    page.goto((out / "report.html").as_uri())
    page.wait_for_selector("body[data-rendered='yes']")
    assert page.evaluate("() => window.watcher.data.x.length") == stored
    assert page.locator("#chart-hit canvas").count() >= 1
    shot(page, daemon, "report")
