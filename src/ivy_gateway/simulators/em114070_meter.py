"""A simulated IVY EM114070 single-phase DLMS/COSEM meter, faithful to em114070.md §7.

================================  ===========================================================
it receives                       it answers
================================  ===========================================================
(connects)                        the 26-byte heartbeat with its 12-digit address
AARQ, LN, no authentication       AARE accepted (vector ``aare_accepted_ln``: conformance
                                  get/set/selective-access/action, max PDU 1024)
AARQ, any other context/mech.     AARE rejected-permanent, application-context-name-not-
                                  supported (``aare_rejected_context_not_supported``)
GET attr 2 of the 14 objects      the value (em114070-objects.json, wandering slowly),
                                  echoing the request's invoke-id byte
GET attr 1 / attr 3 (class 3)     the logical name / the inferred scaler_unit
any other GET                     ``C4 01 iid 01 04`` object-undefined
SET clock attribute 2             accepted (the meter's clock moves); other SETs denied
ACTION class 70 (``disconnect_    remote_disconnect / remote_reconnect; otherwise
control=True``, never seen live)  object-undefined
a service before the AARE         ``D8 01 02``; GET-with-list/-next (not granted) too
RLRQ                              ``63 03 80 01 00``
================================  ===========================================================

Replies are wrapped ``0001 0001 0001 LLLL`` (or bare, with ``unwrapped_probability``);
``push_event`` / ``push_data`` send Event-/Data-Notifications with or without time.
The electrical model is a seeded random walk, one step per GET: voltage around 236.36 V,
frequency around 50.04 Hz, a load of 50..3000 W with power factor 0.85..0.99 (0 with the
relay open); the absolute energy (Wh) grows with the power over the elapsed time.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable

from ivy_gateway.codec.dlms import (
    CosemAttributeDescriptor,
    CosemDateTime,
    Data,
    DataAccessResult,
    DataType,
    LongInvokeIdAndPriority,
    Obis,
    decode_service_apdu,
)
from ivy_gateway.codec.dlms.apdu.acse import (
    Aare,
    AcseServiceUserDiagnostic,
    ApplicationContext,
    AssociationResult,
    Mechanism,
    decode_aarq,
    encode_aare,
)
from ivy_gateway.codec.dlms.apdu.action import ActionRequestNormal, ActionResponseNormal
from ivy_gateway.codec.dlms.apdu.exception import ExceptionResponse
from ivy_gateway.codec.dlms.apdu.get import GetRequestNormal, GetResponseNormal
from ivy_gateway.codec.dlms.apdu.initiate import Conformance, InitiateResponse
from ivy_gateway.codec.dlms.apdu.notification import DataNotification, EventNotificationRequest
from ivy_gateway.codec.dlms.apdu.release import Rlre, encode_rlre
from ivy_gateway.codec.dlms.apdu.set import SetRequestNormal, SetResponseNormal
from ivy_gateway.codec.dlms.enums import ActionResult, ServiceError, StateError
from ivy_gateway.codec.dlms.units import ScalerUnit, Unit
from ivy_gateway.codec.errors import DecodeError
from ivy_gateway.codec.ivy.heartbeat import encode_heartbeat

from .cosem_server import ApduServer, CosemObject, ObjectStore, Walk, octet_string
from .faults import NO_FAULTS, Faults

__all__ = ["DISCONNECT_CONTROL_OBIS", "EVENT_CODE_OBIS", "Em114070Meter"]

DISCONNECT_CONTROL_OBIS = Obis(0, 0, 96, 3, 10, 255)
EVENT_CODE_OBIS = Obis(0, 0, 96, 11, 0, 255)
_CLOCK = Obis(0, 0, 1, 0, 0, 255)
_LOCAL_OFFSET = dt.timedelta(hours=8)  # the scanned meter ran on UTC+8 (em114070.md §1)
_GRANTED = Conformance(0x00001D)  # aare_accepted_ln: get, set, selective access, action
_NOT_ALLOWED = ExceptionResponse(StateError.SERVICE_NOT_ALLOWED, ServiceError.SERVICE_NOT_SUPPORTED)
_MANUFACTURER = b"Zhejiang Yongtailong Electronic Co., LTD"


class Em114070Meter(ApduServer):
    """One simulated EM114070; ``serve`` a stream or ``connect`` to a gateway."""

    def __init__(
        self,
        address: str = "311501114070",
        *,
        serial: str = "000000000000",
        seed: int = 0,
        faults: Faults = NO_FAULTS,
        unwrapped_probability: float = 0.0,
        disconnect_control: bool = False,
        time_scale: float = 1.0,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        super().__init__(
            heartbeat=encode_heartbeat(address),
            faults=faults,
            seed=seed,
            unwrapped_probability=unwrapped_probability,
        )
        self.address = address
        self.serial = serial
        self.disconnect_control = disconnect_control
        self.time_scale = time_scale
        self._clock = clock
        self._clock_offset = dt.timedelta()
        self.associated = False
        self.relay_closed = True
        rng = self.rng
        self._voltage = Walk(rng, 236.36, 225.0, 245.0, 0.3)
        self._frequency = Walk(rng, 50.04, 49.9, 50.1, 0.01)
        self._power = Walk(rng, rng.uniform(200, 1500), 50.0, 3000.0, 20.0)
        self._power_factor = Walk(rng, 0.95, 0.85, 0.99, 0.005)
        self.energy_wh = rng.uniform(1000, 50_000)
        self._last_step = time.monotonic()
        self._pushes = 0
        self.store = ObjectStore(self._objects())

    # -- model ---------------------------------------------------------------------------

    def now(self) -> dt.datetime:
        """The meter's local clock (UTC+8, naive, whole seconds)."""
        local = self._clock().astimezone(dt.UTC).replace(tzinfo=None) + _LOCAL_OFFSET
        return (local + self._clock_offset).replace(microsecond=0)

    def _step(self) -> None:
        now = time.monotonic()
        elapsed_h = (now - self._last_step) * self.time_scale / 3600
        self._last_step = now
        self.energy_wh += self.power_w * elapsed_h
        for walk in (self._voltage, self._frequency, self._power, self._power_factor):
            walk()

    @property
    def power_w(self) -> float:
        return self._power.value if self.relay_closed else 0.0

    def _energy(self) -> float:
        return math.floor(self.energy_wh)

    def _apparent(self) -> float:
        return self.power_w / self._power_factor.value

    def _current_a(self) -> float:
        return self.power_w / (self._voltage.value * self._power_factor.value)

    def _objects(self) -> list[CosemObject]:
        def register(
            obis: str, tag: DataType, scaler: int, unit: Unit, value: Callable[[], float]
        ) -> CosemObject:
            scaled = ScalerUnit(scaler, unit)

            def get() -> Data:
                return Data(tag, round(value() / 10**scaler))

            return CosemObject(3, Obis.parse(obis), {2: get, 3: scaled.to_data})

        def data(obis: str, value: Data) -> CosemObject:
            return CosemObject(1, Obis.parse(obis), {2: lambda: value})

        def reactive() -> float:
            pf = self._power_factor.value
            return self.power_w * math.tan(math.acos(pf))

        signed, unsigned = DataType.DOUBLE_LONG, DataType.DOUBLE_LONG_UNSIGNED
        objects = [
            register("1-0:1.7.0.255", signed, 0, Unit.WATT, lambda: self.power_w),
            register("1-0:3.7.0.255", signed, 0, Unit.VAR, reactive),
            register(
                "1-0:9.7.0.255",
                unsigned,
                0,
                Unit.VOLT_AMPERE,
                lambda: self.power_w / self._power_factor.value,
            ),
            register("1-0:11.7.0.255", unsigned, -3, Unit.AMPERE, self._current_a),
            register("1-0:12.7.0.255", unsigned, -2, Unit.VOLT, lambda: self._voltage.value),
            register("1-0:13.7.0.255", signed, -3, Unit.COUNT, lambda: self._power_factor.value),
            register("1-0:14.7.0.255", unsigned, -2, Unit.HERTZ, lambda: self._frequency.value),
            register(
                "1-0:15.8.0.255", unsigned, 0, Unit.WATT_HOUR, lambda: math.floor(self.energy_wh)
            ),
            register("1-0:91.7.0.255", unsigned, -3, Unit.AMPERE, self._current_a),
            CosemObject(8, _CLOCK, {2: self._clock_value}, setters={2: self._set_clock}),
            data("0-0:42.0.0.255", octet_string(b"YTL1020000000000")),
            data("0-0:96.1.0.255", octet_string(self.serial.encode("ascii"))),
            data("0-0:96.1.1.255", octet_string(_MANUFACTURER)),
            data("0-0:96.14.0.255", Data(DataType.UNSIGNED, 1)),
        ]
        if self.disconnect_control:
            objects.append(self._disconnect_control())
        return objects

    def _disconnect_control(self) -> CosemObject:
        def switch(closed: bool) -> Callable[[Data | None], tuple[ActionResult, Data | None]]:
            def call(parameters: Data | None) -> tuple[ActionResult, Data | None]:
                if parameters is None or parameters.tag != DataType.INTEGER:
                    return ActionResult.TYPE_UNMATCHED, None
                self.relay_closed = closed
                return ActionResult.SUCCESS, None

            return call

        return CosemObject(
            70,
            DISCONNECT_CONTROL_OBIS,
            {
                2: lambda: Data(DataType.BOOLEAN, self.relay_closed),
                3: lambda: Data(DataType.ENUM, 1 if self.relay_closed else 0),
                4: lambda: Data(DataType.ENUM, 1),
            },
            methods={1: switch(False), 2: switch(True)},
        )

    def _clock_value(self) -> Data:
        stamp = CosemDateTime.from_datetime(self.now())
        return octet_string(stamp.to_bytes())

    def _set_clock(self, value: Data) -> DataAccessResult:
        if not isinstance(value.value, bytes) or len(value.value) != 12:
            return DataAccessResult.TYPE_UNMATCHED
        try:
            when = CosemDateTime.from_bytes(value.value).to_datetime()
        except DecodeError:
            return DataAccessResult.TYPE_UNMATCHED
        # like a cheap meter: the wall-clock fields are taken, the deviation is ignored
        self._clock_offset += when.replace(tzinfo=None) - self.now()
        return DataAccessResult.SUCCESS

    # -- protocol ------------------------------------------------------------------------

    def reset_connection(self) -> None:
        self.associated = False

    def answer(self, apdu: bytes) -> list[bytes]:
        if apdu[0] == 0x60:
            return [self._associate(apdu)]
        if apdu[0] == 0x62:
            self.associated = False
            return [encode_rlre(Rlre())]
        try:
            request = decode_service_apdu(apdu)
        except DecodeError:
            return []  # a real meter stays silent on what it cannot parse
        if not self.associated:
            return [_NOT_ALLOWED.to_bytes()]
        if isinstance(request, GetRequestNormal):
            self._step()
            item = request.attribute
            value = self.store.get(item.class_id, item.obis, item.attribute_id)
            return [GetResponseNormal(request.invoke_id_and_priority, value).to_bytes()]
        if isinstance(request, SetRequestNormal):
            item = request.attribute
            result = self.store.set(item.class_id, item.obis, item.attribute_id, request.value)
            return [SetResponseNormal(request.invoke_id_and_priority, result).to_bytes()]
        if isinstance(request, ActionRequestNormal):
            method = request.method
            outcome, returned = self.store.action(
                method.class_id, method.obis, method.method_id, request.parameters
            )
            response = ActionResponseNormal(request.invoke_id_and_priority, outcome, returned)
            return [response.to_bytes()]
        return [_NOT_ALLOWED.to_bytes()]

    def _associate(self, apdu: bytes) -> bytes:
        try:
            aarq = decode_aarq(apdu)
        except DecodeError:
            context = ApplicationContext.LN
            accepted = False
        else:
            context = aarq.application_context
            accepted = context is ApplicationContext.LN and aarq.mechanism in (
                None,
                Mechanism.LOWEST,
            )
        self.associated = accepted
        if accepted:
            aare = Aare(
                ApplicationContext.LN,
                AssociationResult.ACCEPTED,
                user_information=InitiateResponse(_GRANTED, 1024),
            )
        else:
            aare = Aare(
                context,
                AssociationResult.REJECTED_PERMANENT,
                AcseServiceUserDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED,
            )
        return encode_aare(aare)

    # -- pushes --------------------------------------------------------------------------

    async def push_event(self, code: int = 0x4C, *, with_time: bool = True) -> bool:
        """Send an Event-Notification (event code object, attribute 2); False if offline."""
        stamp = CosemDateTime.from_datetime(self.now()) if with_time else None
        attribute = CosemAttributeDescriptor(1, EVENT_CODE_OBIS, 2)
        notification = EventNotificationRequest(
            attribute, Data(DataType.LONG_UNSIGNED, code), stamp
        )
        return await self.send_apdu(notification.to_bytes())

    async def push_data(self, *, with_time: bool = False) -> bool:
        """Send a Data-Notification of voltage, frequency and energy as (name, value)
        pairs; False if offline."""
        self._pushes += 1
        values = []
        for obis in ("1-0:12.7.0.255", "1-0:14.7.0.255", "1-0:15.8.0.255"):
            name = Obis.parse(obis)
            values += [octet_string(name.to_bytes()), self.store.get(3, name, 2)]
        body = Data(DataType.STRUCTURE, tuple(v for v in values if isinstance(v, Data)))
        stamp = CosemDateTime.from_datetime(self.now()) if with_time else None
        notification = DataNotification(LongInvokeIdAndPriority(self._pushes), stamp, body)
        return await self.send_apdu(notification.to_bytes())
