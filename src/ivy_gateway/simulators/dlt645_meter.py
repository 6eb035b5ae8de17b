"""A simulated DL/T 645-2007 meter: the meter side of the protocol, built on the codec.

``Dlt645Meter`` answers what a 4G meter answers (reference ``shared/reference/dlt645.md``):

========================  ==============================================================
request                   answer
========================  ==============================================================
0x11 read                 91 + value from the live model below; B1 + 0x12 follow-ups when
                          the value is longer than ``follow_up_chunk``; D1 ``02`` for a DI
                          it lacks or lists in ``errors`` (any flags)
0x13 read address         93 from its real address (to ``AA..AA`` or its own address)
0x14 write                password checked (D4 ``04`` when wrong); date 04000101, time
                          04000102, date-time 0400010C set its clock; others acknowledged
0x08 broadcast time       clock set when the correction is at most 5 minutes; no reply
0x1C relay (§5.12)        password checked; trip / close-direct / close-permitted /
                          alarm / keep-power; the command's expiry is checked
0x1C vendor AES (§5.13)   only with ``vendor_aes_key``; decrypted, password checked
0x15/0x16/0x17/0x18/...   acknowledged (0x17 and 0x18 with their own reply layouts)
========================  ==============================================================

The electrical model is a seeded random walk, one step per read request: per-phase active
power wanders within 50..3000 W, voltage around 220 V, power factor 0.85..0.99, frequency
around 50 Hz; currents, reactive and apparent power follow from them, and the import
energy of the current tariff grows by the power over the elapsed (scaled) time, so energy
never decreases. An open relay makes power and current 0 and sets status word 3 bit 4.

``announce=True`` makes the meter send an unsolicited read-address reply (``93``) right
after connecting — what some 4G modules do as a "registration" — so the gateway knows it
without asking; otherwise the meter stays silent until asked, as most meters do.

Every value the meter reports is appended to ``sent`` (DI, canonical value, time) so that
an end-to-end test can compare what left the meter with what the gateway published.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

from ivy_gateway.codec.dlt645 import (
    CATALOG,
    NEED_DATA,
    AckReply,
    Address,
    BroadcastTimeRequest,
    ChangeBaudReply,
    ChangeBaudRequest,
    ChangePasswordReply,
    ChangePasswordRequest,
    DataId,
    Demand,
    ErrorFlags,
    ErrorReply,
    Frame,
    FrameDecoder,
    Function,
    Message,
    OperationStatus,
    Password,
    ReadAddressReply,
    ReadAddressRequest,
    ReadFollowUpReply,
    ReadFollowUpRequest,
    ReadReply,
    ReadRequest,
    RelayCommand,
    RelayControlRequest,
    SimpleRelayRequest,
    Value,
    VendorAesRelayRequest,
    WriteAddressRequest,
    WriteRequest,
    decode_message,
    encode_message,
)
from ivy_gateway.codec.dlt645.data import NumberFormat
from ivy_gateway.codec.errors import CodecError
from ivy_gateway.transport import ByteStream

from . import open_stream
from .faults import NO_FAULTS, Faults, ReplyChannel

__all__ = ["Dlt645Meter", "SentValue"]

_NOMINAL_V = 220.0
_MAX_BROADCAST_CORRECTION = timedelta(minutes=5)  # §5.6: meters accept only small steps
_DATE, _TIME, _DATETIME = 0x04000101, 0x04000102, 0x0400010C


@dataclass(frozen=True, slots=True)
class SentValue:
    """One value the meter put on the wire, in the canonical unit (W, not kW)."""

    di: str
    value: Value
    ts_ms: int


@dataclass(slots=True)
class _Phase:
    voltage: float
    power_w: float
    power_factor: float


def _canonical(di: int, value: float) -> Decimal:
    """``value`` rounded to the resolution the DI's format gives in the canonical unit."""
    entry = CATALOG[DataId(di)]
    assert isinstance(entry.format, NumberFormat)
    places = entry.format.decimals - entry.exponent
    return Decimal(value).quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN)


class Dlt645Meter:
    """One simulated meter; ``serve`` a stream or ``connect`` to a gateway."""

    def __init__(
        self,
        address: str,
        *,
        phases: int = 3,
        seed: int = 0,
        password: str = "02000000",
        vendor_aes_key: bytes | None = None,
        errors: Mapping[str, ErrorFlags] | None = None,
        follow_up_chunk: int | None = None,
        accepts_close_direct: bool = True,
        announce: bool = False,
        preamble_len: int = 0,
        faults: Faults = NO_FAULTS,
        time_scale: float = 1.0,
        clock: Callable[[], datetime] = datetime.now,
        asset_code: str = "IVY-SIM-DLT645",
    ) -> None:
        if phases not in (1, 3):
            raise ValueError("a meter has 1 or 3 phases")
        if follow_up_chunk is not None and follow_up_chunk < 1:
            raise ValueError("follow_up_chunk must be positive")
        self.address = Address.parse(address)
        self.phases = phases
        self.password = Password.parse(password)
        self.vendor_aes_key = vendor_aes_key
        self.errors = {DataId.parse(di).value: flags for di, flags in (errors or {}).items()}
        self.follow_up_chunk = follow_up_chunk
        self.accepts_close_direct = accepts_close_direct
        self.announce = announce
        self.preamble_len = preamble_len
        self.faults = faults
        self.time_scale = time_scale
        self.asset_code = asset_code
        self._clock = clock
        self._clock_offset = timedelta()
        self._rng = random.Random(seed)
        self._phases = [
            _Phase(_NOMINAL_V + self._rng.uniform(-3, 3), self._rng.uniform(200, 1500), 0.95)
            for _ in range(phases)
        ]
        self._frequency = 50.0
        self._import_kwh = [self._rng.uniform(100, 2000) for _ in range(4)]  # tariffs 1..4
        self._export_kwh = self._rng.uniform(0, 50)
        self._last_step = time.monotonic()
        #: Maximum demand since the last reset: (W, when), demand = total power here.
        self._max_demand: tuple[float, datetime] = (0.0, self.now())
        self.relay_open = False
        self.trip_commanded = False
        self.keep_power = False
        self.alarm = False
        self._close_permitted = False
        #: Pending follow-up parts: (DI, remaining value bytes).
        self._follow: tuple[DataId, bytes] | None = None
        #: Every value reported, in order (see the module docstring).
        self.sent: list[SentValue] = []
        #: Every request decoded, in order (tests assert on what the gateway asked).
        self.requests: list[Message] = []
        #: Values written with 0x14 that the meter does not model, by DI.
        self.written: dict[str, bytes] = {}
        self.connections = 0

    # -- running --------------------------------------------------------------------------

    async def connect(self, host: str, port: int) -> None:
        """Dial the gateway and serve the connection until either side closes it."""
        stream = await open_stream(host, port)
        try:
            await self.serve(stream)
        finally:
            await stream.aclose()

    async def serve(self, stream: ByteStream) -> None:
        """Answer requests on ``stream`` until it ends (or the faults disconnect it)."""
        self.connections += 1
        channel = ReplyChannel(stream, self.faults)
        decoder = FrameDecoder()
        self._follow = None
        if self.announce:
            await channel.send(self._encode(ReadAddressReply(self.address)))
        while not channel.closed:
            chunk = await stream.read()
            if not chunk:
                return
            decoder.feed(chunk)
            while not channel.closed and (event := decoder.next_event()) is not NEED_DATA:
                if isinstance(event, Frame):
                    reply = self.answer(event)
                    if reply is not None:
                        await channel.send(self._encode(reply))

    def press_button(self) -> None:
        """The customer presses the meter's button: closes a relay whose close was permitted."""
        if self._close_permitted and self.relay_open:
            self.relay_open = False
        self._close_permitted = False

    def now(self) -> datetime:
        """The meter's own clock (local time, no zone, whole seconds)."""
        return (self._clock() + self._clock_offset).replace(microsecond=0, tzinfo=None)

    def last_sent(self, di: str) -> SentValue:
        return next(v for v in reversed(self.sent) if v.di == di.upper())

    # -- protocol -------------------------------------------------------------------------

    def answer(self, frame: Frame) -> Message | None:
        """The reply to one received frame, or None (not for us, a broadcast, not a request)."""
        if frame.control.is_reply or not frame.address.matches(self.address):
            return None
        try:
            request = decode_message(frame)
        except CodecError:
            return None  # a real meter stays silent on a frame it cannot parse
        self.requests.append(request)
        match request:
            case ReadRequest(di=di):
                return self._read(di)
            case ReadFollowUpRequest(di=di, seq=seq):
                return self._read_follow_up(di, seq)
            case ReadAddressRequest():
                return ReadAddressReply(self.address)
            case WriteRequest():
                return self._write(request)
            case BroadcastTimeRequest(time=when):
                if abs(when - self.now()) <= _MAX_BROADCAST_CORRECTION:
                    self._set_clock(when)
                return None  # §5.6: never answered
            case RelayControlRequest() | VendorAesRelayRequest() | SimpleRelayRequest():
                return self._relay(request)
            case WriteAddressRequest(new_address=new):
                self.address = new
                return AckReply(request.FUNCTION)
            case ChangeBaudRequest(baud=baud):
                return ChangeBaudReply(baud)
            case ChangePasswordRequest():
                return self._change_password(request)
        if frame.address.is_broadcast:
            return None  # broadcast freeze: no reply either
        function = frame.control.function
        assert isinstance(function, Function)  # decode_message knew its layout
        return AckReply(function)

    def _encode(self, reply: Message) -> bytes:
        return encode_message(self.address, reply, preamble_len=self.preamble_len)

    def _read(self, di: DataId) -> Message:
        flags = self.errors.get(di.value)
        if flags is not None:
            return ErrorReply(ReadRequest.FUNCTION, flags)
        self._step()
        value = self._value(di.value)
        if value is None:
            return ErrorReply(ReadRequest.FUNCTION, ErrorFlags.NO_REQUESTED_DATA)
        self.sent.append(SentValue(str(di), value, time.time_ns() // 1_000_000))
        raw = CATALOG[di].encode_canonical(value)
        chunk = self.follow_up_chunk
        if chunk is None or len(raw) <= chunk:
            self._follow = None
            return ReadReply(di, raw)
        self._follow = (di, raw[chunk:])
        return ReadReply(di, raw[:chunk], follow_up=True)

    def _read_follow_up(self, di: DataId, seq: int) -> Message:
        if self._follow is None or self._follow[0] != di:
            return ErrorReply(ReadFollowUpRequest.FUNCTION, ErrorFlags.NO_REQUESTED_DATA)
        assert self.follow_up_chunk is not None  # parts exist only with a chunk size
        _, rest = self._follow
        part, rest = rest[: self.follow_up_chunk], rest[self.follow_up_chunk :]
        self._follow = (di, rest) if rest else None
        return ReadFollowUpReply(di, part, seq, follow_up=bool(rest))

    def _write(self, request: WriteRequest) -> Message:
        if request.password != self.password:
            return ErrorReply(request.FUNCTION, ErrorFlags.PASSWORD_OR_UNAUTHORIZED)
        entry = CATALOG.get(request.di)
        if entry is None:
            return ErrorReply(request.FUNCTION, ErrorFlags.NO_REQUESTED_DATA)
        try:
            value = entry.decode(request.value)
        except CodecError:
            return ErrorReply(request.FUNCTION, ErrorFlags.OTHER)
        now = self.now()
        if isinstance(value, datetime):
            self._set_clock(value)
        elif isinstance(value, date):
            self._set_clock(datetime.combine(value, now.time()))
        elif isinstance(value, clock_time):
            self._set_clock(datetime.combine(now.date(), value))
        else:
            self.written[str(request.di)] = request.value
        return AckReply(request.FUNCTION)

    def _change_password(self, request: ChangePasswordRequest) -> Message:
        if request.old != self.password:
            return ErrorReply(request.FUNCTION, ErrorFlags.PASSWORD_OR_UNAUTHORIZED)
        self.password = request.new
        return ChangePasswordReply(request.new)

    def _relay(self, request: Message) -> Message:
        function = RelayControlRequest.FUNCTION
        match request:
            case RelayControlRequest(password=password, command=command, valid_until=until):
                if password != self.password:
                    return ErrorReply(function, ErrorFlags.PASSWORD_OR_UNAUTHORIZED)
                if until < self.now():
                    return ErrorReply(function, ErrorFlags.OTHER)  # §5.12: command expired
            case VendorAesRelayRequest() if self.vendor_aes_key is not None:
                try:
                    plain = request.decrypt(self.vendor_aes_key)
                except CodecError:
                    return ErrorReply(function, ErrorFlags.OTHER)  # wrong key: garbage block
                if plain.password != str(self.password):
                    return ErrorReply(function, ErrorFlags.PASSWORD_OR_UNAUTHORIZED)
                command = plain.command
            case _:
                return ErrorReply(function, ErrorFlags.OTHER)  # no standard meter takes these
        return self._switch(command)

    def _switch(self, command: RelayCommand) -> Message:
        function = RelayControlRequest.FUNCTION
        if command is RelayCommand.TRIP:
            if self.keep_power:
                return ErrorReply(function, ErrorFlags.OTHER)
            self.relay_open, self.trip_commanded, self._close_permitted = True, True, False
        elif command is RelayCommand.CLOSE_DIRECT:
            if not self.accepts_close_direct:
                return ErrorReply(function, ErrorFlags.OTHER)  # an older meter (§5.12)
            self.relay_open, self.trip_commanded = False, False
        elif command is RelayCommand.CLOSE_PERMITTED:
            self.trip_commanded = False
            self._close_permitted = self.relay_open
        else:
            self.alarm = {RelayCommand.ALARM_ON: True, RelayCommand.ALARM_OFF: False}.get(
                command, self.alarm
            )
            self.keep_power = {
                RelayCommand.KEEP_POWER_ON: True,
                RelayCommand.KEEP_POWER_OFF: False,
            }.get(command, self.keep_power)
        return AckReply(function)

    def _set_clock(self, when: datetime) -> None:
        self._clock_offset = when - self._clock().replace(tzinfo=None)

    # -- the electrical model -------------------------------------------------------------

    def _step(self) -> None:
        """One random-walk step; energy integrates the power over the elapsed time."""
        now = time.monotonic()
        hours = max(0.0, now - self._last_step) * self.time_scale / 3600
        self._last_step = now
        rng = self._rng
        tariff = self.now().hour // 6  # four tariff periods a day
        self._import_kwh[tariff] += self._power_total() * hours / 1000
        for phase in self._phases:
            phase.power_w = min(3000.0, max(50.0, phase.power_w * math.exp(rng.gauss(0, 0.03))))
            phase.voltage += 0.2 * (_NOMINAL_V - phase.voltage) + rng.gauss(0, 0.3)
            pf = phase.power_factor + rng.gauss(0, 0.005)
            phase.power_factor = min(0.99, max(0.85, pf))
        self._frequency += 0.3 * (50.0 - self._frequency) + rng.gauss(0, 0.01)
        if self._power_total() > self._max_demand[0]:
            self._max_demand = (self._power_total(), self.now().replace(second=0))

    def _power_total(self) -> float:
        return 0.0 if self.relay_open else sum(p.power_w for p in self._phases)

    def _value(self, di: int) -> Value | None:
        """The canonical value of ``di``, or None when this meter does not have it."""
        reader = self._readers().get(di)
        if reader is not None:
            return reader()
        di3, di2, di1 = di >> 24, (di >> 16) & 0xFF, (di >> 8) & 0xFF
        if di3 != 0x02 or di & 0xFF or not 1 <= di2 <= 6:
            return None
        if di2 <= 2:  # voltage, current: per phase only
            if not 1 <= di1 <= self.phases:
                return None
            phase = self._phases[di1 - 1]
            if di2 == 1:
                return _canonical(di, phase.voltage)
            current = 0.0 if self.relay_open else phase.power_w / phase.voltage / phase.power_factor
            return _canonical(di, current)
        if di1 > self.phases:
            return None
        selected = self._phases if di1 == 0 else [self._phases[di1 - 1]]
        on = 0.0 if self.relay_open else 1.0
        active = on * sum(p.power_w for p in selected)
        apparent = on * sum(p.power_w / p.power_factor for p in selected)
        if di2 == 3:
            return _canonical(di, active)
        if di2 == 4:
            return _canonical(di, math.sqrt(max(0.0, apparent**2 - active**2)))
        if di2 == 5:
            return _canonical(di, apparent)
        pf = active / apparent if apparent else 1.0
        return _canonical(di, pf)

    def _readers(self) -> Mapping[int, Callable[[], Value]]:
        status = OperationStatus.RELAY_OPEN if self.relay_open else OperationStatus(0)
        if self.trip_commanded:
            status |= OperationStatus.RELAY_COMMAND_TRIP

        def energy(kwh: float) -> Callable[[], Value]:
            return lambda: Decimal(kwh).quantize(Decimal("0.01"), ROUND_FLOOR)

        imports = sum(self._import_kwh)
        peak_time = self._max_demand[1]
        readers: dict[int, Callable[[], Value]] = {
            0x00000000: energy(imports + self._export_kwh),
            0x00010000: energy(imports),
            0x00020000: energy(self._export_kwh),
            0x01010000: lambda: Demand(_canonical(0x02030000, self._max_demand[0]), peak_time),
            0x02800002: lambda: _canonical(0x02800002, self._frequency),
            _DATE: lambda: self.now().date(),
            _TIME: lambda: self.now().time(),
            _DATETIME: self.now,
            0x04000401: lambda: str(self.address),
            0x04000402: lambda: str(self.address),
            0x04000403: lambda: self.asset_code,
            0x04000409: lambda: Decimal(1600),  # imp/kWh
            0x04000501: lambda: 0,
            0x04000503: lambda: int(status),
        }
        for tariff, kwh in enumerate(self._import_kwh, start=1):
            readers[0x00010000 | tariff << 8] = energy(kwh)
        return readers
