"""One error shape for the whole API: ``{"error": {"code": "...", "message": "..."}}``.

Codes (HTTP status):

=====================  ======  ==============================================================
``invalid_parameter``  400     a query parameter is malformed or out of range (message says which)
``too_many_points``    400     the answer would exceed ``max_points``: add a bucket or narrow it
``unauthorized``       401     missing or wrong bearer token
``not_found``          404     no such path
``meter_not_found``    404     the meter id is valid but no meter with it was ever seen
``command_not_found``  404     no command with that id in the audit log
``method_not_allowed`` 405
``payload_too_large``  413     a request body over ``max_body_bytes``
``invalid_meter_id``   422     a meter id is 12 decimal digits
``validation_error``   422     any other request that does not fit the OpenAPI description
``busy``               429     too many background commands or live clients
``internal``           500     a bug: logged with its traceback, never shown to the client
``store_unavailable``  503     the database cannot be reached (``Retry-After`` is set)
``not_ready``          503     ``/ready`` only
=====================  ======  ==============================================================

Command outcomes are the exception: ``POST .../commands`` always answers with the MQTT
command-response shape (see ``routes_commands``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ivy_gateway.domain.store import StoreError, StoreUnavailable

__all__ = ["ApiError", "CatchAll", "error_body", "error_response", "install_error_handlers"]

log = logging.getLogger(__name__)

_STATUS_CODES = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}


class ApiError(Exception):
    """Raised by route code; becomes the JSON error envelope with ``status``."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}, **extra}


def error_response(
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    body = json.dumps(error_body(code, message, **extra), separators=(",", ":"))
    return Response(body, status, headers=headers, media_type="application/json")


def _describe(errors: list[Any]) -> str:
    """``query.wait: Input should be a valid boolean; body: ...`` from pydantic's errors."""
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


async def _on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), exc.headers)


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, "validation_error", _describe(list(exc.errors())))


async def _on_store_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, StoreUnavailable):
        log.warning("HTTP %s %s: store unavailable: %s", request.method, request.url.path, exc)
        return error_response(
            503, "store_unavailable", "the database is unreachable", {"Retry-After": "5"}
        )
    log.error("HTTP %s %s: store error: %s", request.method, request.url.path, exc)
    return error_response(500, "internal", "the store failed (see the gateway log)")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StoreError, _on_store_error)
    app.add_middleware(CatchAll)


class CatchAll:
    """Any other exception: log it with its traceback and answer 500 ``internal``.

    A middleware rather than an ``Exception`` handler: Starlette re-raises after calling
    that one, so the server would log the stack a second time.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("HTTP %s %s failed", scope.get("method"), scope.get("path"))
            if started:
                return  # mid-stream: the connection just ends
            response = error_response(500, "internal", "internal error (see the gateway log)")
            await response(scope, receive, send)
