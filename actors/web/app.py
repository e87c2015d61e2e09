"""The console's ASGI app: pages, JSON, server-sent events, `/metrics`, `/healthz`, actions.

Read-only routes never change state. Write actions (POST /api/actions/NAME) are off unless a
token is configured; they need it in the `X-Watcher-Token` header (compared in constant time),
a JSON body, and no cross-site origin (`Origin` must be this server, `Sec-Fetch-Site` must not
be `cross-site`): a form on another site cannot send a custom header or a JSON body without a
CORS preflight, which this app never grants. Each action is audited with who and what.

Pages are rendered with Jinja2's autoescape: a reason, a draw id or a rule someone typed is
text, never markup. Live regions re-fetch their own fragment when an audit record arrives.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import anyio
import anyio.to_thread
import jinja2
import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from actors import status as status_module
from actors.web import readmodel
from actors.web.actions import ID, ActionError, run_action
from actors.web.metrics import render
from actors.web.series import LoopSeries, audit_markers, decision_markers

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

    from prometheus_client import CollectorRegistry
    from starlette.requests import Request

    from actors.config import Settings
    from actors.notify.notifier import Notifier
    from actors.paths import StatePaths
    from actors.web.feed import AuditFeed

log = structlog.get_logger("web")

STATIC = __import__("pathlib").Path(__file__).parent / "static"
TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("actors.web", "templates"),
    autoescape=True,
    # Optional keys (a stopped daemon has no actors) render as empty, not as errors.
    undefined=jinja2.ChainableUndefined,
)
# Ids go into URLs percent-encoded; a lone surrogate (JSON allows "\ud800") must not crash a page.
TEMPLATES.filters["urlpart"] = lambda v: quote(str(v), safe="", errors="backslashreplace")
TEMPLATES.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, default=str, sort_keys=True)
# An idle SSE stream sends a comment this often, so proxies and browsers keep it open.
SSE_KEEPALIVE_S = 15.0
MAX_BODY = 16 * 1024


@dataclass
class Console:
    """What the app reads: settings, paths, the feed, the metrics registry."""

    settings: Settings
    paths: StatePaths
    feed: AuditFeed
    registry: CollectorRegistry
    config_path: Path | None = None
    audit: Callable[..., Awaitable[None]] | None = None
    """Writes the console's own audit record for an action (Services.audit)."""
    shutdown: anyio.Event = field(default_factory=anyio.Event)
    series: LoopSeries = field(default_factory=LoopSeries)
    token: str = ""
    notifier: Notifier | None = None
    stopped: anyio.Event | None = None
    """Set when the server has returned (None: no server runs)."""

    def read(self, func: Callable[[sqlite3.Connection], Any]) -> Awaitable[Any]:
        """Run `func(read-only connection)` in a worker thread."""

        def call() -> Any:
            if not self.paths.db.exists():
                return func(_EMPTY)
            conn = readmodel.connect_readonly(self.paths.db)
            try:
                return func(conn)
            finally:
                conn.close()

        return anyio.to_thread.run_sync(call)


def _empty_connection() -> sqlite3.Connection:
    import sqlite3

    return sqlite3.connect(":memory:", check_same_thread=False)


_EMPTY = _empty_connection()


def _page(name: str, request: Request, **context: Any) -> HTMLResponse:
    fragment = request.query_params.get("fragment") == "1"
    template = TEMPLATES.get_template(name)
    html = template.render(fragment=fragment, page=name.removesuffix(".html"), **context)
    return HTMLResponse(
        # A file name that is not UTF-8 (a lone surrogate after decoding) shows escaped, not 500.
        html.encode("utf-8", "backslashreplace"),
        headers={
            # Everything the page loads is served from here: no CDN, no inline script.
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
            "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


def create_app(console: Console) -> Any:
    """The console's app (one per running system)."""

    def overview_data(conn: sqlite3.Connection) -> dict[str, Any]:
        data = status_module.collect(console.settings)
        data["pool"] = readmodel.current_pool(conn)
        data["pending"] = readmodel.pending_items(conn, console.paths, console.settings)
        data["leases"] = readmodel.leases(conn)[:10]
        data["decisions"] = readmodel.decisions(conn, limit=10)
        return data

    async def overview(request: Request) -> Response:
        data = await console.read(overview_data)
        return _page("overview.html", request, data=data, writes=bool(console.token))

    async def api_overview(request: Request) -> Response:
        return JSONResponse(_jsonable(await console.read(overview_data)))

    async def loop(request: Request) -> Response:
        return _page("loop.html", request, writes=bool(console.token))

    # Rendered chart payloads by (range, points, store version, audit records read): a page
    # that refreshes on every event asks again and again for data that has not changed.
    cache: dict[tuple[Any, ...], bytes] = {}

    def loop_body(conn: sqlite3.Connection, lo: float | None, hi: float | None, n: int) -> bytes:
        console.series.refresh(conn)
        key = (lo, hi, n, console.series.version, console.feed.records)
        body = cache.get(key)
        if body is None:
            body = json.dumps(loop_data(conn, lo, hi, n), separators=(",", ":")).encode()
            if len(cache) >= 32:
                cache.clear()
            cache[key] = body
        return body

    def loop_data(
        conn: sqlite3.Connection, lo: float | None, hi: float | None, n: int
    ) -> dict[str, Any]:
        data = console.series.window(lo, hi, n)
        markers = decision_markers(conn) + audit_markers(console.series, list(console.feed.markers))
        if lo is not None or hi is not None:
            low, high = lo if lo is not None else -1e18, hi if hi is not None else 1e18
            markers = [m for m in markers if low <= m["x"] <= high]
        data["markers_total"] = len(markers)
        data["markers"] = sorted(thin_markers(markers), key=lambda m: (m["x"], m["at"]))
        return data

    async def api_loop(request: Request) -> Response:
        params = request.query_params
        try:
            lo = float(params["lo"]) if params.get("lo") else None
            hi = float(params["hi"]) if params.get("hi") else None
            points = int(params.get("points") or console.settings.web.chart_points)
        except ValueError as exc:
            raise HTTPException(400, f"lo, hi and points must be numbers: {exc}") from exc
        points = max(10, min(points, console.settings.web.chart_points))
        body = await console.read(lambda c: loop_body(c, lo, hi, points))
        return Response(body, media_type="application/json")

    async def requests_page(request: Request) -> Response:
        rows = await console.read(lambda c: readmodel.requests(c, console.paths))
        return _page("requests.html", request, rows=rows)

    async def api_requests(request: Request) -> Response:
        return JSONResponse(
            _jsonable(await console.read(lambda c: readmodel.requests(c, console.paths)))
        )

    def detail_data(conn: sqlite3.Connection, rid: str) -> dict[str, Any] | None:
        found = readmodel.request_detail(conn, console.paths, rid)
        if found is None:
            return None
        cid = found["correlation_id"] or rid
        found["audit"] = readmodel.lines_with(console.paths.audit, cid)
        found["logs"] = readmodel.lines_with(console.paths.log_file, cid, limit=300)
        found["duration_s"] = readmodel.span_seconds(found["audit"])
        return found

    async def _detail(request: Request) -> dict[str, Any]:
        rid = request.path_params["rid"]
        if not ID.match(rid):
            raise HTTPException(404, "no such request")
        found = await console.read(lambda c: detail_data(c, rid))
        if found is None:
            raise HTTPException(404, f"no request {rid}")
        return dict(found)

    async def request_page(request: Request) -> Response:
        return _page("request.html", request, r=await _detail(request))

    async def api_request(request: Request) -> Response:
        return JSONResponse(_jsonable(await _detail(request)))

    def pending_data(conn: sqlite3.Connection) -> list[dict[str, Any]]:
        return readmodel.pending_items(conn, console.paths, console.settings)

    async def pending_page(request: Request) -> Response:
        items = await console.read(pending_data)
        return _page("pending.html", request, items=items, writes=bool(console.token))

    async def api_pending(request: Request) -> Response:
        return JSONResponse(_jsonable(await console.read(pending_data)))

    async def metrics(request: Request) -> Response:
        body = await anyio.to_thread.run_sync(render, console.registry)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    async def healthz(request: Request) -> Response:
        notifier = console.notifier
        return JSONResponse(
            {
                "ok": True,
                "audit_records": console.feed.records,
                "notifier": None if notifier is None else {"ready": notifier.ready},
            }
        )

    async def events(request: Request) -> Response:
        return StreamingResponse(
            _sse(console),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def action(request: Request) -> Response:
        return await _action(console, request)

    routes = [
        Route("/", overview),
        Route("/loop", loop),
        Route("/requests", requests_page),
        Route("/requests/{rid:str}", request_page),
        Route("/pending", pending_page),
        Route("/api/overview", api_overview),
        Route("/api/loop", api_loop),
        Route("/api/requests", api_requests),
        Route("/api/requests/{rid:str}", api_request),
        Route("/api/pending", api_pending),
        Route("/api/actions/{name:str}", action, methods=["POST"]),
        Route("/events", events),
        Route("/metrics", metrics),
        Route("/healthz", healthz),
        Route("/favicon.ico", lambda _r: Response(status_code=204)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _error})
    return HostCheck(app, allowed_hosts(console.settings))


def allowed_hosts(settings: Settings) -> frozenset[str]:
    """Host names a request may name: loopback, the bound host, and `public_url`'s host."""
    from urllib.parse import urlsplit

    from actors.web.server import parse_bind

    hosts = {"127.0.0.1", "localhost", "::1"}
    bound, _port = parse_bind(settings.web.bind)
    if bound not in ("0.0.0.0", "::"):
        hosts.add(bound.lower())
    if settings.web.public_url:
        public = urlsplit(settings.web.public_url).hostname
        if public:
            hosts.add(public.lower())
    return frozenset(hosts)


class HostCheck:
    """Refuses requests whose Host header names another host (DNS rebinding: a page on
    evil.example whose name resolves to 127.0.0.1 must not read the dashboard)."""

    def __init__(self, app: Any, hosts: frozenset[str]) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """ASGI entry: pass a request on when its Host is one of ours."""
        if scope["type"] == "http":
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            name = host.rsplit("]", 1)[0].lstrip("[") if host.startswith("[") else host
            name = name.rsplit(":", 1)[0] if not host.startswith("[") else name
            if name.lower() not in self.hosts:
                response = PlainTextResponse(
                    f"400: Host {host!r} is not this dashboard's; set [web] public_url to"
                    " serve it under another name\n",
                    status_code=400,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _error(request: Request, exc: Exception) -> Response:
    code = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": detail}, status_code=code)
    return PlainTextResponse(f"{code}: {detail}\n", status_code=code)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


async def _sse(console: Console) -> AsyncIterator[bytes]:
    stream = console.feed.subscribe()
    yield b"retry: 1000\n: connected\n\n"
    with stream:
        while not console.shutdown.is_set():
            with anyio.move_on_after(SSE_KEEPALIVE_S) as scope:
                record = await _next(stream, console.shutdown)
            if scope.cancelled_caught:
                yield b": keep-alive\n\n"
                continue
            if record is None:
                return
            event = {
                key: record.get(key)
                for key in (
                    "record_id",
                    "recorded_at",
                    "entity",
                    "entity_id",
                    "event",
                    "from_state",
                    "to_state",
                    "correlation_id",
                )
            }
            yield f"event: audit\ndata: {json.dumps(event, default=str)}\n\n".encode()


async def _next(stream: Any, shutdown: anyio.Event) -> dict[str, Any] | None:
    result: list[dict[str, Any] | None] = [None]
    async with anyio.create_task_group() as tg:

        async def receive() -> None:
            try:
                result[0] = await stream.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                result[0] = None
            tg.cancel_scope.cancel()

        async def stop() -> None:
            await shutdown.wait()
            tg.cancel_scope.cancel()

        tg.start_soon(receive)
        tg.start_soon(stop)
    return result[0]


# Markers sent per chart request: beyond this a zoomed-out chart is a wall of lines anyway.
MAX_MARKERS = 400
# Which markers survive thinning first: a person's items and the loop's turns, then routine.
_MARKER_RANK = {
    "escalation": 0,
    "change_alarm": 0,
    "no_signal": 0,
    "halted": 0,
    "promoted": 1,
    "rolled_back": 1,
    "retrain": 1,
    "request_failed": 1,
    "rejected": 2,
    "refresh": 3,
    "request_completed": 3,
}


def thin_markers(markers: list[dict[str, Any]], limit: int = MAX_MARKERS) -> list[dict[str, Any]]:
    """At most `limit` markers, the most important kinds first (zooming in shows the rest)."""
    if len(markers) <= limit:
        return markers
    ranked = sorted(markers, key=lambda m: _MARKER_RANK.get(str(m["kind"]), 2))
    return ranked[:limit]


def _refuse(code: int, why: str) -> Response:
    return JSONResponse({"ok": False, "error": why}, status_code=code)


def same_origin(request: Request) -> str | None:
    """Why a request is cross-origin, or None when it comes from this server's pages."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return f"Sec-Fetch-Site is {site!r}: write actions only come from this dashboard"
    origin = request.headers.get("origin")
    if origin is not None:
        host = request.headers.get("host", "")
        if origin not in (f"http://{host}", f"https://{host}"):
            return f"Origin {origin!r} is not this dashboard (http://{host})"
    return None


async def _action(console: Console, request: Request) -> Response:
    name = request.path_params["name"]
    if not console.token:
        return _refuse(403, "write actions are off: set [web] token (or token_file) to enable")
    cross = same_origin(request)
    if cross is not None:
        return _refuse(403, cross)
    given = request.headers.get("x-watcher-token", "")
    if not given or not hmac.compare_digest(given.encode(), console.token.encode()):
        return _refuse(401, "missing or wrong X-Watcher-Token")
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return _refuse(415, "send the action's fields as application/json")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        return _refuse(413, f"body is {len(raw)} bytes; at most {MAX_BODY}")
    try:
        fields = json.loads(raw or b"{}")
    except ValueError:
        return _refuse(400, "body is not JSON")
    if not isinstance(fields, dict):
        return _refuse(400, "body must be a JSON object")
    try:
        result = await run_action(console.paths.root, console.config_path, name, fields)
    except ActionError as exc:
        return _refuse(400, str(exc))
    client = request.client
    who = {
        "via": "web",
        "client": f"{client.host}:{client.port}" if client else "unknown",
        "user_agent": request.headers.get("user-agent", "")[:200],
    }
    log.info("web.action", action=name, fields=fields, exit_code=result.exit_code, **who)
    if console.audit is not None:
        target = str(fields.get("id") or name)
        entity = "decision" if name in ("approve", "reject") else "system"
        await console.audit(
            actor="web",
            entity=entity,
            entity_id=target,
            event=f"web_{name}",
            correlation_id=target,
            who=who,
            fields=fields,
            exit_code=result.exit_code,
            output=result.output[-1000:],
        )
    console.feed.poke()
    return JSONResponse(
        {"ok": result.ok, "exit_code": result.exit_code, "output": result.output},
        status_code=200 if result.ok else 409,
    )
