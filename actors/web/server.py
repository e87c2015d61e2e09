"""Serve an ASGI app with Hypercorn on whichever event loop runs (asyncio or trio).

Hypercorn has one `serve` per loop (`hypercorn.asyncio.serve`, `hypercorn.trio.serve`); sniffio
says which loop this is. We bind the socket ourselves and hand Hypercorn its descriptor
(`fd://N`), so port 0 works and the caller learns the real port before the first request.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import TYPE_CHECKING, Any

import anyio
import sniffio
import structlog
from hypercorn.config import Config

from messages.errors import WatcherError

if TYPE_CHECKING:
    from anyio.abc import TaskStatus

log = structlog.get_logger("web.server")

# Open SSE streams end when the console shuts down; 1 s bounds the rest of a graceful stop
# (the kernel's shutdown phases are 5 s each, and the console stops before them).
GRACEFUL_S = 1.0


class BindError(WatcherError):
    """Raised when `[web] bind` is not HOST:PORT or the address cannot be bound."""


def parse_bind(bind: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 in brackets) as (host, port)."""
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit() or not host:
        msg = f"[web] bind {bind!r}: expected HOST:PORT, e.g. 127.0.0.1:8787"
        raise BindError(msg)
    number = int(port)
    if number > 65535:
        msg = f"[web] bind {bind!r}: port {number} is above 65535"
        raise BindError(msg)
    return host.strip("[]"), number


def open_socket(bind: str) -> socket.socket:
    """A listening TCP socket bound to `bind`."""
    host, port = parse_bind(bind)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        msg = f"[web] bind {bind!r}: cannot listen there: {exc.strerror or exc}"
        raise BindError(msg) from exc
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    """The http:// address a local browser uses for this socket."""
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


async def serve(
    app: Any,
    sock: socket.socket,
    shutdown: anyio.Event,
    *,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` on `sock` until `shutdown` is set; close the socket after."""
    config = Config()
    # Hypercorn adopts (and closes) the descriptor it is given: give it a duplicate.
    config.bind = [f"fd://{os.dup(sock.fileno())}"]
    config.graceful_timeout = GRACEFUL_S
    config.accesslog = None
    config.errorlog = logging.getLogger("web.hypercorn")
    # Hypercorn's own keep-alive is 5 s; 1 lets a stopping daemon drop idle connections soon.
    config.keep_alive_timeout = 1.0
    backend = sniffio.current_async_library()
    task_status.started()
    try:
        if backend == "trio":
            from hypercorn.trio import serve as trio_serve

            await trio_serve(app, config, shutdown_trigger=shutdown.wait)
        else:
            from hypercorn.asyncio import serve as asyncio_serve

            await asyncio_serve(app, config, shutdown_trigger=shutdown.wait)
    finally:
        sock.close()
