from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from ivy_gateway.domain.commands import (
    Command,
    CommandMethod,
    CommandResult,
    ErrorCode,
    RegisterRef,
    RelayState,
)
from ivy_gateway.domain.errors import (
    MeterBusy,
    MeterOffline,
    MeterRejected,
    MeterTimeout,
    ProtocolViolation,
)
from ivy_gateway.domain.events import EventKind, GatewayEvent, MeterEvent, ReadingsBatch, Severity
from ivy_gateway.domain.meter import MeterId, ProtocolKind
from ivy_gateway.domain.ports import PollGroup
from ivy_gateway.domain.quantities import QUANTITIES, Reading, ReadingSource
from ivy_gateway.services.audit import InMemoryCommandAudit
from ivy_gateway.services.commands import CommandService, InvalidCommand, to_json_value

METER = MeterId("000000001234")
NOW_MS = 1_764_201_600_000


class FakeClock:
    def __init__(self) -> None:
        self.mono = 500.0

    def now_ms(self) -> int:
        return NOW_MS

    def monotonic(self) -> float:
        return self.mono


class EventList:
    def __init__(self) -> None:
        self.events: list[GatewayEvent] = []

    def emit(self, event: GatewayEvent) -> None:
        self.events.append(event)


@dataclass
class Group:
    name: str
    interval_s: float
    quantities: Sequence[str]


@dataclass
class FakeLink:
    meter: MeterId = METER
    protocol: ProtocolKind = ProtocolKind.DLT645
    model: str = "DDS666"
    poll_groups: Sequence[PollGroup] = (
        Group("inst", 60, ["voltage_l1", "current_l1"]),
        Group("energy", 900, ["energy_active_import_total"]),
    )
    error: Exception | None = None
    hang: bool = False
    register_answer: Reading | Mapping[str, Any] | None = None
    relay_answer: RelayState | None = None
    calls: list[tuple[str, Any]] = field(default_factory=list)

    async def _answer(self, name: str, arg: Any = None) -> None:
        self.calls.append((name, arg))
        if self.hang:
            await asyncio.Event().wait()
        if self.error is not None:
            raise self.error

    def _reading(self, quantity: str, value: str, address: str) -> Reading:
        unit = QUANTITIES[quantity].unit if quantity in QUANTITIES else "1"
        return Reading(
            self.meter, quantity, Decimal(value), unit, NOW_MS, ReadingSource.COMMAND, address
        )

    async def read(self, quantities: Sequence[str], source: ReadingSource) -> list[Reading]:
        await self._answer("read", tuple(quantities))
        assert source is ReadingSource.COMMAND
        return [self._reading(q, "230.10", f"addr:{q}") for q in quantities]

    async def read_register(self, ref: RegisterRef) -> Reading | Mapping[str, Any]:
        await self._answer("read_register", ref)
        if self.register_answer is not None:
            return self.register_answer
        return self._reading(ref.quantity or "voltage_l1", "230.1", "02010100")

    async def read_address(self) -> str:
        await self._answer("read_address")
        return self.meter.value

    async def relay_control(self, state: RelayState) -> RelayState:
        await self._answer("relay_control", state)
        return self.relay_answer or state

    async def read_relay_state(self) -> RelayState:
        await self._answer("read_relay_state")
        return RelayState.CLOSED

    async def sync_time(self, when: datetime) -> datetime:
        await self._answer("sync_time", when)
        return when


class FakeDirectory:
    def __init__(self, *links: FakeLink) -> None:
        self.links = {link.meter: link for link in links}

    def get(self, meter: MeterId) -> FakeLink | None:
        return self.links.get(meter)

    def meters(self) -> Sequence[MeterId]:
        return list(self.links)


class RecordingGate:
    def __init__(self) -> None:
        self.held: list[MeterId] = []
        self.log: list[str] = []

    @contextlib.contextmanager
    def hold(self, meter: MeterId) -> Iterator[None]:
        self.held.append(meter)
        self.log.append("hold")
        try:
            yield
        finally:
            self.held.remove(meter)
            self.log.append("release")


class BrokenAudit(InMemoryCommandAudit):
    def __init__(self, *, on_request: bool) -> None:
        super().__init__()
        self.on_request = on_request

    async def record_requested(self, command: Command, ts_ms: int) -> None:
        if self.on_request:
            raise ConnectionError("audit store down")
        await super().record_requested(command, ts_ms)

    async def record_finished(self, command: Command, result: CommandResult, ts_ms: int) -> None:
        raise ConnectionError("audit store down")


def make_service(
    link: FakeLink | None = None, **kwargs: Any
) -> tuple[CommandService, FakeLink, EventList]:
    link = link or FakeLink()
    events = EventList()
    service = CommandService(
        FakeDirectory(link), events, kwargs.pop("clock", FakeClock()), **kwargs
    )
    return service, link, events


async def execute(service: CommandService, body: Mapping[str, Any]) -> CommandResult:
    return await service.execute(METER.value, json.dumps(body).encode())


# -- parsing ----------------------------------------------------------------------------


def test_a_valid_request_becomes_a_command() -> None:
    service, _, _ = make_service()
    body = (
        b'{"id": "c1", "method": "relay_control", "params": {"state": "open"}, "timeoutMs": 5000}'
    )
    command = service.parse_command(METER.value, body, requested_by="mqtt:ops")
    assert command == Command(
        "c1", METER, CommandMethod.RELAY_CONTROL, {"state": "open"}, 5.0, "mqtt:ops"
    )


def test_parsing_accepts_text_mappings_null_params_and_numeric_ids() -> None:
    service, _, _ = make_service()
    from_text = service.parse_command(METER.value, '{"id": 7, "method": "read_address"}')
    assert (from_text.id, from_text.params, from_text.timeout_s) == ("7", {}, 30.0)
    from_mapping = service.parse_command(
        METER.value, {"id": "x", "method": "read_relay_state", "params": None}
    )
    assert from_mapping.method is CommandMethod.READ_RELAY_STATE


@pytest.mark.parametrize(
    ("payload", "command_id", "message"),
    [
        (b'{"id": "c1", "method"', "", "malformed JSON"),
        (b"\xff\xfe", "", "malformed JSON"),
        (b"[1, 2]", "", "JSON object"),
        (b'{"method": "read_address"}', "", "missing id"),
        (b'{"id": true, "method": "read_address"}', "", "missing id"),
        (b'{"id": "  ", "method": "read_address"}', "", "missing id"),
        (b'{"id": "c2", "method": "format_disk"}', "c2", "unknown method 'format_disk'"),
        (b'{"id": "c3"}', "c3", "unknown method None"),
        (b'{"id": "c4", "method": "read_all", "params": [1]}', "c4", "params must be"),
        (b'{"id": "c5", "method": "read_address", "timeoutMs": "5"}', "c5", "timeoutMs"),
        (b'{"id": "c6", "method": "read_address", "timeoutMs": true}', "c6", "timeoutMs"),
        (b'{"id": "c7", "method": "read_address", "timeoutMs": 0}', "c7", "timeoutMs"),
        (b'{"id": "c8", "method": "read_address", "timeoutMs": 300001}', "c8", "timeoutMs"),
    ],
)
def test_malformed_requests_are_invalid_and_echo_the_id_when_readable(
    payload: bytes, command_id: str, message: str
) -> None:
    service, _, _ = make_service()
    with pytest.raises(InvalidCommand, match=message) as caught:
        service.parse_command(METER.value, payload)
    result = caught.value.to_result()
    assert (result.id, result.success, result.error_code) == (
        command_id,
        False,
        ErrorCode.INVALID_COMMAND,
    )


def test_a_bad_meter_id_is_an_invalid_command() -> None:
    service, _, _ = make_service()
    with pytest.raises(InvalidCommand, match="12 decimal digits") as caught:
        service.parse_command("12/34", {"id": "c1", "method": "read_address"})
    assert caught.value.command_id == "c1"


@pytest.mark.parametrize(
    ("method", "params", "message"),
    [
        ("read_register", {}, "exactly one"),
        ("read_register", {"register": "voltage_l1", "dataId": "02010100"}, "exactly one"),
        ("read_register", {"register": "voltage_l9"}, "unknown register"),
        ("read_register", {"dataId": "0201010"}, "8 hex digits"),
        ("read_register", {"dataId": 2010100}, "8 hex digits"),
        ("read_register", {"obis": "1.0.32.7.0.255"}, "obis"),
        ("read_register", {"obis": "1-0:32.7.0.255", "classId": "3"}, "classId"),
        ("read_register", {"obis": "1-0:32.7.0.255", "attribute": 0}, "attribute"),
        ("read_all", {"registers": ["voltage_l1"], "group": "all"}, "not both"),
        ("read_all", {"registers": []}, "non-empty list"),
        ("read_all", {"registers": "voltage_l1"}, "non-empty list"),
        ("read_all", {"registers": ["voltage_l1", "bogus", 3]}, "unknown registers"),
        ("read_all", {"group": "billing"}, "group must be"),
        ("relay_control", {}, "state must be"),
        ("relay_control", {"state": "closed"}, "state must be"),
        ("sync_time", {"time": 1764201600}, "ISO 8601 string"),
        ("sync_time", {"time": "yesterday"}, "not ISO 8601"),
        ("sync_time", {"time": "2025-01-01T00:00:00"}, "UTC offset"),
    ],
)
async def test_bad_params_are_invalid_commands(
    method: str, params: dict[str, Any], message: str
) -> None:
    service, link, _ = make_service()
    body = {"id": "p1", "method": method, "params": params}
    with pytest.raises(InvalidCommand, match=message):
        service.parse_command(METER.value, body)
    result = await execute(service, body)
    assert (result.id, result.error_code) == ("p1", ErrorCode.INVALID_COMMAND)
    assert result.error is not None
    assert message.split()[0] in result.error
    assert link.calls == []


async def test_a_command_built_elsewhere_is_validated_when_run() -> None:
    service, link, _ = make_service()
    command = Command("x1", METER, CommandMethod.RELAY_CONTROL, {"state": "sideways"})
    result = await service.run(command)
    assert result.error_code is ErrorCode.INVALID_COMMAND
    assert link.calls == []


# -- methods ----------------------------------------------------------------------------


async def test_read_register_by_name_returns_the_value_and_publishes_it() -> None:
    service, link, events = make_service()
    result = await execute(
        service, {"id": "r1", "method": "read_register", "params": {"register": "voltage_l1"}}
    )
    assert result == CommandResult.ok(
        "r1", {"register": "voltage_l1", "value": 230.1, "unit": "V", "ts": NOW_MS}
    )
    (batch,) = events.events
    assert isinstance(batch, ReadingsBatch)
    assert batch.source is ReadingSource.COMMAND
    assert link.calls == [("read_register", RegisterRef(quantity="voltage_l1"))]


async def test_read_register_by_data_id_does_not_publish_a_non_canonical_name() -> None:
    link = FakeLink(
        register_answer=Reading(
            METER, "04000401", Decimal("1234"), "1", NOW_MS, ReadingSource.COMMAND, "04000401"
        )
    )
    service, link, events = make_service(link)
    result = await execute(
        service, {"id": "r2", "method": "read_register", "params": {"dataId": "04000401"}}
    )
    assert result.result == {"register": "04000401", "value": 1234, "unit": "1", "ts": NOW_MS}
    assert events.events == []


async def test_read_register_by_obis_passes_a_structured_answer_through() -> None:
    link = FakeLink(register_answer={"value": Decimal("0.5"), "unit": "1", "raw": b"\x01"})
    service, link, _ = make_service(link)
    params = {"obis": "0-0:96.1.0.255", "classId": 1, "attribute": 2}
    result = await execute(service, {"id": "r3", "method": "read_register", "params": params})
    assert result.result == {"register": "0-0:96.1.0.255", "value": 0.5, "unit": "1", "raw": "01"}
    assert link.calls == [("read_register", RegisterRef(obis="0-0:96.1.0.255", class_id=1))]


async def test_read_all_of_listed_registers_answers_as_telemetry() -> None:
    service, _, events = make_service()
    params = {"registers": ["voltage_l1", "energy_active_import_total"]}
    result = await execute(service, {"id": "a1", "method": "read_all", "params": params})
    assert result.result == {
        "values": {
            "voltage_l1": {"value": 230.1, "unit": "V", "di": "addr:voltage_l1"},
            "energy_active_import_total": {
                "value": 230.1,
                "unit": "kWh",
                "di": "addr:energy_active_import_total",
            },
        }
    }
    assert len(events.events) == 1


async def test_read_all_of_a_group_reads_what_the_model_polls_with_obis_for_dlms() -> None:
    service, link, _ = make_service(FakeLink(protocol=ProtocolKind.DLMS))
    result = await execute(
        service, {"id": "a2", "method": "read_all", "params": {"group": "energy"}}
    )
    assert link.calls == [("read", ("energy_active_import_total",))]
    assert result.result is not None
    assert result.result["values"]["energy_active_import_total"]["obis"].startswith("addr:")


async def test_read_all_of_a_group_the_model_does_not_poll_reads_the_whole_group() -> None:
    service, link, _ = make_service(FakeLink(poll_groups=()))
    await execute(service, {"id": "a3", "method": "read_all"})
    assert link.calls == [("read", tuple(QUANTITIES))]


async def test_read_address() -> None:
    service, _, _ = make_service()
    result = await execute(service, {"id": "d1", "method": "read_address"})
    assert result.result == {"address": METER.value}


async def test_read_relay_state() -> None:
    service, _, _ = make_service()
    result = await execute(service, {"id": "s1", "method": "read_relay_state"})
    assert result.result == {"state": "closed"}


async def test_relay_open_is_confirmed_and_reported() -> None:
    service, link, events = make_service()
    body = {"id": "o1", "method": "relay_control", "params": {"state": "open"}}
    result = await service.execute(METER.value, json.dumps(body), requested_by="http:alice")
    assert result.result == {"state": "open", "confirmed": True}
    assert link.calls == [("relay_control", RelayState.OPEN)]
    (event,) = events.events
    assert isinstance(event, MeterEvent)
    assert (event.kind, event.severity, event.meter) == (
        EventKind.RELAY_OPENED,
        Severity.WARNING,
        METER,
    )
    assert event.data == {"commandId": "o1", "requestedBy": "http:alice"}


async def test_relay_close_reports_relay_closed() -> None:
    service, _, events = make_service()
    await execute(service, {"id": "c1", "method": "relay_control", "params": {"state": "close"}})
    assert [e.kind for e in events.events if isinstance(e, MeterEvent)] == [EventKind.RELAY_CLOSED]


async def test_an_unconfirmed_relay_state_is_reported_as_such_without_an_event() -> None:
    service, _, events = make_service(FakeLink(relay_answer=RelayState.UNKNOWN))
    result = await execute(
        service, {"id": "u1", "method": "relay_control", "params": {"state": "close"}}
    )
    assert result.result == {"state": "unknown", "confirmed": False}
    assert events.events == []


async def test_relay_commands_are_rate_limited_per_meter() -> None:
    clock = FakeClock()
    service, link, _ = make_service(relay_limit=2, relay_window_s=60, clock=clock)
    body = {"id": "r", "method": "relay_control", "params": {"state": "open"}}
    first, second, third = [await execute(service, body) for _ in range(3)]
    assert first.success
    assert second.success
    assert third.error_code is ErrorCode.BUSY
    assert third.error is not None
    assert "2 relay commands per 60s" in third.error
    assert len(link.calls) == 2
    clock.mono += 60
    assert (await execute(service, body)).success


async def test_sync_time_to_a_given_time() -> None:
    service, link, _ = make_service()
    params = {"time": "2025-06-01T12:00:00+08:00"}
    result = await execute(service, {"id": "t1", "method": "sync_time", "params": params})
    assert result.result == {"time": "2025-06-01T12:00:00+08:00"}
    assert link.calls == [
        ("sync_time", datetime(2025, 6, 1, 12, tzinfo=timezone(timedelta(hours=8))))
    ]


async def test_sync_time_defaults_to_the_gateway_clock() -> None:
    service, link, _ = make_service()
    result = await execute(service, {"id": "t2", "method": "sync_time"})
    expected = datetime.fromtimestamp(NOW_MS / 1000, tz=UTC)
    assert link.calls == [("sync_time", expected)]
    assert result.result == {"time": expected.isoformat()}


# -- errors -----------------------------------------------------------------------------


async def test_a_meter_without_a_session_is_offline() -> None:
    gate = RecordingGate()
    service, _, _ = make_service(gate=gate)
    result = await service.execute("000000009999", {"id": "f1", "method": "read_address"})
    assert (result.id, result.error_code) == ("f1", ErrorCode.METER_OFFLINE)
    assert gate.log == []


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (MeterTimeout("no answer after 3 tries"), ErrorCode.TIMEOUT, "within 30s"),
        (MeterBusy("session busy"), ErrorCode.BUSY, "session busy"),
        (MeterBusy(), ErrorCode.BUSY, "busy"),
        (MeterOffline("connection closed"), ErrorCode.METER_OFFLINE, "connection closed"),
        (MeterOffline(), ErrorCode.METER_OFFLINE, "offline"),
        (ProtocolViolation("bad frame"), ErrorCode.INTERNAL, "bad frame"),
    ],
)
async def test_meter_errors_map_to_error_codes(
    error: Exception, code: ErrorCode, message: str
) -> None:
    service, _, _ = make_service(FakeLink(error=error))
    result = await execute(service, {"id": "e1", "method": "read_address"})
    assert (result.id, result.success, result.error_code) == ("e1", False, code)
    assert result.error is not None
    assert message in result.error


async def test_a_rejection_carries_the_meters_code() -> None:
    error = MeterRejected("password wrong", code=0x04, detail={"flags": ("password",)})
    service, _, _ = make_service(FakeLink(error=error))
    result = await execute(
        service, {"id": "e2", "method": "relay_control", "params": {"state": "open"}}
    )
    assert result.error_code is ErrorCode.METER_REJECTED
    assert result.result == {"code": 4, "detail": {"flags": ["password"]}}
    assert result.error == "the meter refused: password wrong"


async def test_a_command_that_outlives_its_timeout_fails_with_timeout() -> None:
    service, _, _ = make_service(FakeLink(hang=True))
    body = {"id": "e3", "method": "read_address", "timeoutMs": 10}
    result = await execute(service, body)
    assert result.error_code is ErrorCode.TIMEOUT
    assert result.error == "no answer from the meter within 0.01s"


async def test_an_unexpected_error_is_internal_and_logged_without_a_stack_in_the_result(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service, _, _ = make_service(FakeLink(error=KeyError("oops")))
    with caplog.at_level(logging.ERROR):
        result = await execute(service, {"id": "e4", "method": "read_address"})
    assert result.error_code is ErrorCode.INTERNAL
    assert result.error == "internal error (KeyError)"
    assert caplog.records[0].exc_info is not None


async def test_the_command_holds_the_meters_polls_while_it_runs() -> None:
    gate = RecordingGate()
    link = FakeLink()
    service, _, _ = make_service(link, gate=gate)

    original = link.read_address

    async def read_address() -> str:
        assert gate.held == [METER]
        return await original()

    link.read_address = read_address  # type: ignore[method-assign]
    result = await execute(service, {"id": "g1", "method": "read_address"})
    assert result.success
    assert gate.log == ["hold", "release"]


# -- audit ------------------------------------------------------------------------------


async def test_every_command_is_audited_when_requested_and_when_finished() -> None:
    audit = InMemoryCommandAudit()
    service, _, _ = make_service(audit=audit)
    await execute(service, {"id": "a1", "method": "read_address"})
    await service.execute("000000009999", {"id": "a2", "method": "read_address"})
    first, second = audit.entries()
    assert first.command.id == "a1"
    assert (first.requested_ts_ms, first.finished_ts_ms) == (NOW_MS, NOW_MS)
    assert first.result is not None
    assert first.result.success
    assert second.result is not None
    assert second.result.error_code is ErrorCode.METER_OFFLINE
    assert audit.get("a2") == second
    assert audit.get("nope") is None


async def test_the_default_audit_is_in_memory() -> None:
    service, _, _ = make_service()
    await execute(service, {"id": "a1", "method": "read_address"})
    assert isinstance(service.audit, InMemoryCommandAudit)
    assert [e.command.id for e in service.audit.entries()] == ["a1"]


async def test_a_command_that_cannot_be_audited_is_not_run() -> None:
    service, link, _ = make_service(audit=BrokenAudit(on_request=True))
    body = {"id": "x", "method": "relay_control", "params": {"state": "open"}}
    result = await execute(service, body)
    assert result.error_code is ErrorCode.INTERNAL
    assert link.calls == []


async def test_a_result_that_cannot_be_audited_is_still_returned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    service, _, _ = make_service(audit=BrokenAudit(on_request=False))
    with caplog.at_level(logging.ERROR):
        result = await execute(service, {"id": "y", "method": "read_address"})
    assert result.success
    assert "could not audit the result" in caplog.text


async def test_the_in_memory_audit_keeps_the_newest_entries() -> None:
    audit = InMemoryCommandAudit(max_entries=2)
    commands = [Command(f"c{n}", METER, CommandMethod.READ_ADDRESS) for n in range(3)]
    for command in commands:
        await audit.record_requested(command, 1)
    await audit.record_finished(commands[0], CommandResult.ok("c0", {}), 5)
    assert [e.command.id for e in audit.entries()] == ["c2", "c0"]
    entry = audit.get("c0")
    assert entry is not None
    assert (entry.requested_ts_ms, entry.finished_ts_ms) == (5, 5)
    with pytest.raises(ValueError, match="at least 1"):
        InMemoryCommandAudit(max_entries=0)


# -- JSON values ------------------------------------------------------------------------


def test_to_json_value_turns_decimals_into_consistent_numbers() -> None:
    assert to_json_value(Decimal("230")) == 230
    assert isinstance(to_json_value(Decimal("230")), int)
    assert to_json_value(Decimal("1E+3")) == 1000
    assert to_json_value(Decimal("230.0")) == 230.0
    assert isinstance(to_json_value(Decimal("230.0")), float)
    assert to_json_value(Decimal("NaN")) is None
    assert to_json_value(Decimal("-Infinity")) is None


def test_to_json_value_walks_containers_and_plain_values() -> None:
    when = datetime(2025, 1, 1, tzinfo=UTC)
    value = {
        "a": [Decimal("1.50"), (True, None)],
        3: RelayState.OPEN,
        "t": when,
        "b": b"\x0a\xff",
        "m": METER,
        "f": float("nan"),
        "g": float("inf"),
        "h": 2.5,
        "s": "x",
    }
    assert to_json_value(value) == {
        "a": [1.5, [True, None]],
        "3": "open",
        "t": "2025-01-01T00:00:00+00:00",
        "b": "0aff",
        "m": "000000001234",
        "f": None,
        "g": None,
        "h": 2.5,
        "s": "x",
    }
    json.dumps(to_json_value(value), allow_nan=False)


async def test_read_all_of_registers_the_meter_lacks_answers_empty_and_publishes_nothing() -> None:
    link = FakeLink()

    async def read_nothing(quantities: Sequence[str], source: ReadingSource) -> list[Reading]:
        return []

    link.read = read_nothing  # type: ignore[method-assign]
    service, _, events = make_service(link)
    result = await execute(
        service, {"id": "n1", "method": "read_all", "params": {"registers": ["frequency"]}}
    )
    assert result.result == {"values": {}}
    assert events.events == []
