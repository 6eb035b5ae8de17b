"""POST /api/v1/meters/{id}/commands and GET /api/v1/commands/{id}, with and without tokens."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from ivy_gateway.adapters.http import STATUS_BY_ERROR_CODE, TokenVerifier, hash_token
from ivy_gateway.adapters.http.fakes import InMemoryStore
from ivy_gateway.adapters.http.schemas import CommandAccepted, CommandRecordOut, CommandResponse
from ivy_gateway.domain.commands import Command, CommandResult, ErrorCode, RegisterRef, RelayState
from ivy_gateway.domain.errors import MeterRejected, MeterTimeout
from ivy_gateway.domain.meter import MeterId, ProtocolKind
from ivy_gateway.domain.ports import MeterLink, PollGroup
from ivy_gateway.domain.quantities import Reading, ReadingSource

Client = Callable[..., httpx.AsyncClient]
Validate = Callable[[str, bytes | str | dict[str, Any]], dict[str, Any]]
NOW_MS = 1_764_201_600_000
METER = MeterId("000000001234")
URL = f"/api/v1/meters/{METER}/commands"
TOKEN = "Zq3-test-token-that-is-long-enough-0123456789"


@dataclasses.dataclass
class ScriptedLink:
    """A connected meter; ``gate`` (when set) holds relay commands until released."""

    meter: MeterId = METER
    protocol: ProtocolKind = ProtocolKind.DLT645
    model: str = "dlt645-single-phase"
    poll_groups: Sequence[PollGroup] = ()
    gate: asyncio.Event | None = None
    calls: list[str] = dataclasses.field(default_factory=list)

    async def read(self, quantities: Sequence[str], source: ReadingSource) -> list[Reading]:
        return []

    async def read_register(self, ref: RegisterRef) -> Reading | Mapping[str, Any]:
        if ref.quantity == "voltage":
            raise MeterTimeout("silence")
        raise MeterRejected("no such data", code=2)

    async def read_address(self) -> str:
        self.calls.append("read_address")
        return self.meter.value

    async def relay_control(self, state: RelayState) -> RelayState:
        self.calls.append(f"relay:{state.value}")
        if self.gate is not None:
            await self.gate.wait()
        return state

    async def read_relay_state(self) -> RelayState:
        return RelayState.CLOSED

    async def sync_time(self, when: datetime) -> datetime:
        return when


@pytest.fixture
def link(links: dict[MeterId, MeterLink]) -> ScriptedLink:
    scripted = ScriptedLink()
    links[METER] = scripted
    return scripted


async def test_a_command_runs_and_answers_the_contract_response(
    link: ScriptedLink, store: InMemoryStore, make_client: Client, validate: Validate
) -> None:
    response = await make_client().post(URL, json={"id": "c-1", "method": "read_address"})
    assert response.status_code == 200
    body = validate("command-response", response.content)
    assert body == {"ts": NOW_MS, "id": "c-1", "success": True, "result": {"address": METER.value}}
    assert link.calls == ["read_address"]
    record = store.commands["c-1"]
    assert record.requested_by == "http"


async def test_a_missing_id_is_generated(link: ScriptedLink, make_client: Client) -> None:
    response = await make_client().post(URL, json={"method": "read_address", "params": {}})
    assert response.status_code == 200
    generated = CommandResponse.model_validate(response.json()).id
    assert len(generated) == 32
    again = await make_client().post(URL, json={"method": "read_address", "id": None})
    assert again.json()["id"] not in ("", generated)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "malformed JSON"),
        (b"\xff\xfe", "malformed JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"method": "explode"}', "unknown method"),
        (b'{"method": "relay_control", "params": {"state": "ajar"}}', "state"),
        (b'{"method": "read_address", "params": [1]}', "params"),
        (b'{"method": "read_address", "timeoutMs": -5}', "timeoutMs"),
        (b'{"method": "read_address", "id": "' + b"x" * 200 + b'"}', "id is longer"),
    ],
)
async def test_malformed_commands_are_invalid_command_400(
    link: ScriptedLink, make_client: Client, validate: Validate, body: bytes, fragment: str
) -> None:
    response = await make_client().post(
        URL, content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    answer = validate("command-response", response.content)
    assert answer["success"] is False
    assert answer["errorCode"] == "invalid_command"
    assert fragment in answer["error"]
    assert link.calls == []


async def test_an_offline_meter_is_409_meter_offline(make_client: Client) -> None:
    response = await make_client().post(URL, json={"method": "read_address"})
    assert response.status_code == 409
    assert response.json()["errorCode"] == "meter_offline"


@pytest.mark.parametrize(
    ("register", "status", "code"),
    [("voltage", 504, "timeout"), ("frequency", 502, "meter_rejected")],
)
async def test_meter_failures_map_to_gateway_statuses(
    link: ScriptedLink, make_client: Client, register: str, status: int, code: str
) -> None:
    body = {"method": "read_register", "params": {"register": register}}
    response = await make_client().post(URL, json=body)
    assert response.status_code == status
    assert response.json()["errorCode"] == code


class FixedRunner:
    def __init__(self, code: ErrorCode | None) -> None:
        self.code = code

    async def run(self, command: Command) -> CommandResult:
        if self.code is None:
            return CommandResult.ok(command.id, {"value": Decimal("1.50")})
        return CommandResult.failed(command.id, self.code, "scripted")


@pytest.mark.parametrize("code", list(ErrorCode))
async def test_every_error_code_has_its_status(
    link: ScriptedLink, make_client: Client, validate: Validate, code: ErrorCode
) -> None:
    response = await make_client(runner=FixedRunner(code)).post(
        URL, json={"method": "read_address"}
    )
    assert response.status_code == STATUS_BY_ERROR_CODE[code]
    assert validate("command-response", response.content)["errorCode"] == code.value


async def test_decimal_results_become_json_numbers(link: ScriptedLink, make_client: Client) -> None:
    response = await make_client(runner=FixedRunner(None)).post(
        URL, json={"method": "read_address"}
    )
    assert response.json()["result"] == {"value": 1.5}


class CrashingRunner:
    async def run(self, command: Command) -> CommandResult:
        raise RuntimeError("secret internals")


async def test_a_crashing_runner_is_500_internal_without_details(
    link: ScriptedLink, make_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    response = await make_client(runner=CrashingRunner()).post(URL, json={"method": "read_address"})
    assert response.status_code == 500
    assert response.json()["errorCode"] == "internal"
    assert "secret internals" not in response.text
    assert "secret internals" in caplog.text


async def test_an_invalid_meter_id_is_422_before_the_body_is_read(make_client: Client) -> None:
    response = await make_client().post("/api/v1/meters/12/commands", content=b"{")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_meter_id"


async def test_a_huge_body_is_413(link: ScriptedLink, make_client: Client) -> None:
    body = b'{"method": "read_address", "pad": "' + b"x" * 70_000 + b'"}'
    response = await make_client().post(URL, content=body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


async def test_wait_false_answers_202_and_the_command_can_be_followed(
    link: ScriptedLink, store: InMemoryStore, make_client: Client, validate: Validate
) -> None:
    link.gate = asyncio.Event()
    client = make_client()
    body = {"id": "relay-1", "method": "relay_control", "params": {"state": "open"}}
    accepted = await client.post(URL, params={"wait": "false"}, json=body)
    assert accepted.status_code == 202
    assert CommandAccepted.model_validate(accepted.json()).id == "relay-1"
    assert accepted.headers["location"] == "/api/v1/commands/relay-1"

    pending = await client.get("/api/v1/commands/relay-1")
    assert pending.status_code == 200
    record = CommandRecordOut.model_validate(pending.json())
    assert (record.state, record.response) == ("pending", None)

    link.gate.set()
    for _ in range(100):
        done = await client.get("/api/v1/commands/relay-1")
        if done.json()["state"] != "pending":
            break
        await asyncio.sleep(0.01)
    record = CommandRecordOut.model_validate(done.json())
    assert record.state == "succeeded"
    assert record.method == "relay_control"
    assert record.params == {"state": "open"}
    assert record.response is not None
    assert validate(
        "command-response", record.response.model_dump(by_alias=True, exclude_none=True)
    )
    assert record.response.result == {"state": "open", "confirmed": True}


async def test_wait_false_validates_before_accepting(
    link: ScriptedLink, make_client: Client
) -> None:
    response = await make_client().post(URL, params={"wait": "false"}, json={"method": "nope"})
    assert response.status_code == 400
    assert response.json()["errorCode"] == "invalid_command"


async def test_wait_must_be_a_boolean(link: ScriptedLink, make_client: Client) -> None:
    response = await make_client().post(
        URL, params={"wait": "maybe"}, json={"method": "read_address"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


async def test_background_commands_are_bounded(link: ScriptedLink, make_client: Client) -> None:
    from ivy_gateway.adapters.http import ApiOptions

    link.gate = asyncio.Event()
    client = make_client(options=ApiOptions(max_background_commands=1))
    relay = {"method": "relay_control", "params": {"state": "open"}}
    first = await client.post(URL, params={"wait": "false"}, json=relay)
    second = await client.post(URL, params={"wait": "false"}, json=relay)
    assert (first.status_code, second.status_code) == (202, 429)
    assert second.json()["errorCode"] == "busy"
    link.gate.set()


async def test_unknown_command_is_404(make_client: Client) -> None:
    for command_id in ("nope", "x" * 300):
        response = await make_client().get(f"/api/v1/commands/{command_id}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "command_not_found"


async def test_a_failed_command_record_carries_the_error(
    store: InMemoryStore, make_client: Client
) -> None:
    client = make_client()
    await client.post(URL, json={"id": "off-1", "method": "read_address"})  # meter offline
    record = CommandRecordOut.model_validate((await client.get("/api/v1/commands/off-1")).json())
    assert record.state == "failed"
    assert record.response is not None
    assert record.response.error_code == "meter_offline"
    assert record.finished_at == NOW_MS


# -- bearer tokens ---------------------------------------------------------------------


@pytest.fixture
def tokens() -> TokenVerifier:
    return TokenVerifier({"ops": hash_token(TOKEN)})


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", TOKEN],
)
async def test_commands_need_a_valid_bearer_token_when_tokens_are_configured(
    link: ScriptedLink, tokens: TokenVerifier, make_client: Client, header: str | None
) -> None:
    headers = {"Authorization": header} if header is not None else {}
    response = await make_client(tokens=tokens).post(
        URL, json={"method": "read_address"}, headers=headers
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert link.calls == []


async def test_a_valid_token_runs_the_command_and_names_the_caller(
    link: ScriptedLink, store: InMemoryStore, tokens: TokenVerifier, make_client: Client
) -> None:
    response = await make_client(tokens=tokens).post(
        URL,
        json={"id": "t-1", "method": "read_address"},
        headers={"Authorization": f"bearer {TOKEN}"},
    )
    assert response.status_code == 200
    assert store.commands["t-1"].requested_by == "http:ops"


async def test_reads_stay_open_with_tokens_unless_protected(
    tokens: TokenVerifier, make_client: Client
) -> None:
    from ivy_gateway.adapters.http import ApiOptions

    open_api = make_client(tokens=tokens)
    assert (await open_api.get("/api/v1/meters")).status_code == 200
    guarded = make_client(tokens=tokens, options=ApiOptions(protect_reads=True))
    for path in (
        "/api/v1/meters",
        f"/api/v1/meters/{METER}",
        "/api/v1/commands/x",
        "/api/v1/gateway",
        "/metrics",
        "/api/v1/live",
    ):
        refused = await guarded.get(path)
        assert refused.status_code == 401, path
    allowed = await guarded.get("/api/v1/meters", headers={"Authorization": f"Bearer {TOKEN}"})
    assert allowed.status_code == 200
    assert (await guarded.get("/health")).status_code == 200
    assert (await guarded.get("/ready")).status_code == 200
