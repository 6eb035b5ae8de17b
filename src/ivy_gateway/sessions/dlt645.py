"""A DL/T 645-2007 meter session: the ``MeterLink`` a poller or a command uses.

Lifecycle (``sessions/context.py``): identify → ``context.claim(self)`` → serve →
``context.release(self)``. The wire half — decoder, identification, the one outstanding
request, retries, follow-up frames — is ``Dlt645Connection`` (``dlt645_connection.py``).

Choices where the standard leaves room (reference §5.6, §5.12):

* ``relay_control(CLOSED)`` sends "close directly" (``1C``, the later State Grid profile,
  what a remote reconnect means) and falls back to "close permitted" (``1B``, in every
  remote-control meter; the customer then presses the button) when the meter refuses
  ``1C`` with anything but a password error. The state read back from status word 3 is
  what is returned, so a permitted-but-still-open relay reports ``open``.
* ``sync_time`` writes time (04000102) then date (04000101) with 0x14 and the password:
  broadcast time (0x08) gets no answer and meters take at most a few minutes' correction
  once a day, so it cannot confirm anything. Time first, so the meter's own midnight
  rollover between the two writes cannot leave yesterday's date. Then both are read back.
* The meter's clock is taken to run in the gateway's local time zone: relay-command
  expiry, the vendor relay timestamp and ``sync_time`` all use it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from ivy_gateway.codec.dlt645 import (
    BY_QUANTITY,
    CATALOG,
    WILDCARD,
    DataId,
    Demand,
    ErrorFlags,
    OperationStatus,
    OperatorCode,
    Password,
    ReadAddressReply,
    ReadAddressRequest,
    RelayCommand,
    RelayControlRequest,
    Value,
    VendorRelayPlaintext,
    WriteRequest,
)
from ivy_gateway.domain.commands import RegisterRef, RelayState
from ivy_gateway.domain.errors import (
    CommandError,
    ConfigError,
    MeterOffline,
    MeterRejected,
)
from ivy_gateway.domain.meter import MeterId, ProtocolKind
from ivy_gateway.domain.ports import PollGroup
from ivy_gateway.domain.quantities import Reading, ReadingSource
from ivy_gateway.observability import bind_log_context
from ivy_gateway.transport import ByteStream

from .context import MeterOptions, SessionContext
from .dlt645_connection import Dlt645Connection
from .profiles import DltPoint, MeterProfile, RelayMethod

__all__ = ["Dlt645Session"]

log = logging.getLogger(__name__)

_STATUS_WORD_3 = DataId(0x04000503)
_DATE = DataId(0x04000101)
_TIME = DataId(0x04000102)
#: §5.12: the meter ignores a relay command after its expiry; a few minutes is usual.
_RELAY_VALIDITY = timedelta(minutes=5)


class Dlt645Session(Dlt645Connection):
    """A ``LiveSession`` (and ``MeterLink``) for one DL/T 645 meter connection."""

    __slots__ = ("_claimed", "_profile")

    def __init__(self, stream: ByteStream, context: SessionContext, first: bytes) -> None:
        super().__init__(stream, context, first)
        self._profile: MeterProfile | None = None
        self._claimed = False

    # -- LiveSession properties -----------------------------------------------------------

    @property
    def meter(self) -> MeterId:
        if self._meter is None:
            raise MeterOffline("the meter is not identified yet")
        return self._meter

    @property
    def protocol(self) -> ProtocolKind:
        return ProtocolKind.DLT645

    @property
    def model(self) -> str:
        return self._require_profile().name

    @property
    def poll_groups(self) -> Sequence[PollGroup]:
        return self._require_profile().groups

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self) -> None:
        """Identify, claim, serve until the connection ends; never raises on disconnect."""
        try:
            address = await self._identify()
            if address is None:
                log.info("no DL/T 645 meter identified on %s; closing", self.connection)
                return
            meter = self._identified(address)
            self._profile = self._context.profile_for(meter, ProtocolKind.DLT645)
            bind_log_context(meter=str(meter))
            log.info("DL/T 645 meter identified (model %s)", self._profile.name)
            self._context.claim(self)
            self._claimed = True
            await self._serve_frames()
            log.info("meter closed the connection")
        except MeterOffline as exc:  # includes StreamClosed: a write found the peer gone
            log.info("connection ended: %s", exc)
        finally:
            self._end(self._close_reason or "connection closed")
            if self._claimed:
                self._context.release(self)

    # -- MeterLink ------------------------------------------------------------------------

    async def read(self, quantities: Sequence[str], source: ReadingSource) -> list[Reading]:
        profile = self._require_profile()
        readings: list[Reading] = []
        for quantity in quantities:
            point = profile.points.get(quantity)
            if not isinstance(point, DltPoint):
                continue
            di = DataId.parse(point.di)
            try:
                reading = await self._read_value(di)
            except MeterRejected as exc:
                if not exc.code & ErrorFlags.NO_REQUESTED_DATA:
                    raise
                log.debug("meter has no %s (%s)", quantity, di)
                continue
            value = _as_decimal(reading.value)
            if value is None:
                log.warning("%s (%s) is not a number: %r", quantity, di, reading.value)
                continue
            now = self._context.clock.now_ms()
            readings.append(
                Reading(self.meter, quantity, value, reading.unit, now, source, str(di))
            )
        return readings

    async def read_register(self, ref: RegisterRef) -> Reading | Mapping[str, Any]:
        if ref.obis is not None:
            raise CommandError("obis is for DLMS meters; name a register or a dataId")
        di = self._di_for(ref.quantity) if ref.quantity is not None else _catalogued(ref.data_id)
        reading = await self._read_value(di)
        now = self._context.clock.now_ms()
        quantity = ref.quantity or reading.quantity
        value = _as_decimal(reading.value)
        if value is not None and quantity is not None:
            source = ReadingSource.COMMAND
            return Reading(self.meter, quantity, value, reading.unit, now, source, str(di))
        return {"value": _plain(reading.value), "unit": reading.unit, "ts": now, "di": str(di)}

    async def read_address(self) -> str:
        async with self._lock:
            frame = await self._exchange(ReadAddressRequest(), address=WILDCARD)
        return str(self._decode(frame, ReadAddressReply).address)

    async def read_relay_state(self) -> RelayState:
        try:
            word = (await self._read_value(_STATUS_WORD_3)).value
        except MeterRejected as exc:
            if exc.code & ErrorFlags.NO_REQUESTED_DATA:
                return RelayState.UNKNOWN  # a meter without status word 3 (§7.5)
            raise
        assert isinstance(word, int)  # the catalogue reads status words as bit fields
        return RelayState.OPEN if word & OperationStatus.RELAY_OPEN else RelayState.CLOSED

    async def relay_control(self, state: RelayState) -> RelayState:
        if state is RelayState.UNKNOWN:
            raise CommandError("relay state must be open or closed")
        options = self._context.options_for(self.meter)
        method = options.relay_method or self._require_profile().relay
        opening = state is RelayState.OPEN
        if method is RelayMethod.DLT645_VENDOR_AES and options.vendor_aes_key is not None:
            plain = VendorRelayPlaintext(
                self._local_now(),
                options.dlt645_operator,
                options.dlt645_password,
                RelayCommand.TRIP if opening else RelayCommand.CLOSE_PERMITTED,
            )
            await self._command(plain.encrypt(options.vendor_aes_key))
        elif method in (RelayMethod.DLT645_STANDARD, RelayMethod.DLT645_VENDOR_AES):
            if method is RelayMethod.DLT645_VENDOR_AES:
                log.warning("relay method vendor-aes without vendor_aes_key: standard frame")
            await self._standard_relay(options, opening)
        else:
            raise CommandError(f"meter model {self.model} has no DL/T 645 relay ({method})")
        return await self.read_relay_state()

    async def _standard_relay(self, options: MeterOptions, opening: bool) -> None:
        password, operator = _credentials(options)
        valid_until = self._local_now() + _RELAY_VALIDITY

        def request(command: RelayCommand) -> RelayControlRequest:
            return RelayControlRequest(password, operator, command, valid_until)

        if opening:
            await self._command(request(RelayCommand.TRIP))
            return
        try:
            await self._command(request(RelayCommand.CLOSE_DIRECT))
        except MeterRejected as exc:
            if exc.code & ErrorFlags.PASSWORD_OR_UNAUTHORIZED:
                raise
            log.info("meter refused close-direct (%s); sending close-permitted", exc)
            await self._command(request(RelayCommand.CLOSE_PERMITTED))

    async def sync_time(self, when: datetime) -> datetime:
        password, operator = _credentials(self._context.options_for(self.meter))
        target = when.astimezone().replace(tzinfo=None, microsecond=0)
        for di, value in ((_TIME, target.time()), (_DATE, target.date())):
            raw = CATALOG[di].encode(value)
            await self._command(WriteRequest(di, password, operator, raw))
        day = (await self._read_value(_DATE)).value
        clock = (await self._read_value(_TIME)).value
        assert isinstance(day, date)  # the catalogue's formats for 04000101 / 04000102
        assert isinstance(clock, time)
        return datetime.combine(day, clock).astimezone()

    # -- helpers --------------------------------------------------------------------------

    def _require_profile(self) -> MeterProfile:
        if self._profile is None:
            raise MeterOffline("the meter is not identified yet")
        return self._profile

    def _di_for(self, quantity: str) -> DataId:
        point = self._require_profile().points.get(quantity)
        if isinstance(point, DltPoint):
            return DataId.parse(point.di)
        entry = BY_QUANTITY.get(quantity)
        if entry is None:
            raise CommandError(f"no DL/T 645 register holds {quantity!r}")
        return entry.di

    def _local_now(self) -> datetime:
        """The gateway clock as the meter's local time (whole seconds, no zone)."""
        return datetime.fromtimestamp(self._context.clock.now_ms() / 1000).replace(microsecond=0)


def _catalogued(text: str | None) -> DataId:
    try:
        di = DataId.parse(text or "")
    except ValueError:
        raise CommandError(f"dataId must be 8 hex digits, got {text!r}") from None
    if di not in CATALOG:
        raise CommandError(f"dataId {di} is not in the DL/T 645 catalogue")
    return di


def _credentials(options: MeterOptions) -> tuple[Password, OperatorCode]:
    try:
        return Password.parse(options.dlt645_password), OperatorCode(options.dlt645_operator)
    except ValueError as exc:
        raise ConfigError(f"DL/T 645 password or operator code: {exc}") from None


def _as_decimal(value: Value) -> Decimal | None:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, Demand):
        return value.value
    if isinstance(value, int):
        return Decimal(value)
    return None


def _plain(value: Value) -> Value:
    """A value without a canonical quantity, as the command result shows it."""
    return value.isoformat() if isinstance(value, date | time) else value
