"""``/api/v1/meters``: the meter list, one meter, its reading history (JSON or CSV), events.

A meter's entry merges two sources: the store (every meter ever seen, its last values as
of the last write) and the live state in memory (exact online flag, values not yet
written). The live side wins where both know something, and per quantity the newer
value wins.

No ``from __future__ import annotations`` here: FastAPI reads the route signatures at
run time, and they name dependencies that are local to the route factory.
"""

import asyncio
import csv
import io
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from ivy_gateway.domain.meter import MeterId
from ivy_gateway.domain.quantities import QUANTITIES, Reading
from ivy_gateway.domain.store import Aggregate, EventRecord, HistoryPoint, MeterRecord
from ivy_gateway.services.commands import to_json_value
from ivy_gateway.services.telemetry import MeterSnapshot

from .deps import ApiDeps
from .errors import ApiError
from .query import parse_agg, parse_bucket, parse_meter_id, parse_quantity, parse_range
from .schemas import ErrorOut, EventList, MeterList, MeterOut, ReadingsOut

__all__ = ["MeterIdPath", "json_response", "meter_json", "meter_routes"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "invalid_parameter or too_many_points"},
    404: {"model": ErrorOut, "description": "meter_not_found"},
    422: {"model": ErrorOut, "description": "invalid_meter_id"},
}
#: Documents the 12-digit pattern without letting FastAPI enforce it: a bad id gets our
#: ``invalid_meter_id`` error instead of a generic ``validation_error``.
MeterIdPath = Annotated[
    str,
    Path(
        description="the meter's 12-digit address",
        json_schema_extra={"pattern": "^[0-9]{12}$"},
        examples=["000000001234"],
    ),
]
_CSV_DOC: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"example": "ts,time,quantity,value,unit\n"}}}
}


class SharedAnswer:
    """One answer built at a time and shared for ``max_age_s``.

    A full meter list of a large fleet costs tens of milliseconds of event-loop time; when
    several dashboards ask at once they wait for the build already running (single flight)
    instead of each starting one, and answers younger than ``max_age_s`` are reused.
    """

    def __init__(self, build: Callable[[], Awaitable[bytes]], max_age_s: float) -> None:
        self._build = build
        self._max_age_s = max_age_s
        self._body: bytes | None = None
        self._built_at = 0.0
        self._pending: asyncio.Future[bytes] | None = None

    async def get(self) -> bytes:
        loop = asyncio.get_running_loop()
        if self._body is not None and loop.time() - self._built_at < self._max_age_s:
            return self._body
        if self._pending is None:
            self._pending = loop.create_task(self._refresh())
        # Shielded: one client going away must not cancel the build the others wait for.
        return await asyncio.shield(self._pending)

    async def _refresh(self) -> bytes:
        try:
            body = await self._build()
            self._body, self._built_at = body, asyncio.get_running_loop().time()
            return body
        finally:
            self._pending = None


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    body = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return Response(body, status, headers=headers, media_type="application/json")


def _value(reading: Reading) -> dict[str, Any]:
    return {"value": to_json_value(reading.value), "unit": reading.unit, "ts": reading.ts_ms}


def _newest(*sources: Mapping[str, Reading]) -> dict[str, Reading]:
    out: dict[str, Reading] = {}
    for values in sources:
        for name, reading in values.items():
            current = out.get(name)
            if current is None or current.ts_ms <= reading.ts_ms:
                out[name] = reading
    return out


def meter_json(record: MeterRecord | None, live: MeterSnapshot | None) -> dict[str, Any]:
    """One meter as ``MeterOut``; at least one of the two sources is given."""
    meter = record.meter if record is not None else live.meter if live is not None else None
    assert meter is not None
    protocol = live.protocol if live is not None and live.protocol else None
    if protocol is None and record is not None:
        protocol = record.protocol
    model = live.model if live is not None and live.model else None
    if model is None and record is not None:
        model = record.model
    ip = live.connection.peer_host if live is not None and live.connection else None
    if ip is None and record is not None:
        ip = record.last_ip
    seen = [s for s in (record and record.last_seen_ms, live and live.last_seen_ms) if s]
    values = _newest(record.values if record else {}, live.values if live else {})
    return {
        "meterId": meter.value,
        "online": live.online if live is not None else bool(record and record.online),
        "protocol": protocol.value if protocol is not None else None,
        "model": model,
        "ip": ip,
        "firstSeen": record.first_seen_ms if record is not None else None,
        "lastSeen": max(seen) if seen else None,
        "values": {name: _value(values[name]) for name in sorted(values)},
    }


def _series(points: Iterable[HistoryPoint]) -> dict[str, dict[str, Any]]:
    series: dict[str, dict[str, Any]] = {}
    for p in points:
        entry = series.get(p.quantity)
        if entry is None:
            info = QUANTITIES.get(p.quantity)
            entry = series[p.quantity] = {"unit": info.unit if info else "", "points": []}
        entry["points"].append([p.ts_ms, to_json_value(p.value)])
    return series


def _csv(meter: MeterId, points: Iterable[HistoryPoint]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["ts", "time", "quantity", "value", "unit"])
    for p in points:
        info = QUANTITIES.get(p.quantity)
        when = datetime.fromtimestamp(p.ts_ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")
        writer.writerow(
            [p.ts_ms, when, p.quantity, to_json_value(p.value), info.unit if info else ""]
        )
    headers = {"Content-Disposition": f'attachment; filename="{meter.value}-readings.csv"'}
    return Response(out.getvalue(), 200, headers=headers, media_type="text/csv; charset=utf-8")


def _event_json(ev: EventRecord) -> dict[str, Any]:
    return {
        "id": ev.id,
        "ts": ev.ts_ms,
        "meterId": ev.meter.value if ev.meter is not None else None,
        "event": ev.kind.value,
        "severity": ev.severity.value,
        "data": to_json_value(ev.data),
    }


def meter_routes(deps: ApiDeps) -> APIRouter:
    router = APIRouter(prefix="/api/v1/meters", tags=["meters"])
    opts = deps.options

    async def known_meter(raw: str) -> tuple[MeterId, MeterRecord | None, MeterSnapshot | None]:
        meter = parse_meter_id(raw)
        live = deps.live_state.snapshot(meter) if deps.live_state is not None else None
        record = await deps.store.get_meter(meter)
        if record is None and live is None:
            raise ApiError(404, "meter_not_found", f"no meter {meter} has been seen")
        return meter, record, live

    async def build_meter_list() -> bytes:
        records = {r.meter: r for r in await deps.store.list_meters()}
        live = {s.meter: s for s in deps.live_state.snapshots()} if deps.live_state else {}
        meters = [
            meter_json(records.get(m), live.get(m)) for m in sorted(records.keys() | live.keys())
        ]
        return json.dumps({"meters": meters, "count": len(meters)}, separators=(",", ":")).encode()

    meter_list = SharedAnswer(build_meter_list, opts.meter_list_max_age_s)

    @router.get("", response_model=MeterList, summary="All known meters")
    async def list_meters() -> Response:
        return Response(await meter_list.get(), 200, media_type="application/json")

    @router.get("/{meter_id}", response_model=MeterOut, responses=_ERRORS, summary="One meter")
    async def get_meter(meter_id: MeterIdPath) -> Response:
        _, record, live = await known_meter(meter_id)
        return json_response(meter_json(record, live))

    @router.get(
        "/{meter_id}/readings",
        response_model=ReadingsOut,
        responses={**_ERRORS, **_CSV_DOC},
        summary="Reading history, raw or bucketed (computed in the database)",
    )
    async def readings(
        meter_id: MeterIdPath,
        quantity: Annotated[
            str | None, Query(description="canonical quantity; all when absent")
        ] = None,
        from_: Annotated[
            str | None, Query(alias="from", description="default: to - 24 h; epoch ms or ISO 8601")
        ] = None,
        to: Annotated[str | None, Query(description="default: now; epoch ms or ISO 8601")] = None,
        bucket: Annotated[
            str | None, Query(description="bucket length: 15m, 1h, 1d, or seconds")
        ] = None,
        agg: Annotated[
            str | None,
            Query(
                description="aggregate per bucket (default avg)",
                json_schema_extra={"enum": [a.value for a in Aggregate]},
            ),
        ] = None,
        format: Annotated[  # noqa: A002 - the contract's parameter name
            str, Query(json_schema_extra={"enum": ["json", "csv"]})
        ] = "json",
    ) -> Response:
        if format not in ("json", "csv"):
            raise ApiError(
                400, "invalid_parameter", f"format: expected json or csv, got {format[:20]!r}"
            )
        name = parse_quantity(quantity)
        span = parse_range(
            from_, to, now_ms=deps.now_ms(), default_s=opts.default_range_s, max_s=opts.max_range_s
        )
        bucket_s = parse_bucket(bucket)
        aggregate = parse_agg(agg, bucket_s)
        if bucket_s is not None and name is not None:
            buckets = -(-(span.to_ms - span.from_ms) // (bucket_s * 1000))
            if buckets > opts.max_points:
                raise _too_many(opts.max_points)
        meter, _, _ = await known_meter(meter_id)
        points = await deps.store.readings(
            meter,
            name,
            span.from_ms,
            span.to_ms,
            bucket_s=bucket_s,
            agg=aggregate or Aggregate.AVG,
            limit=opts.max_points + 1,
        )
        if len(points) > opts.max_points:
            raise _too_many(opts.max_points)
        if format == "csv":
            return _csv(meter, points)
        return json_response(
            {
                "meterId": meter.value,
                "from": span.from_ms,
                "to": span.to_ms,
                "bucket": bucket_s,
                "agg": aggregate.value if aggregate else None,
                "series": _series(points),
            }
        )

    @router.get(
        "/{meter_id}/events", response_model=EventList, responses=_ERRORS, summary="Event history"
    )
    async def events(
        meter_id: MeterIdPath,
        from_: Annotated[
            str | None, Query(alias="from", description="default: to - 7 days")
        ] = None,
        to: Annotated[str | None, Query(description="default: now")] = None,
        limit: Annotated[
            int | None, Query(ge=1, description="newest first; at most max_events")
        ] = None,
    ) -> Response:
        span = parse_range(
            from_,
            to,
            now_ms=deps.now_ms(),
            default_s=opts.default_events_range_s,
            max_s=opts.max_range_s,
        )
        if limit is not None and limit > opts.max_events:
            raise ApiError(400, "invalid_parameter", f"limit: at most {opts.max_events}")
        meter, _, _ = await known_meter(meter_id)
        rows = await deps.store.events(
            meter, span.from_ms, span.to_ms, limit=limit or opts.max_events
        )
        return json_response(
            {
                "meterId": meter.value,
                "from": span.from_ms,
                "to": span.to_ms,
                "events": [_event_json(ev) for ev in rows],
            }
        )

    return router


def _too_many(max_points: int) -> ApiError:
    return ApiError(
        400,
        "too_many_points",
        f"the answer would hold more than {max_points} points: use a bucket "
        "(e.g. bucket=1h) or a shorter range",
    )
