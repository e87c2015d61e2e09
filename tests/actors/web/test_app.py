"""The console inside a real system (in-process, both backends): security, actions, SSE, metrics.

The server listens on a free loopback port; requests go over real HTTP from a worker thread
(urllib), as a browser's would.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import pytest
from prometheus_client.parser import text_string_to_metric_families

from actors.config import Settings
from actors.store import connect
from actors.testing import harness_settings, open_test_system
from actors.trigger import decision_store
from actors.watcher.halt import HaltState, write_halt
from actors.web.server import open_socket, parse_bind
from messages.base import utcnow

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from actors.testing import Harness

pytestmark = pytest.mark.anyio

TOKEN = "unit-token"
HOSTILE = "<script>alert('x')</script><img src=x onerror=alert(1)>"


@asynccontextmanager
async def console(tmp_path: Path, **web: Any) -> AsyncIterator[tuple[Harness, str]]:
    """A running system with the console on a free loopback port; yields (harness, base URL)."""
    settings = harness_settings(tmp_path, web={"bind": "127.0.0.1:0", **web})
    async with open_test_system(tmp_path, settings=settings, once=False) as h:
        info = json.loads((tmp_path / "web.json").read_text())
        yield h, str(info["url"]).rstrip("/")


def _lower(headers: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


def _http(
    url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(
        url, data=data, method="POST" if data is not None else "GET", headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return int(reply.status), _lower(reply.headers), reply.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return int(exc.code), _lower(exc.headers), exc.read().decode("utf-8")


async def http(url: str, **kwargs: Any) -> tuple[int, dict[str, str], str]:
    """One HTTP exchange, off the event loop."""
    return await anyio.to_thread.run_sync(lambda: _http(url, **kwargs))


def seed_decision(state_dir: Path, decision_id: str, reason: str) -> None:
    """One Chapter 13 decision waiting for a person, as the trigger records it."""
    conn = connect(state_dir / "state.db")
    try:
        request = {
            "request_type": "pipeline_rerun",
            "request_id": decision_id,
            "source": "trigger",
            "reason": "Chapter 13: regime_shift (ESCALATE)",
        }
        decision_store.insert_decision(
            conn,
            decision_id=decision_id,
            draw_id="d-1",
            draw_index=1,
            correlation_id="cid-1",
            rule="regime_shift",
            action="full_pipeline",
            evidence={"rule": "regime_shift", "note": reason},
            outcome="ESCALATE",
            reasons=[reason],
            status="pending_approval",
            request_id=decision_id,
            request=request,
        )
    finally:
        conn.close()


def test_the_default_binds_loopback_only() -> None:
    """With no config the dashboard listens on 127.0.0.1:8787, never on every interface."""
    assert Settings().web.bind == "127.0.0.1:8787"
    assert parse_bind(Settings().web.bind) == ("127.0.0.1", 8787)
    sock = open_socket("127.0.0.1:0")
    try:
        assert sock.getsockname()[0] == "127.0.0.1"
    finally:
        sock.close()


async def test_pages_json_health_and_metrics_answer(tmp_path: Path) -> None:
    """Every page and API answers; pages carry a CSP with no third-party source; /metrics
    parses and has a mailbox depth per actor."""
    async with console(tmp_path) as (_h, url):
        for path in ("/", "/loop", "/requests", "/pending"):
            code, headers, body = await http(url + path)
            assert code == 200, (path, body[:300])
            assert headers["content-security-policy"].startswith("default-src 'self'")
            assert "http://" not in body.split("<main>")[0]  # no CDN in the page head
        for path in ("/api/overview", "/api/loop", "/api/requests", "/api/pending", "/healthz"):
            code, _headers, body = await http(url + path)
            assert code == 200, path
            json.loads(body)
        code, _headers, text = await http(url + "/metrics")
        assert code == 200
        families = {f.name: f for f in text_string_to_metric_families(text)}
        actors = {s.labels["actor"] for s in families["watcher_mailbox_depth"].samples}
        assert {"trigger", "watcher", "ingestion", "llm", "gpu", "bundle"} <= actors


async def test_writes_are_off_without_a_configured_token(tmp_path: Path) -> None:
    """No [web] token: every action is refused (403) and says how to enable it."""
    async with console(tmp_path) as (_h, url):
        code, _headers, body = await http(
            url + "/api/actions/halt",
            data=b"{}",
            headers={"Content-Type": "application/json", "X-Watcher-Token": ""},
        )
    assert code == 403
    assert "[web] token" in json.loads(body)["error"]
    assert not (tmp_path / "halt").exists()


async def test_approve_works_with_the_token_and_is_refused_without(tmp_path: Path) -> None:
    """Approve without (or with a wrong) token: 401, the decision still pending; with it: the
    CLI's approve files the request, and the console audits who asked."""
    seed_decision(tmp_path, "dec-1", "regime shift")
    async with console(tmp_path, token=TOKEN) as (_h, url):
        body = json.dumps({"id": "dec-1"}).encode()
        plain = {"Content-Type": "application/json"}
        for headers in (plain, {**plain, "X-Watcher-Token": "nope"}):
            code, _headers, _text = await http(
                url + "/api/actions/approve", data=body, headers=headers
            )
            assert code == 401
        assert not (tmp_path / "watcher_requests" / "new" / "dec-1.json").exists()
        code, _headers, text = await http(
            url + "/api/actions/approve", data=body, headers={**plain, "X-Watcher-Token": TOKEN}
        )
        assert code == 200, text
        assert json.loads(text)["ok"] is True
        code, _headers, text = await http(
            url + "/api/actions/approve", data=body, headers={**plain, "X-Watcher-Token": TOKEN}
        )
        assert code == 409  # the CLI says it is no longer pending
        assert "not pending approval" in json.loads(text)["output"]
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    web = [r for r in audit if r["event"] == "web_approve"]
    assert web[0]["actor"] == "web"
    assert web[0]["detail"]["who"]["client"].startswith("127.0.0.1:")
    assert any(r["event"] == "approved" and r["entity_id"] == "dec-1" for r in audit)
    # Filed into the spool (the running watcher may already have claimed it).
    assert any(r["event"] == "filed" and r["entity_id"] == "dec-1" for r in audit)


async def test_cross_origin_and_malformed_writes_are_refused(tmp_path: Path) -> None:
    """A cross-site Origin or Sec-Fetch-Site, a non-JSON body, a bad id: refused, nothing done."""
    async with console(tmp_path, token=TOKEN) as (_h, url):
        good = {"Content-Type": "application/json", "X-Watcher-Token": TOKEN}
        cases = [
            ({**good, "Origin": "http://attacker.example"}, b"{}", 403),
            ({**good, "Sec-Fetch-Site": "cross-site"}, b"{}", 403),
            ({**good, "Content-Type": "application/x-www-form-urlencoded"}, b"a=b", 415),
            (good, b"not json", 400),
            (good, b"[]", 400),
        ]
        for headers, data, expected in cases:
            code, _h2, _t = await http(url + "/api/actions/halt", data=data, headers=headers)
            assert code == expected, (headers, data)
        code, _h2, text = await http(
            url + "/api/actions/approve", data=b'{"id": "../../etc/passwd"}', headers=good
        )
        assert code == 400
        assert "not a decision id" in json.loads(text)["error"]
        code, _h2, _t = await http(url + "/api/actions/rm-rf", data=b"{}", headers=good)
        assert code == 400
    assert not (tmp_path / "halt").exists()


TRAVERSALS = (
    "/static/../pyproject.toml",
    "/static/%2e%2e/%2e%2e/pyproject.toml",
    "/static/..%2f..%2fconfig.py",
    "/static/vendor/../../app.py",
    "/requests/..%2f..%2fstate.db",
    "/requests/%2e%2e",
    "/api/requests/..%2Fstate.db",
    "/../state.db",
    "/%2e%2e/state.db",
)


async def test_no_path_traversal(tmp_path: Path) -> None:
    """No URL reaches a file outside the static folder: 404, never the file's bytes."""
    async with console(tmp_path) as (_h, url):
        for path in TRAVERSALS:
            code, _headers, body = await http(url + path)
            assert code == 404, (path, body[:200])
            assert "[project]" not in body
            assert "SQLite format" not in body


async def test_user_text_is_escaped_on_every_page(tmp_path: Path) -> None:
    """A reason or halt text holding markup is shown as text: escaped, never executed."""
    seed_decision(tmp_path, "dec-x", HOSTILE)
    write_halt(tmp_path / "halt", HaltState(reason=HOSTILE, halted_at=utcnow()))
    async with console(tmp_path, token=TOKEN) as (_h, url):
        for path in ("/pending", "/", "/requests/dec-x"):
            code, _headers, body = await http(url + path)
            assert code == 200, path
            assert "<script>alert" not in body, path
            assert "<img src=x" not in body, path
            assert "&lt;script&gt;alert" in body, path


async def test_events_stream_audit_records_as_they_are_written(tmp_path: Path) -> None:
    """An SSE client gets an audit record written after it connected, within the stream."""
    async with console(tmp_path) as (h, url):
        seen: list[str] = []
        connected = anyio.Event()

        def listen(token: Any) -> None:
            with urllib.request.urlopen(url + "/events", timeout=30) as stream:
                for raw in stream:
                    line = raw.decode("utf-8").strip()
                    if line == ": connected":
                        anyio.from_thread.run_sync(connected.set, token=token)
                    if line.startswith("data:") and "sse-probe" in line:
                        seen.append(line)
                        return

        async with anyio.create_task_group() as tg:
            token = anyio.lowlevel.current_token()
            tg.start_soon(anyio.to_thread.run_sync, listen, token)
            await connected.wait()
            await h.services.audit(
                actor="test",
                entity="system",
                entity_id="sse-probe",
                event="probed",
                correlation_id="sse-probe",
            )
    assert len(seen) == 1
    assert json.loads(seen[0].removeprefix("data:"))["entity_id"] == "sse-probe"


async def test_a_port_in_use_leaves_the_daemon_running(tmp_path: Path) -> None:
    """When the port is taken the console says why in web.json and the system still runs."""
    taken = open_socket("127.0.0.1:0")
    try:
        bind = f"127.0.0.1:{taken.getsockname()[1]}"
        settings = harness_settings(tmp_path, web={"bind": bind})
        async with open_test_system(tmp_path, settings=settings, once=False) as h:
            info = json.loads((tmp_path / "web.json").read_text())
            assert info["url"] is None
            assert "cannot listen there" in info["error"]
            assert all(cell["alive"] for cell in h.system.kernel.snapshot())
    finally:
        taken.close()


async def test_a_foreign_host_header_is_refused(tmp_path: Path) -> None:
    """DNS rebinding: a request naming another host gets 400; loopback names are served."""
    async with console(tmp_path) as (_h, url):
        port = url.rsplit(":", 1)[1]
        code, _headers, body = await http(url + "/api/pending", headers={"Host": "evil.example"})
        assert code == 400
        assert "public_url" in body
        code, _headers, _body = await http(url + "/", headers={"Host": f"localhost:{port}"})
        assert code == 200
