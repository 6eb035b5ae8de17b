"""``POST /api/v1/meters/{id}/commands`` and ``GET /api/v1/commands/{id}``.

The body is the MQTT ``command/request`` (``id`` optional: one is generated) and the answer
is always the MQTT ``command/response`` shape, so one client library reads both. The HTTP
status mirrors ``errorCode``:

==================  ====  ===========================================================
success             200
``invalid_command`` 400   also for a body that is not JSON (``id`` is then "")
``unauthorized``    403   the service refused the caller (a bad token is a 401 before)
``meter_offline``   409   the meter is known or not, but no session holds it now
``busy``            429   meter busy, relay rate limit, or too many background commands
``internal``        500
``meter_rejected``  502   the meter answered with an error (its code is in ``result``)
``timeout``         504   the meter did not answer in time
==================  ====  ===========================================================

``?wait=false`` validates the request, starts it in the background and answers 202 with the
id; ``GET /api/v1/commands/{id}`` then shows it (``pending`` until the audit log has it).

No ``from __future__ import annotations`` here: FastAPI reads the route signatures at
run time, and they name dependencies that are local to the route factory.
"""

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from ivy_gateway.adapters.mqtt import payloads
from ivy_gateway.domain.commands import Command, CommandResult, ErrorCode
from ivy_gateway.domain.store import CommandRecord, CommandStatus
from ivy_gateway.services.commands import InvalidCommand, to_json_value

from .deps import ApiDeps
from .errors import ApiError
from .query import parse_meter_id
from .routes_meters import MeterIdPath, json_response
from .schemas import CommandAccepted, CommandRecordOut, CommandRequest, CommandResponse, ErrorOut

__all__ = ["STATUS_BY_ERROR_CODE", "CommandJobs", "command_routes"]

log = logging.getLogger(__name__)

STATUS_BY_ERROR_CODE: dict[ErrorCode, int] = {
    ErrorCode.INVALID_COMMAND: 400,
    ErrorCode.UNAUTHORIZED: 403,
    ErrorCode.METER_OFFLINE: 409,
    ErrorCode.BUSY: 429,
    ErrorCode.INTERNAL: 500,
    ErrorCode.METER_REJECTED: 502,
    ErrorCode.TIMEOUT: 504,
}

_MAX_ID_LENGTH = 128


class CommandJobs:
    """``?wait=false`` commands in flight: bounded, visible to GET before the audit has them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.running: dict[str, tuple[Command, int]] = {}  # id → (command, started at ms)
        self._tasks: set[asyncio.Task[None]] = set()

    def start(
        self, command: Command, started_ms: int, run: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        entry = (command, started_ms)
        self.running[command.id] = entry
        task = asyncio.get_running_loop().create_task(run(), name=f"http-command-{command.id}")
        self._tasks.add(task)

        def finished(done: asyncio.Task[None]) -> None:
            self._tasks.discard(done)
            if self.running.get(command.id) is entry:
                del self.running[command.id]

        task.add_done_callback(finished)

    async def close(self, grace_s: float) -> None:
        """Let running commands finish for ``grace_s``, then cancel the rest."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


def _response_body(result: CommandResult, ts_ms: int) -> bytes:
    return payloads.command_response(result, ts_ms)


def _answer(result: CommandResult, ts_ms: int) -> Response:
    status = (
        200
        if result.success
        else STATUS_BY_ERROR_CODE.get(result.error_code or ErrorCode.INTERNAL, 500)
    )
    return Response(_response_body(result, ts_ms), status, media_type="application/json")


def _record_json(record: CommandRecord) -> dict[str, Any]:
    response: dict[str, Any] | None = None
    if record.status is not CommandStatus.PENDING:
        result = CommandResult(
            record.id,
            record.status is CommandStatus.SUCCEEDED,
            record.result,
            record.error,
            record.error_code,
        )
        response = json.loads(
            _response_body(result, record.finished_at_ms or record.requested_at_ms)
        )
    return {
        "id": record.id,
        "meterId": record.meter.value,
        "method": record.method.value,
        "params": to_json_value(record.params),
        "requestedBy": record.requested_by,
        "requestedAt": record.requested_at_ms,
        "finishedAt": record.finished_at_ms,
        "state": record.status.value,
        "response": response,
    }


def _pending_json(command: Command, ts_ms: int) -> dict[str, Any]:
    return {
        "id": command.id,
        "meterId": command.meter.value,
        "method": command.method.value,
        "params": to_json_value(command.params),
        "requestedBy": command.requested_by,
        "requestedAt": ts_ms,
        "finishedAt": None,
        "state": "pending",
        "response": None,
    }


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "payload_too_large", f"a command body is at most {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, "payload_too_large", f"a command body is at most {limit} bytes")
    return bytes(body)


def command_routes(
    deps: ApiDeps, jobs: CommandJobs, writer: Callable[..., Any], reader: Callable[..., Any]
) -> APIRouter:
    """``writer`` checks the bearer token and names the caller; ``reader`` guards reads."""
    router = APIRouter(prefix="/api/v1", tags=["commands"])
    body_schema = CommandRequest.model_json_schema(by_alias=True)  # $defs stay inline

    @router.post(
        "/meters/{meter_id}/commands",
        response_model=CommandResponse,
        status_code=200,
        summary="Run a command on a meter (waits for the result unless wait=false)",
        responses={
            202: {"model": CommandAccepted, "description": "wait=false: running in the background"},
            400: {"model": CommandResponse, "description": "invalid_command"},
            401: {"model": ErrorOut, "description": "missing or wrong bearer token"},
            409: {"model": CommandResponse, "description": "meter_offline"},
            413: {"model": ErrorOut, "description": "payload_too_large"},
            422: {"model": ErrorOut, "description": "invalid_meter_id"},
            429: {"model": CommandResponse, "description": "busy"},
            502: {"model": CommandResponse, "description": "meter_rejected"},
            504: {"model": CommandResponse, "description": "timeout"},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": body_schema}},
            }
        },
    )
    async def post_command(
        meter_id: MeterIdPath,
        request: Request,
        requested_by: Annotated[str, Depends(writer)],
        wait: Annotated[bool, Query(description="false: answer 202 at once")] = True,
    ) -> Response:
        meter = parse_meter_id(meter_id)
        raw = await _read_body(request, deps.options.max_body_bytes)
        now = deps.now_ms()
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _answer(InvalidCommand(f"malformed JSON: {exc}").to_result(), now)
        if isinstance(data, dict) and data.get("id") is None:
            data["id"] = uuid.uuid4().hex
        raw_id = data.get("id") if isinstance(data, dict) else None
        if isinstance(raw_id, str) and len(raw_id) > _MAX_ID_LENGTH:
            error = InvalidCommand(f"id is longer than {_MAX_ID_LENGTH} characters")
            return _answer(error.to_result(), now)
        try:
            command = deps.parser.parse_command(meter.value, data, requested_by)
        except InvalidCommand as exc:
            return _answer(exc.to_result(), now)
        if wait:
            result = await _run(command)
            return _answer(result, deps.now_ms())
        if len(jobs.running) >= jobs.limit:
            busy = CommandResult.failed(command.id, ErrorCode.BUSY, "too many commands running")
            return _answer(busy, now)
        jobs.start(command, now, lambda: _run_in_background(command))
        location = f"/api/v1/commands/{command.id}"
        return json_response(
            {"id": command.id, "state": "pending", "location": location},
            202,
            {"Location": location},
        )

    async def _run(command: Command) -> CommandResult:
        try:
            return await deps.runner.run(command)
        except Exception as exc:
            log.exception("command %s (%s) on %s failed", command.id, command.method, command.meter)
            return CommandResult.failed(
                command.id, ErrorCode.INTERNAL, f"internal error ({type(exc).__name__})"
            )

    async def _run_in_background(command: Command) -> None:
        await _run(command)  # the outcome goes to the audit log (and MQTT, for relays)

    @router.get(
        "/commands/{command_id}",
        dependencies=[Depends(reader)],
        response_model=CommandRecordOut,
        responses={404: {"model": ErrorOut, "description": "command_not_found"}},
        summary="A command's state and result (audit log)",
    )
    async def get_command(command_id: str) -> Response:
        if len(command_id) > _MAX_ID_LENGTH:
            raise ApiError(404, "command_not_found", "no such command")
        record = await deps.store.command(command_id)
        if record is not None:
            return json_response(_record_json(record))
        pending = jobs.running.get(command_id)
        if pending is not None:
            return json_response(_pending_json(*pending))
        raise ApiError(404, "command_not_found", f"no command with id {command_id!r}")

    return router
