"""Running the API in-process with uvicorn, inside the gateway's event loop.

``HttpServer`` binds the socket itself, so a port in use is a clean ``HttpPortInUse`` (uvicorn
would ``sys.exit``) and port 0 gives the bound port back at once. It never installs signal
handlers: the gateway's CLI owns SIGINT/SIGTERM. Logging goes through the root logger
(``log_config=None``); the access log is off unless asked for. With ``cert_file`` and
``key_file`` (PEM) it serves HTTPS on the same port.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import socket
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

import uvicorn
from starlette.types import ASGIApp

__all__ = ["HttpPortInUse", "HttpServer", "serve_http"]

log = logging.getLogger(__name__)


class HttpPortInUse(OSError):
    def __init__(self, host: str, port: int) -> None:
        super().__init__(errno.EADDRINUSE, f"HTTP port {host}:{port} is already in use")
        self.host = host
        self.port = port


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise HttpPortInUse(host, port) from None
        raise
    return sock


class HttpServer:
    """``port = await server.start()`` … ``await server.stop()`` (or ``async with``)."""

    def __init__(
        self,
        app: ASGIApp,
        host: str = "127.0.0.1",
        port: int = 3000,
        *,
        access_log: bool = False,
        graceful_timeout_s: float = 5.0,
        cert_file: Path | None = None,
        key_file: Path | None = None,
    ) -> None:
        if (cert_file is None) != (key_file is None):
            raise ValueError("HTTPS needs both cert_file and key_file")
        self.app = app
        self.tls = cert_file is not None
        self.host = host
        self.wanted_port = port
        self.port: int | None = None
        self._config = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,
            access_log=access_log,
            ws="none",
            server_header=False,
            timeout_graceful_shutdown=math.ceil(graceful_timeout_s),
            ssl_certfile=str(cert_file) if cert_file is not None else None,
            ssl_keyfile=str(key_file) if key_file is not None else None,
        )
        self._graceful_timeout_s = graceful_timeout_s
        self._server: uvicorn.Server | None = None
        self._socket: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Bind and start serving; returns the bound port."""
        if self._server is not None:
            raise RuntimeError("the HTTP server is running already")
        sock = _bind(self.host, self.wanted_port)
        # startup / main_loop / shutdown rather than serve(): serve() would take over
        # SIGINT/SIGTERM, which belong to the gateway's CLI.
        server = uvicorn.Server(self._config)
        self._config.load()
        server.lifespan = self._config.lifespan_class(self._config)
        try:
            await server.startup(sockets=[sock])
        except BaseException:
            sock.close()
            raise
        self._socket, self._server = sock, server
        self.port = sock.getsockname()[1]
        self._task = asyncio.create_task(server.main_loop(), name="http-server")
        scheme = "https" if self.tls else "http"
        log.info("HTTP API listening on %s://%s:%d", scheme, self.host, self.port)
        return self.port

    async def stop(self) -> None:
        """Stop accepting, end live streams, let requests finish (bounded), close. Idempotent."""
        server, task = self._server, self._task
        if server is None or task is None:
            return
        self._server = self._task = None
        runtime = getattr(getattr(self.app, "state", None), "ivy_runtime", None)
        if runtime is not None:
            await runtime.close(self._graceful_timeout_s)
        server.should_exit = True
        await asyncio.gather(task, return_exceptions=True)
        await server.shutdown(sockets=[self._socket] if self._socket else None)
        self._socket = None

    async def wait_stopped(self) -> None:
        """Return when the server loop ends (after ``stop``)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def serve_http(
    app: ASGIApp,
    host: str,
    port: int,
    *,
    ready: asyncio.Event | None = None,
    on_bound: Callable[[int], None] | None = None,
    access_log: bool = False,
    graceful_timeout_s: float = 5.0,
) -> int:
    """Serve until cancelled, then stop cleanly and re-raise the cancellation.

    ``on_bound(port)`` and ``ready.set()`` are called once the socket listens (port 0 →
    a free port). Returns the bound port if the server loop ends by itself.
    """
    server = HttpServer(
        app, host, port, access_log=access_log, graceful_timeout_s=graceful_timeout_s
    )
    bound = await server.start()
    try:
        if on_bound is not None:
            on_bound(bound)
        if ready is not None:
            ready.set()
        await server.wait_stopped()
    finally:
        # Shielded, so a second cancellation cannot leave the socket open half-way.
        await asyncio.shield(server.stop())
    return bound
