"""``PUT /api/v1/meters/{id}/capture`` and ``GET /api/v1/captures``: traffic capture at run time.

Capturing a meter writes every byte it sends and receives to a JSONL file (one per meter,
rotated) that ``ivy-gateway decode --capture FILE`` replays. Switching it is a write
(a bearer token when tokens are configured); listing is a read.

No ``from __future__ import annotations`` here: FastAPI reads the route signatures at
run time.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from starlette.responses import Response

from .deps import CaptureControl
from .query import parse_meter_id
from .routes_meters import MeterIdPath, json_response

__all__ = ["capture_routes"]


class CaptureSwitch(BaseModel):
    enabled: bool


def capture_routes(capture: CaptureControl, writer: Any, reader: Any) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["capture"])

    @router.put(
        "/meters/{meter_id}/capture",
        summary="Start or stop capturing a meter's raw traffic (JSONL, replay with decode)",
    )
    async def switch_capture(
        meter_id: MeterIdPath,
        body: CaptureSwitch,
        _caller: Annotated[str, Depends(writer)],
    ) -> Response:
        meter = parse_meter_id(meter_id)
        if body.enabled:
            capture.enable(meter)
        else:
            capture.disable(meter)
        return json_response({"meterId": str(meter), "enabled": body.enabled})

    @router.get("/captures", summary="Meters whose traffic is being captured")
    async def list_captures(_: Annotated[None, Depends(reader)]) -> Response:
        return json_response({"meters": [str(m) for m in capture.enabled()]})

    return router
