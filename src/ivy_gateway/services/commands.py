"""User commands: validate → find the local session → run with a timeout → ``CommandResult``.

Every error becomes a result with one ``errorCode`` of CONTRACT.md; nothing escapes ``run``
except cancellation. The audit log sees each command twice (requested, finished). A command
whose request cannot be recorded is not run: a relay that switches with no trace is worse
than a command that fails with ``internal``.

JSON encoding of results: meter values are ``Decimal``; ``to_json_value`` turns them into
JSON numbers — ``int`` when the Decimal has no fractional digits (exponent ≥ 0), else
``float``. The exponent comes from the register's scaling, so one register always gives the
same JSON type. Encoders call ``json.dumps(to_json_value(obj))``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ivy_gateway.domain.commands import (
    Command,
    CommandMethod,
    CommandResult,
    ErrorCode,
    RegisterRef,
    RelayState,
)
from ivy_gateway.domain.errors import (
    CommandError,
    MeterBusy,
    MeterOffline,
    MeterRejected,
    MeterTimeout,
    ProtocolViolation,
)
from ivy_gateway.domain.events import EventKind, MeterEvent, ReadingsBatch, Severity
from ivy_gateway.domain.meter import MeterId, ProtocolKind
from ivy_gateway.domain.ports import (
    Clock,
    CommandAudit,
    EventSink,
    MeterDirectory,
    MeterLink,
    PollGate,
)
from ivy_gateway.domain.quantities import QUANTITIES, Reading, ReadingSource

from .audit import InMemoryCommandAudit

__all__ = ["CommandService", "InvalidCommand", "to_json_value"]

log = logging.getLogger(__name__)

_DATA_ID = re.compile(r"[0-9A-Fa-f]{8}")
# A-B:C.D.E.F with F optional (defaults to 255 on the meter side).
_OBIS = re.compile(r"\d{1,3}-\d{1,3}:\d{1,3}\.\d{1,3}\.\d{1,3}(\.\d{1,3})?")
_GROUPS = ("energy", "instantaneous", "all")
_RELAY_REQUESTS = {"open": RelayState.OPEN, "close": RelayState.CLOSED}
_RELAY_EVENTS = {
    RelayState.OPEN: (EventKind.RELAY_OPENED, Severity.WARNING),  # a customer lost supply
    RelayState.CLOSED: (EventKind.RELAY_CLOSED, Severity.INFO),
}

Action = Callable[[MeterLink], Awaitable[Mapping[str, Any]]]


class InvalidCommand(CommandError):
    """A request the gateway cannot run as asked; ``command_id`` is "" when unreadable."""

    def __init__(self, message: str, command_id: str = "") -> None:
        super().__init__(message)
        self.command_id = command_id

    def to_result(self) -> CommandResult:
        return CommandResult.failed(self.command_id, ErrorCode.INVALID_COMMAND, str(self))


class _RateLimited(MeterBusy):
    pass


def to_json_value(value: object) -> Any:
    """``value`` as plain JSON data (dict/list/str/int/float/bool/None), recursively."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            return None  # JSON has no NaN/Infinity
        exponent = value.as_tuple().exponent
        return int(value) if isinstance(exponent, int) and exponent >= 0 else float(value)
    if isinstance(value, enum.Enum):
        return to_json_value(value.value)
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if value is None or isinstance(value, str | int):
        return value
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


class CommandService:
    """``CommandRunner`` for meters held by this process.

    Wiring: ``CommandService(registry, telemetry, clock, audit=store, gate=poller)``; adapters
    call ``execute(meter_id, payload, requested_by)`` (or ``parse_command`` + ``run``).
    """

    def __init__(
        self,
        directory: MeterDirectory,
        events: EventSink,
        clock: Clock,
        *,
        audit: CommandAudit | None = None,
        gate: PollGate | None = None,
        default_timeout_s: float = 30.0,
        max_timeout_s: float = 300.0,
        relay_limit: int = 6,
        relay_window_s: float = 60.0,
    ) -> None:
        self._directory = directory
        self._events = events
        self._clock = clock
        self.audit: CommandAudit = audit if audit is not None else InMemoryCommandAudit()
        self._gate = gate
        self._default_timeout_s = default_timeout_s
        self._max_timeout_s = max_timeout_s
        self._relay_limit = relay_limit
        self._relay_window_s = relay_window_s
        self._relay_times: dict[MeterId, collections.deque[float]] = {}

    # -- parsing -----------------------------------------------------------------------

    def parse_command(
        self,
        meter_id: str,
        payload: Mapping[str, Any] | bytes | str,
        requested_by: str = "unknown",
    ) -> Command:
        """A validated ``Command`` from a request body; ``InvalidCommand`` says what is wrong."""
        data = _load(payload)
        command_id = _read_id(data.get("id"))
        try:
            meter = MeterId(meter_id)
            method = _read_method(data.get("method"))
            params = data.get("params")
            if params is None:
                params = {}
            if not isinstance(params, Mapping):
                raise InvalidCommand("params must be a JSON object")
            timeout_s = self._read_timeout(data.get("timeoutMs"))
            command = Command(command_id, meter, method, dict(params), timeout_s, requested_by)
            self._prepare(command)
        except (InvalidCommand, ValueError) as exc:
            raise InvalidCommand(str(exc), command_id) from None
        return command

    def _read_timeout(self, raw: object) -> float:
        if raw is None:
            return self._default_timeout_s
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise InvalidCommand("timeoutMs must be a number of milliseconds")
        if not 0 < raw <= self._max_timeout_s * 1000:
            raise InvalidCommand(f"timeoutMs must be in (0, {self._max_timeout_s * 1000:.0f}]")
        return raw / 1000

    # -- running -----------------------------------------------------------------------

    async def execute(
        self,
        meter_id: str,
        payload: Mapping[str, Any] | bytes | str,
        requested_by: str = "unknown",
    ) -> CommandResult:
        """Parse and run; an invalid request becomes an ``invalid_command`` result."""
        try:
            command = self.parse_command(meter_id, payload, requested_by)
        except InvalidCommand as exc:
            return exc.to_result()
        return await self.run(command)

    async def run(self, command: Command) -> CommandResult:
        try:
            await self.audit.record_requested(command, self._clock.now_ms())
        except Exception:
            log.exception("could not audit command %s; not running it", command.id)
            return CommandResult.failed(
                command.id,
                ErrorCode.INTERNAL,
                "the command could not be audited, so it was not run",
            )
        result = await self._run_unaudited(command)
        try:
            await self.audit.record_finished(command, result, self._clock.now_ms())
        except Exception:
            log.exception("could not audit the result of command %s", command.id)
        return result

    async def _run_unaudited(self, command: Command) -> CommandResult:
        cid = command.id
        try:
            action = self._prepare(command)
        except (InvalidCommand, ValueError) as exc:
            return CommandResult.failed(cid, ErrorCode.INVALID_COMMAND, str(exc))
        link = self._directory.get(command.meter)
        if link is None:
            return CommandResult.failed(
                cid, ErrorCode.METER_OFFLINE, f"meter {command.meter} is not connected"
            )
        try:
            hold = self._gate.hold(command.meter) if self._gate else contextlib.nullcontext()
            with hold:
                async with asyncio.timeout(command.timeout_s):
                    result = await action(link)
        except (MeterTimeout, TimeoutError):
            return CommandResult.failed(
                cid, ErrorCode.TIMEOUT, f"no answer from the meter within {command.timeout_s:g}s"
            )
        except MeterRejected as exc:
            return CommandResult.failed(
                cid,
                ErrorCode.METER_REJECTED,
                f"the meter refused: {exc}",
                {"code": exc.code, "detail": to_json_value(exc.detail)},
            )
        except MeterBusy as exc:
            return CommandResult.failed(cid, ErrorCode.BUSY, str(exc) or "the meter is busy")
        except MeterOffline as exc:
            return CommandResult.failed(cid, ErrorCode.METER_OFFLINE, str(exc) or "meter offline")
        except ProtocolViolation as exc:
            return CommandResult.failed(cid, ErrorCode.INTERNAL, f"unusable answer: {exc}")
        except Exception as exc:
            # The stack goes to the log, not to the user.
            log.exception("command %s (%s) on %s failed", cid, command.method, command.meter)
            return CommandResult.failed(
                cid, ErrorCode.INTERNAL, f"internal error ({type(exc).__name__})"
            )
        return CommandResult.ok(cid, result)

    def _prepare(self, command: Command) -> Action:
        """Validate the params of ``command`` into the action that runs it."""
        params = command.params
        match command.method:
            case CommandMethod.READ_REGISTER:
                ref = _read_register_ref(params)
                return lambda link: self._read_register(link, ref)
            case CommandMethod.READ_ALL:
                registers, group = _read_selection(params)
                return lambda link: self._read_all(link, registers, group)
            case CommandMethod.READ_ADDRESS:
                return _read_address
            case CommandMethod.RELAY_CONTROL:
                state = _read_relay_request(params)
                return lambda link: self._relay_control(link, command, state)
            case CommandMethod.READ_RELAY_STATE:
                return _read_relay_state
            case CommandMethod.SYNC_TIME:
                when = _read_time(params)
                return lambda link: self._sync_time(link, when)
        raise InvalidCommand(f"unknown method {command.method!r}")  # pragma: no cover

    # -- methods -----------------------------------------------------------------------

    async def _read_register(self, link: MeterLink, ref: RegisterRef) -> Mapping[str, Any]:
        label = ref.quantity or ref.data_id or ref.obis
        value = await link.read_register(ref)
        if not isinstance(value, Reading):
            return {"register": label, **to_json_value(value)}
        if value.quantity in QUANTITIES:
            self._publish(link, [value])
        return {
            "register": label,
            "value": to_json_value(value.value),
            "unit": value.unit,
            "ts": value.ts_ms,
        }

    async def _read_all(
        self, link: MeterLink, registers: tuple[str, ...], group: str
    ) -> Mapping[str, Any]:
        names = list(registers) or _group_quantities(link, group)
        readings = await link.read(names, ReadingSource.COMMAND)
        self._publish(link, readings)
        key = "di" if link.protocol is ProtocolKind.DLT645 else "obis"
        values = {
            r.quantity: {"value": to_json_value(r.value), "unit": r.unit, key: r.address}
            for r in readings
        }
        return {"values": values}

    async def _relay_control(
        self, link: MeterLink, command: Command, wanted: RelayState
    ) -> Mapping[str, Any]:
        self._take_relay_slot(command.meter)
        confirmed = await link.relay_control(wanted)
        if confirmed in _RELAY_EVENTS:
            kind, severity = _RELAY_EVENTS[confirmed]
            data = {"commandId": command.id, "requestedBy": command.requested_by}
            self._events.emit(MeterEvent(kind, severity, self._clock.now_ms(), link.meter, data))
        return {"state": confirmed.value, "confirmed": confirmed is wanted}

    async def _sync_time(self, link: MeterLink, when: datetime | None) -> Mapping[str, Any]:
        if when is None:
            when = datetime.fromtimestamp(self._clock.now_ms() / 1000, tz=UTC)
        applied = await link.sync_time(when)
        return {"time": applied.isoformat()}

    def _take_relay_slot(self, meter: MeterId) -> None:
        """Sliding-window limit: relays wear, and a looping client must not chatter one."""
        now = self._clock.monotonic()
        times = self._relay_times.setdefault(meter, collections.deque())
        while times and now - times[0] >= self._relay_window_s:
            times.popleft()
        if len(times) >= self._relay_limit:
            raise _RateLimited(
                f"at most {self._relay_limit} relay commands per {self._relay_window_s:g}s "
                f"for one meter"
            )
        times.append(now)

    def _publish(self, link: MeterLink, readings: list[Reading]) -> None:
        if readings:
            batch = ReadingsBatch(
                link.meter, link.protocol, ReadingSource.COMMAND, self._clock.now_ms(), readings
            )
            self._events.emit(batch)


# -- parameter parsing (pure) -----------------------------------------------------------


def _load(payload: Mapping[str, Any] | bytes | str) -> Mapping[str, Any]:
    data: object = payload
    if isinstance(payload, bytes | str):
        try:
            data = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidCommand(f"malformed JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise InvalidCommand("a command is a JSON object")
    return data


def _read_id(raw: object) -> str:
    if isinstance(raw, str) and raw.strip():
        return raw
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    raise InvalidCommand("missing id (a non-empty string)")


def _read_method(raw: object) -> CommandMethod:
    if isinstance(raw, str) and raw in CommandMethod.__members__.values():
        return CommandMethod(raw)
    known = ", ".join(m.value for m in CommandMethod)
    raise InvalidCommand(f"unknown method {raw!r}; known: {known}")


def _read_register_ref(params: Mapping[str, Any]) -> RegisterRef:
    quantity, data_id, obis = params.get("register"), params.get("dataId"), params.get("obis")
    if quantity is not None and (not isinstance(quantity, str) or quantity not in QUANTITIES):
        raise InvalidCommand(f"unknown register {quantity!r}")
    if data_id is not None and (not isinstance(data_id, str) or not _DATA_ID.fullmatch(data_id)):
        raise InvalidCommand(f"dataId must be 8 hex digits, got {data_id!r}")
    if obis is not None and (not isinstance(obis, str) or not _OBIS.fullmatch(obis)):
        raise InvalidCommand(f"obis must look like 1-0:32.7.0.255, got {obis!r}")
    class_id = _read_int(params, "classId", 3, 1, 0xFFFF)
    attribute = _read_int(params, "attribute", 2, 1, 0x7F)
    return RegisterRef(
        quantity, data_id.upper() if data_id else None, obis, class_id=class_id, attribute=attribute
    )


def _read_int(params: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name, default)
    if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
        raise InvalidCommand(f"{name} must be an integer in [{low}, {high}], got {raw!r}")
    return raw


def _read_selection(params: Mapping[str, Any]) -> tuple[tuple[str, ...], str]:
    registers, group = params.get("registers"), params.get("group")
    if registers is not None and group is not None:
        raise InvalidCommand("give registers or group, not both")
    if registers is not None:
        if not isinstance(registers, list) or not registers:
            raise InvalidCommand("registers must be a non-empty list of register names")
        unknown = [r for r in registers if not isinstance(r, str) or r not in QUANTITIES]
        if unknown:
            raise InvalidCommand(f"unknown registers: {unknown!r}")
        return tuple(registers), "all"
    group = "all" if group is None else group
    if group not in _GROUPS:
        raise InvalidCommand(f"group must be one of {', '.join(_GROUPS)}, got {group!r}")
    return (), str(group)


def _group_quantities(link: MeterLink, group: str) -> list[str]:
    """The group's names this model polls; all of the group's names if it polls none."""
    wanted = [n for n, info in QUANTITIES.items() if group == "all" or info.group == group]
    polled = {q for g in link.poll_groups for q in g.quantities}
    return [n for n in wanted if n in polled] or wanted


def _read_relay_request(params: Mapping[str, Any]) -> RelayState:
    state = params.get("state")
    if not isinstance(state, str) or state not in _RELAY_REQUESTS:
        raise InvalidCommand(f"state must be 'open' or 'close', got {state!r}")
    return _RELAY_REQUESTS[state]


def _read_time(params: Mapping[str, Any]) -> datetime | None:
    raw = params.get("time")
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InvalidCommand("time must be an ISO 8601 string")
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidCommand(f"time is not ISO 8601: {raw!r}") from None
    if when.tzinfo is None:
        # A meter clock set to an ambiguous local time is hard to notice and to undo.
        raise InvalidCommand("time must carry a UTC offset (e.g. 2025-01-01T00:00:00+08:00)")
    return when


async def _read_address(link: MeterLink) -> Mapping[str, Any]:
    return {"address": await link.read_address()}


async def _read_relay_state(link: MeterLink) -> Mapping[str, Any]:
    return {"state": (await link.read_relay_state()).value}
