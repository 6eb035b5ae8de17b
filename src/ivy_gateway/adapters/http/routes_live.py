"""``GET /api/v1/live``: Server-Sent Events from ``LiveFeed``.

Each SSE event is ``event: telemetry|status|event``, ``id: <sequence>`` and ``data:`` the same
JSON as the MQTT payload. A first comment (``: connected``) confirms the subscription;
FastAPI sends a ``: ping`` comment after 15 s without events so proxies keep the stream.
A client that falls ``queue_size`` events behind gets ``event: dropped`` and the stream ends.

No ``from __future__ import annotations`` here: FastAPI reads the route signatures at
run time, and they name dependencies that are local to the route factory.
"""

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.sse import EventSourceResponse, ServerSentEvent

from ivy_gateway.domain.meter import MeterId

from .deps import ApiDeps
from .errors import ApiError
from .live import LiveFeed, Subscription, TooManySubscribers
from .query import parse_meter_id
from .schemas import ErrorOut

__all__ = ["live_routes"]

_RETRY_MS = 3_000


def _kinds(raw: str | None) -> frozenset[str] | None:
    if raw is None or raw == "":
        return None
    kinds = frozenset(k.strip() for k in raw.split(",") if k.strip())
    unknown = kinds - LiveFeed.KINDS
    if unknown or not kinds:
        known = ",".join(sorted(LiveFeed.KINDS))
        raise ApiError(400, "invalid_parameter", f"types: expected some of {known}")
    return kinds


def live_routes(deps: ApiDeps, reader: Callable[..., Any]) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["live"], dependencies=[Depends(reader)])

    def subscribe(
        meter: Annotated[str | None, Query(description="only this meter's events")] = None,
        types: Annotated[
            str | None, Query(description="comma-separated: telemetry,status,event (default all)")
        ] = None,
    ) -> Subscription:
        # A dependency, so refusals are real HTTP errors and not a broken stream.
        if deps.feed is None:
            raise ApiError(404, "not_found", "the live feed is not enabled")
        only: MeterId | None = parse_meter_id(meter) if meter else None
        kinds = _kinds(types)
        try:
            return deps.feed.subscribe(only, kinds)
        except TooManySubscribers as exc:
            raise ApiError(429, "busy", str(exc)) from None

    @router.get(
        "/live",
        response_class=EventSourceResponse,
        responses={429: {"model": ErrorOut, "description": "too many live clients"}},
        summary="Server-Sent Events: telemetry, status and events as they happen",
    )
    async def live(
        sub: Annotated[Subscription, Depends(subscribe)],
    ) -> AsyncIterator[ServerSentEvent]:
        try:
            yield ServerSentEvent(comment="connected", retry=_RETRY_MS)
            while (message := await sub.next_message()) is not None:
                yield ServerSentEvent(
                    raw_data=message.data,
                    event=message.kind,
                    id=str(message.seq) if message.seq else None,
                )
        finally:
            sub.close()

    return router
