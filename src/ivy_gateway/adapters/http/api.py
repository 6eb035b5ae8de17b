"""``create_api(deps)``: the FastAPI application of CONTRACT.md "HTTP API".

::

    /health /ready /metrics            probes (open; /metrics follows protect_reads)
    /api/v1/meters[/{id}[/readings|/events]]   reads (open unless protect_reads)
    /api/v1/meters/{id}/commands       POST, bearer token when tokens are configured
    /api/v1/commands/{id}  /api/v1/gateway  /api/v1/live (SSE)
    /api/v1/openapi.json  /api/v1/docs
    /  /dashboard/{file}               the dashboard (static; routes_dashboard.py)

Every error is ``{"error": {"code", "message"}}`` (``errors.py``); command outcomes keep the
MQTT response shape (``routes_commands.py``).

No ``from __future__ import annotations`` here: FastAPI reads the route signatures at
run time, and they name dependencies that are local to the route factory.
"""

import logging
from typing import Annotated

from fastapi import Depends, FastAPI
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ivy_gateway import __version__

from .deps import ApiDeps
from .errors import ApiError, install_error_handlers
from .routes_capture import capture_routes
from .routes_commands import CommandJobs, command_routes
from .routes_dashboard import dashboard_routes
from .routes_live import live_routes
from .routes_meters import meter_routes
from .routes_system import system_routes

__all__ = ["ApiRuntime", "create_api"]

log = logging.getLogger(__name__)

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ivy-gateway"'}


class ApiRuntime:
    """State that outlives one request: background commands and live clients."""

    def __init__(self, deps: ApiDeps) -> None:
        self.deps = deps
        self.jobs = CommandJobs(deps.options.max_background_commands)

    async def close(self, grace_s: float = 5.0) -> None:
        """End live streams and give background commands ``grace_s`` to finish."""
        if self.deps.feed is not None:
            self.deps.feed.close()
        await self.jobs.close(grace_s)


def create_api(deps: ApiDeps) -> FastAPI:
    app = FastAPI(
        title="IVY gateway API",
        version=__version__,
        description="Meters, history, commands and live events of one IVY gateway.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    install_error_handlers(app)
    runtime = ApiRuntime(deps)
    app.state.ivy_runtime = runtime

    bearer = HTTPBearer(auto_error=False, description="an API token (http.tokens)")
    tokens = deps.tokens if deps.tokens is not None and len(deps.tokens) > 0 else None
    if tokens is None:
        log.warning(
            "HTTP: no http.tokens configured, so anyone who reaches the API may send commands"
        )

    async def authenticate(credentials: HTTPAuthorizationCredentials | None) -> str:
        if tokens is None:
            return "http"
        if credentials is None or not credentials.credentials:
            raise ApiError(401, "unauthorized", "a bearer token is required", _CHALLENGE)
        name = await tokens.verify(credentials.credentials)
        if name is None:
            raise ApiError(401, "unauthorized", "the bearer token is not valid", _CHALLENGE)
        return f"http:{name}"

    async def guarded_writer(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> str:
        """Who is asking (``requested_by`` in the audit log), after the token check."""
        return await authenticate(credentials)

    async def open_writer() -> str:
        return "http"

    writer = guarded_writer if tokens is not None else open_writer

    async def guarded_reader(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        await authenticate(credentials)

    async def open_reader() -> None:
        """Reads are open (the default): no token, and none in the OpenAPI document."""

    reader = guarded_reader if deps.options.protect_reads else open_reader

    probes, gateway = system_routes(deps, reader)
    app.include_router(probes)
    app.include_router(meter_routes(deps), dependencies=[Depends(reader)])
    app.include_router(command_routes(deps, runtime.jobs, writer, reader))
    app.include_router(gateway)
    app.include_router(live_routes(deps, reader))
    if deps.capture is not None:
        app.include_router(capture_routes(deps.capture, writer, reader))
    app.include_router(dashboard_routes())
    return app
