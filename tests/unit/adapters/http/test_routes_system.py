"""Probes, metrics, gateway info, the OpenAPI document and the error envelope."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from ivy_gateway.adapters.http import ApiOptions
from ivy_gateway.adapters.http.fakes import InMemoryStore
from ivy_gateway.adapters.http.schemas import ErrorOut, GatewayOut, ReadyOut

Client = Callable[..., httpx.AsyncClient]
NOW_MS = 1_764_201_600_000
METER_PATH = "/api/v1/meters/000000001234"

CONTRACT_PATHS = {
    "/health": "get",
    "/ready": "get",
    "/metrics": "get",
    "/api/v1/meters": "get",
    "/api/v1/meters/{meter_id}": "get",
    "/api/v1/meters/{meter_id}/readings": "get",
    "/api/v1/meters/{meter_id}/events": "get",
    "/api/v1/meters/{meter_id}/commands": "post",
    "/api/v1/commands/{command_id}": "get",
    "/api/v1/gateway": "get",
    "/api/v1/live": "get",
}


async def test_health_is_always_ok(store: InMemoryStore, make_client: Client) -> None:
    store.unavailable = True
    response = await make_client().get("/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_ready_runs_every_check(make_client: Client) -> None:
    async def store_ok() -> str | None:
        return None

    client = make_client(readiness={"store": store_ok, "broker": lambda: None})
    response = await client.get("/ready")
    assert response.status_code == 200
    assert ReadyOut.model_validate(response.json()).checks == {"store": "ok", "broker": "ok"}


async def test_ready_is_503_with_the_reasons(make_client: Client) -> None:
    async def hangs() -> str | None:
        await asyncio.sleep(10)
        return None

    def explodes() -> str | None:
        raise RuntimeError("nope")

    client = make_client(
        readiness={"broker": lambda: "not connected", "redis": hangs, "store": explodes},
        options=ApiOptions(readiness_timeout_s=0.05),
    )
    response = await client.get("/ready")
    assert response.status_code == 503
    body = response.json()
    ErrorOut.model_validate(body)
    assert body["error"]["code"] == "not_ready"
    assert body["checks"] == {
        "broker": "not connected",
        "redis": "no answer within 0.05 s",
        "store": "check failed (RuntimeError)",
    }
    assert "broker: not connected" in body["error"]["message"]


async def test_store_check_reports_an_unreachable_store(store: InMemoryStore) -> None:
    from ivy_gateway.adapters.http import store_check

    check = store_check(store)
    assert await check() is None
    store.unavailable = True
    assert await check() == "database unreachable"


async def test_metrics_default_to_the_gateway_counters(make_client: Client) -> None:
    response = await make_client().get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "ivy_gateway_meters_online 1.0" in response.text
    assert "ivy_gateway_readings_per_s 2.5" in response.text


async def test_metrics_come_from_the_given_source(make_client: Client) -> None:
    response = await make_client(metrics=lambda: b"ivy_custom 7\n").get("/metrics")
    assert response.text == "ivy_custom 7\n"


async def test_gateway_info(make_client: Client) -> None:
    response = await make_client().get("/api/v1/gateway")
    assert response.status_code == 200
    info = GatewayOut.model_validate(response.json())
    assert (info.gateway_id, info.version, info.store_mode) == ("gw-test", "9.9.9", "sqlite")
    assert info.uptime_s == 12.346
    assert info.cluster_members == ["gw-a"]
    assert info.counters == {"metersOnline": 1, "readingsPerS": 2.5}
    assert info.ts == NOW_MS


async def test_openapi_documents_every_contract_path(make_client: Client) -> None:
    response = await make_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    for path, method in CONTRACT_PATHS.items():
        assert method in document["paths"][path], path
    live = document["paths"]["/api/v1/live"]["get"]["responses"]["200"]["content"]
    assert "text/event-stream" in live
    body = document["paths"]["/api/v1/meters/{meter_id}/commands"]["post"]["requestBody"]
    assert "method" in body["content"]["application/json"]["schema"]["properties"]
    docs = await make_client().get("/api/v1/docs")
    assert docs.status_code == 200


async def test_openapi_references_resolve(make_client: Client) -> None:
    document = (await make_client().get("/api/v1/openapi.json")).json()
    schemas = document["components"]["schemas"]

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return found + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(document["paths"]) + refs(schemas):
        if ref.startswith("#/components/schemas/"):
            assert ref.removeprefix("#/components/schemas/") in schemas, ref


async def test_write_security_is_documented_only_with_tokens(make_client: Client) -> None:
    from ivy_gateway.adapters.http import TokenVerifier, hash_token

    document = (
        await make_client(tokens=TokenVerifier({"a": hash_token("t")})).get("/api/v1/openapi.json")
    ).json()
    post = document["paths"]["/api/v1/meters/{meter_id}/commands"]["post"]
    assert post["security"] == [{"HTTPBearer": []}]
    assert "security" not in document["paths"]["/api/v1/meters"]["get"]


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/nowhere", 404, "not_found"),
        ("DELETE", "/api/v1/meters", 405, "method_not_allowed"),
        ("GET", f"{METER_PATH}/commands", 405, "method_not_allowed"),
    ],
)
async def test_framework_errors_use_the_envelope(
    make_client: Client, method: str, path: str, status: int, code: str
) -> None:
    response = await make_client().request(method, path)
    assert response.status_code == status
    assert ErrorOut.model_validate(response.json()).error.code == code


async def test_an_unreachable_store_is_503(store: InMemoryStore, make_client: Client) -> None:
    store.unavailable = True
    response = await make_client().get("/api/v1/meters")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "store_unavailable"
    assert response.headers["retry-after"] == "5"


async def test_a_bug_is_500_internal_without_a_stack_trace(
    store: InMemoryStore, make_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    store.failure = ZeroDivisionError("secret detail")
    response = await make_client().get("/api/v1/meters")
    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "internal", "message": "internal error (see the gateway log)"}
    }
    assert "secret detail" in caplog.text  # logged, with its traceback
    assert "Traceback" in caplog.text


async def test_open_write_endpoints_are_warned_about(
    store: InMemoryStore, caplog: pytest.LogCaptureFixture, make_client: Client
) -> None:
    document = (await make_client().get("/api/v1/openapi.json")).json()
    assert "no http.tokens configured" in caplog.text
    assert "security" not in document["paths"]["/api/v1/meters/{meter_id}/commands"]["post"]
