"""One IVY/DLMS meter connection: identification, pushed notifications, associated requests.

``run()`` is the only loop of the connection (no task per meter): it feeds the
``WrapperDecoder`` and turns each packet into an action —

* heartbeat → identity (``MeterId`` = the 12-digit address). The all-zero placeholder, or
  no heartbeat within ``identify_timeout_s``: read the serial number ``0-0:96.1.0.255``
  over an association (a short-lived task, the loop keeps reading); if it is not 12
  usable digits, a synthetic id (``dlms_values.synthetic_meter_id``, logged as a warning);
* Data-/Event-Notification → ``ReadingsBatch(source=push)`` / ``MeterEvent(meter_event)``;
* responses → the ``Association`` → the waiting caller's future, by invoke-id (unknown or
  late invoke-ids are counted and dropped; garbage is counted and reported once).

Callers use ``async with session.associated():`` — AARQ (HLS-GMAC pass 3/4 when the
profile says ``hls-gmac`` and keys are configured) … RLRQ. One association per meter at a
time, under the session's lock; callers queued on the lock reuse it, the last one releases.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ivy_gateway.codec.dlms import Data, DataAccessResult, DataType, Obis, ScalerUnit
from ivy_gateway.codec.dlms.apdu.exception import ExceptionResponse
from ivy_gateway.codec.dlms.association_events import (
    ActionCompleted,
    AssociationState,
    BlockReceived,
    ErrorReceived,
    GetCompleted,
    GetListCompleted,
    NotificationReceived,
    RequestFailed,
    SetCompleted,
    UnexpectedResponse,
)
from ivy_gateway.codec.dlms.clock import CosemDateTime
from ivy_gateway.codec.dlms.enums import ActionResult
from ivy_gateway.codec.errors import DecodeError
from ivy_gateway.codec.ivy.heartbeat import Heartbeat
from ivy_gateway.codec.wrapper import (
    MANAGEMENT_WPORT,
    NEED_DATA,
    PUBLIC_CLIENT_WPORT,
    RawApdu,
    Skipped,
    WrappedPacket,
    WrapperDecoder,
)
from ivy_gateway.domain.commands import RegisterRef, RelayState
from ivy_gateway.domain.errors import (
    CommandError,
    MeterError,
    MeterOffline,
    MeterRejected,
    ProtocolViolation,
)
from ivy_gateway.domain.meter import ConnectionInfo, MeterId, ProtocolKind
from ivy_gateway.domain.ports import PollGroup
from ivy_gateway.domain.quantities import Reading, ReadingSource, quantity_unit
from ivy_gateway.observability import bind_log_context
from ivy_gateway.transport import ByteStream

from .context import SessionContext
from .dlms_link import ACSE, AssociatedLink
from .dlms_push import notification_event
from .dlms_values import (
    SERIAL_NUMBER_OBIS,
    data_to_json,
    meter_id_from_serial,
    reading_value,
    scaler_attribute,
    synthetic_meter_id,
)
from .profiles import DlmsPoint, RelayMethod

__all__ = ["DISCONNECT_CONTROL_OBIS", "DlmsSession"]

log = logging.getLogger(__name__)

DISCONNECT_CONTROL_OBIS: Final = Obis(0, 0, 96, 3, 10, 255)
CLOCK_OBIS: Final = Obis(0, 0, 1, 0, 0, 255)
_EARLY_LIMIT: Final = 32  # notifications kept until the meter is identified
_Answer = (
    GetCompleted | GetListCompleted | SetCompleted | ActionCompleted | BlockReceived | RequestFailed
)


class DlmsSession(AssociatedLink):
    """``MeterLink`` + ``LiveSession`` for one DLMS/COSEM connection."""

    __slots__ = (
        "_claimed",
        "_decoder",
        "_early",
        "_first",
        "_heartbeat_address",
        "_identifying",
        "_scalers",
        "garbage_bytes",
        "invalid_apdus",
    )

    def __init__(self, stream: ByteStream, context: SessionContext, first: bytes) -> None:
        super().__init__(stream, context)
        self._first = first
        pairs = ((MANAGEMENT_WPORT, MANAGEMENT_WPORT), (MANAGEMENT_WPORT, PUBLIC_CLIENT_WPORT))
        self._decoder = WrapperDecoder(
            accepted_wports=pairs, max_buffer=context.timings.max_buffer_bytes
        )
        self._heartbeat_address: str | None = None
        self._scalers: dict[str, ScalerUnit | None] = {}
        self._early: list[NotificationReceived] = []
        self._identifying: asyncio.Task[None] | None = None
        self._claimed = False
        self.garbage_bytes = 0
        self.invalid_apdus = 0

    # -- MeterLink / LiveSession properties ----------------------------------------------

    @property
    def protocol(self) -> ProtocolKind:
        return ProtocolKind.DLMS

    @property
    def model(self) -> str:
        return self._profile.name

    @property
    def poll_groups(self) -> Sequence[PollGroup]:
        return self._profile.groups

    @property
    def connection(self) -> ConnectionInfo:
        return self._stream.info

    @property
    def identified(self) -> bool:
        return self._claimed

    def close(self, reason: str) -> None:
        if not self._closed:
            self._closed = True
            log.info("closing DLMS connection: %s", reason)
            self._stream.close()

    # -- the read loop -------------------------------------------------------------------

    async def run(self) -> None:
        timings = self._context.timings
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timings.identify_timeout_s
        try:
            await self._received(self._first)
            while not self._closed:
                if self._meter is None and self._identifying is None:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        self._start_identification("no heartbeat")
                        continue
                    try:
                        async with asyncio.timeout(remaining):
                            chunk = await self._stream.read(self._decoder.free_space)
                    except TimeoutError:
                        continue
                else:
                    chunk = await self._stream.read(self._decoder.free_space)
                if not chunk:
                    break
                await self._received(chunk)
        finally:
            self._closed = True
            self._fail_waiters(MeterOffline("the meter connection closed"))
            if self._identifying is not None:
                self._identifying.cancel()
                with contextlib.suppress(asyncio.CancelledError, MeterError):
                    await self._identifying
            if self._claimed:
                self._context.release(self)
            self._stream.close()

    async def _received(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._capture("rx", chunk)
        self._decoder.feed(chunk)
        while (event := self._decoder.next_event()) is not NEED_DATA:
            if isinstance(event, WrappedPacket | RawApdu):
                await self._on_apdu(event.apdu)
            elif isinstance(event, Heartbeat):
                self._on_heartbeat(event)
            else:
                self._on_garbage(event)

    def _on_garbage(self, event: Skipped) -> None:
        first = self.garbage_bytes == 0
        self.garbage_bytes += len(event.data)
        if first:  # reported once per connection; the counter keeps the total
            self._context.invalid_traffic(
                self._stream.info, "bytes outside any DLMS packet", self._meter, event.data
            )

    def _on_heartbeat(self, heartbeat: Heartbeat) -> None:
        if self._meter is not None or self._identifying is not None:
            return  # a repeated heartbeat
        self._heartbeat_address = heartbeat.meter_address
        if heartbeat.is_placeholder:
            self._start_identification("placeholder address 000000000000")
        else:
            self._identify(MeterId(heartbeat.meter_address))

    def _start_identification(self, why: str) -> None:
        log.info("identifying the meter over DLMS (%s)", why)
        self._identifying = asyncio.create_task(self._identify_by_serial())

    async def _identify_by_serial(self) -> None:
        meter = None
        try:
            value = await self._get_raw(1, Obis.parse(SERIAL_NUMBER_OBIS), 2)
            meter = meter_id_from_serial(value)
        except MeterError as error:
            log.info("serial number not readable: %s", error)
        if meter is None:
            meter = synthetic_meter_id(self._stream.info)
            log.warning(
                "meter has no usable address or serial number: using synthetic id %s", meter
            )
        if not self._closed:
            self._identify(meter)

    def _identify(self, meter: MeterId) -> None:
        self._meter = meter
        self._profile = self._context.profile_for(meter, ProtocolKind.DLMS)
        if self._association is not None and self._association.state is AssociationState.IDLE:
            self._association = None  # rebuilt with this meter's keys
        bind_log_context(meter=str(meter))
        self._context.claim(self)
        self._claimed = True
        early, self._early = self._early, []
        for notification in early:
            self._notify(notification)

    async def _on_apdu(self, apdu: bytes) -> None:
        association = self._ensure_association()
        try:
            event = association.receive(apdu)
        except DecodeError as error:
            self.invalid_apdus += 1
            log.info("APDU %s… not accepted: %s", apdu[:16].hex().upper(), error)
            return
        if isinstance(event, NotificationReceived):
            if self._claimed:
                self._notify(event)
            elif len(self._early) < _EARLY_LIMIT:
                self._early.append(event)
        elif isinstance(event, UnexpectedResponse):
            self.unexpected_responses += 1
            log.info("dropped a response with unexpected invoke-id %s", event.invoke_id)
        elif isinstance(event, ErrorReceived):
            refusal = event.error
            if isinstance(refusal, ExceptionResponse):
                code = int(refusal.service_error)
            else:
                code = refusal.error_value
            self._fail_waiters(
                MeterRejected(
                    f"meter answered {refusal}", code=code, detail={"error": str(refusal)}
                )
            )
        elif isinstance(event, BlockReceived):
            await self._send(event.reply)
        elif isinstance(event, _Answer):
            self._resolve(event.invoke_id, event)
        else:
            self._resolve(ACSE, event)

    def _notify(self, event: NotificationReceived) -> None:
        scalers = {obis: s.scaler for obis, s in self._scalers.items() if s is not None}
        emitted = notification_event(
            event, self.meter, self._profile, scalers, self._context.clock.now_ms()
        )
        if emitted is not None:
            self._context.sink.emit(emitted)

    async def _load_scalers(self, points: Sequence[DlmsPoint]) -> None:
        missing: dict[str, tuple[int, Obis, int]] = {}
        for point in points:
            attribute = scaler_attribute(point.class_id)
            if attribute is not None and point.obis not in self._scalers:
                missing[point.obis] = (point.class_id, Obis.parse(point.obis), attribute)
        if not missing:
            return
        results = await self._get_many(list(missing.values()))
        for obis, result in zip(missing, results, strict=True):
            scaler = None
            if isinstance(result, Data):
                with contextlib.suppress(DecodeError):
                    scaler = ScalerUnit.from_data(result)
            self._scalers[obis] = scaler  # None: fall back to the profile's scaler

    def _points(self, quantities: Sequence[str]) -> list[DlmsPoint]:
        points = self._profile.points
        return [p for q in quantities if isinstance(p := points.get(q), DlmsPoint)]

    def _reading(
        self, point: DlmsPoint, data: Data | DataAccessResult, source: ReadingSource, ts: int
    ) -> Reading | None:
        if not isinstance(data, Data):
            return None
        cached = self._scalers.get(point.obis)
        scaler = point.scaler if cached is None else cached.scaler
        value = reading_value(data, scaler, point.divisor)
        if value is None:
            return None
        unit = quantity_unit(point.quantity)
        return Reading(self.meter, point.quantity, value, unit, ts, source, point.obis)

    async def read(self, quantities: Sequence[str], source: ReadingSource) -> list[Reading]:
        points = self._points(quantities)
        if not points:
            return []
        async with self.associated():
            await self._load_scalers(points)
            items = [(p.class_id, Obis.parse(p.obis), p.attribute) for p in points]
            results = await self._get_many(items)
        ts = self._context.clock.now_ms()
        readings = (self._reading(p, r, source, ts) for p, r in zip(points, results, strict=True))
        return [r for r in readings if r is not None]

    async def read_register(self, ref: RegisterRef) -> Reading | Mapping[str, Any]:
        if ref.data_id is not None:
            raise CommandError("dataId is for DL/T 645 meters; name an obis or a register")
        if ref.quantity is not None:
            points = self._points([ref.quantity])
            if not points:
                raise CommandError(f"model {self.model} has no register {ref.quantity}")
            readings = await self.read([ref.quantity], ReadingSource.COMMAND)
            if not readings:
                raise MeterRejected(f"the meter gave no value for {ref.quantity}", code=4)
            return readings[0]
        assert ref.obis is not None
        try:
            obis = Obis.parse(ref.obis)
        except ValueError as error:
            raise CommandError(str(error)) from error
        data = await self._get_raw(ref.class_id, obis, ref.attribute)
        return {
            "obis": str(obis),
            "class_id": ref.class_id,
            "attribute": ref.attribute,
            "value": data_to_json(data),
        }

    async def read_address(self) -> str:
        return self._heartbeat_address or str(self.meter)

    def _check_relay(self) -> None:
        method = self._context.options_for(self.meter).relay_method or self._profile.relay
        if method is not RelayMethod.DLMS_CLASS70:
            raise CommandError(f"relay control is not available for model {self.model}")

    async def relay_control(self, state: RelayState) -> RelayState:
        self._check_relay()
        if state is RelayState.UNKNOWN:
            raise CommandError("relay state must be open or closed")
        method = 1 if state is RelayState.OPEN else 2  # remote_disconnect / remote_reconnect
        parameter = Data(DataType.INTEGER, 0)
        async with self.associated():
            event = await self._request(
                lambda a: a.send_action(70, DISCONNECT_CONTROL_OBIS, method, parameter)
            )
            if not isinstance(event, ActionCompleted):
                raise ProtocolViolation(f"unexpected answer to an ACTION: {event}")
            if event.result is not ActionResult.SUCCESS:
                raise MeterRejected(
                    f"relay {state.value}: {event.result.name}",
                    code=int(event.result),
                    detail={"result": event.result.name},
                )
            return _relay_state(await self._get(70, DISCONNECT_CONTROL_OBIS, 2))

    async def read_relay_state(self) -> RelayState:
        self._check_relay()
        return _relay_state(await self._get_raw(70, DISCONNECT_CONTROL_OBIS, 2))

    async def sync_time(self, when: dt.datetime) -> dt.datetime:
        stamp = Data(DataType.OCTET_STRING, CosemDateTime.from_datetime(when).to_bytes())
        async with self.associated():
            event = await self._request(lambda a: a.send_set(8, CLOCK_OBIS, 2, stamp))
            if not isinstance(event, SetCompleted):
                raise ProtocolViolation(f"unexpected answer to a SET: {event}")
            if event.result is not DataAccessResult.SUCCESS:
                raise MeterRejected(
                    f"setting the clock: {event.result.name}",
                    code=int(event.result),
                    detail={"result": event.result.name},
                )
            back = await self._get(8, CLOCK_OBIS, 2)
        if not isinstance(back.value, bytes):
            raise ProtocolViolation(f"clock time is not an octet-string: {back}")
        try:
            read_back = CosemDateTime.from_bytes(back.value).to_datetime()
        except DecodeError as error:
            raise ProtocolViolation(f"clock time unreadable: {error}") from error
        return read_back if read_back.tzinfo else read_back.replace(tzinfo=when.tzinfo)


def _relay_state(data: Data) -> RelayState:
    """output_state (class 70 attribute 2): TRUE = connected = relay closed."""
    if data.tag is not DataType.BOOLEAN:
        raise ProtocolViolation(f"output_state is not a boolean: {data}")
    return RelayState.CLOSED if data.value else RelayState.OPEN
