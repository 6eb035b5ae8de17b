"""Probes and gateway facts: ``/health``, ``/ready``, ``/metrics``, ``/api/v1/gateway``.

``/health`` answers as long as the event loop does (liveness: restart me if not).
``/ready`` runs every readiness check with a timeout (readiness: send me traffic or not).

No ``from __future__ import annotations`` here: FastAPI reads the route signatures at
run time, and they name dependencies that are local to the route factory.
"""

import asyncio
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from fastapi import APIRouter, Depends
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector
from starlette.responses import Response

from ivy_gateway.domain.store import StoreUnavailable

from .deps import ApiDeps, ApiStore, GatewayInfo, MetricsSource, ReadinessCheck
from .errors import error_response
from .routes_meters import json_response
from .schemas import ErrorOut, GatewayOut, HealthOut, ReadyOut

__all__ = ["counters_metrics", "store_check", "system_routes"]

log = logging.getLogger(__name__)

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def store_check(store: ApiStore) -> Callable[[], Awaitable[str | None]]:
    """A readiness check that runs one primary-key lookup against the store."""

    async def check() -> str | None:
        try:
            await store.command("")
        except StoreUnavailable:
            return "database unreachable"
        return None

    return check


class _CountersCollector(Collector):
    def __init__(self, info: Callable[[], GatewayInfo]) -> None:
        self._info = info

    def collect(self) -> Iterator[Metric]:
        for name, value in self._info().counters.items():
            metric = "ivy_gateway_" + _CAMEL.sub(r"_\1", name).lower()
            family = GaugeMetricFamily(metric, f"gateway counter {name} (as in gateway/stats)")
            family.add_metric([], float(value))
            yield family


def counters_metrics(info: Callable[[], GatewayInfo]) -> MetricsSource:
    """A fallback ``/metrics``: the gateway counters as gauges (``ivy_gateway_<name>``)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_CountersCollector(info))
    return lambda: generate_latest(registry)


async def _run_check(check: ReadinessCheck, timeout_s: float) -> str:
    try:
        async with asyncio.timeout(timeout_s):
            outcome = check()
            if inspect.isawaitable(outcome):
                outcome = await outcome
    except TimeoutError:
        return f"no answer within {timeout_s:g} s"
    except Exception as exc:
        log.warning("readiness check failed: %r", exc)
        return f"check failed ({type(exc).__name__})"
    return "ok" if outcome is None else str(outcome)


def system_routes(deps: ApiDeps, reader: Callable[..., Any]) -> tuple[APIRouter, APIRouter]:
    """(probes at the root, ``/api/v1/gateway``); ``reader`` guards metrics when asked."""
    probes = APIRouter(tags=["system"])
    api = APIRouter(prefix="/api/v1", tags=["system"], dependencies=[Depends(reader)])
    metrics = deps.metrics
    if metrics is None and deps.gateway_info is not None:
        metrics = counters_metrics(deps.gateway_info)

    @probes.get("/health", response_model=HealthOut, summary="Liveness")
    async def health() -> Response:
        return json_response({"status": "ok"})

    @probes.get(
        "/ready",
        response_model=ReadyOut,
        responses={503: {"model": ErrorOut, "description": "not_ready, with checks"}},
        summary="Readiness: store, broker (and Redis) reachable",
    )
    async def ready() -> Response:
        names = list(deps.readiness)
        timeout_s = deps.options.readiness_timeout_s
        outcomes = await asyncio.gather(*(_run_check(deps.readiness[n], timeout_s) for n in names))
        checks = dict(zip(names, outcomes, strict=True))
        failing = [f"{n}: {why}" for n, why in checks.items() if why != "ok"]
        if failing:
            return error_response(503, "not_ready", "; ".join(failing), checks=checks)
        return json_response({"status": "ready", "checks": checks})

    @probes.get(
        "/metrics",
        dependencies=[Depends(reader)],
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_PLAIN_0_0_4: {}}}},
        summary="Prometheus metrics (text format 0.0.4)",
    )
    async def get_metrics() -> Response:
        text = metrics() if metrics is not None else b""
        return Response(text, 200, media_type=CONTENT_TYPE_PLAIN_0_0_4)

    @api.get("/gateway", response_model=GatewayOut, summary="Version, uptime, id, counters")
    async def gateway() -> Response:
        info = deps.gateway_info() if deps.gateway_info else GatewayInfo("unknown", "", 0.0)
        return json_response(
            {
                "ts": deps.now_ms(),
                "gatewayId": info.gateway_id,
                "version": info.version,
                "uptimeS": round(info.uptime_s, 3),
                "storeMode": deps.store.mode.value,
                "clusterMembers": list(info.cluster_members),
                "counters": dict(info.counters),
            }
        )

    return probes, api
