"""A simulated generic three-phase DLMS/COSEM meter with security suite 0 (profile
``dlms-three-phase``): what a secured IEC 62056 meter does, for the gateway's ciphered path.

* Association: with ``keys`` only LN-with-ciphering + HLS-GMAC (mechanism 5) is accepted:
  the glo-initiate-request is deciphered with the client's system title (calling-AP-title),
  the AARE carries our system title, StoC and a glo-initiate-response, diagnostic 14
  (authentication-required). Pass 3 (ACTION 15 ``0-0:40.0.0.255`` method 1) is checked
  against f(StoC) and answered with f(CtoS). Wrong keys → AARE rejected, diagnostic
  authentication-failure (13); a wrong f(StoC) → ACTION result read-write-denied.
  Without ``keys`` a plain LN association is accepted (no ciphering, no HLS).
* Services (glo-ciphered when associated with keys; plain requests then get ``D8 01 02``,
  undecipherable ones ``D8 01 05``): GET normal / with-list (multiple-references granted)
  / next, SET of the clock, ACTION class 70 remote disconnect / reconnect. A GET answer
  longer than the negotiated PDU goes out in blocks (the load profile ``1-0:99.1.0.255``
  buffer is the large attribute). Invocation counters live in one ``SecurityContext``
  for the meter's life, so replays are refused across connections too.
* ``heartbeat=True`` sends the IVY heartbeat first (a 4G module in front of the meter);
  without it the gateway has to read the serial number.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable

from ivy_gateway.codec.dlms import (
    CosemDateTime,
    Data,
    DataAccessResult,
    DataType,
    Obis,
    decode_service_apdu,
    encode_data,
)
from ivy_gateway.codec.dlms.apdu.acse import (
    Aare,
    Aarq,
    AcseServiceUserDiagnostic,
    ApplicationContext,
    AssociationResult,
    Mechanism,
    decode_aarq,
    encode_aare,
)
from ivy_gateway.codec.dlms.apdu.action import ActionRequestNormal, ActionResponseNormal
from ivy_gateway.codec.dlms.apdu.ciphered import CipheredApdu, CipheredTag, decode_ciphered_apdu
from ivy_gateway.codec.dlms.apdu.exception import ExceptionResponse
from ivy_gateway.codec.dlms.apdu.get import (
    GetRequestNext,
    GetRequestNormal,
    GetRequestWithList,
    GetResponseNormal,
    GetResponseWithDatablock,
    GetResponseWithList,
)
from ivy_gateway.codec.dlms.apdu.initiate import (
    Conformance,
    InitiateRequest,
    InitiateResponse,
    decode_initiate_request,
    encode_initiate_response,
)
from ivy_gateway.codec.dlms.apdu.release import Rlre, encode_rlre
from ivy_gateway.codec.dlms.apdu.set import SetRequestNormal, SetResponseNormal
from ivy_gateway.codec.dlms.association import ASSOCIATION_LN_OBIS
from ivy_gateway.codec.dlms.enums import ActionResult, ServiceError, StateError
from ivy_gateway.codec.dlms.security import SecurityContext, SecurityKeys, verify_hls_gmac
from ivy_gateway.codec.dlms.units import ScalerUnit, Unit
from ivy_gateway.codec.errors import DecodeError, SecurityError
from ivy_gateway.codec.ivy.heartbeat import encode_heartbeat
from ivy_gateway.codec.wrapper import MANAGEMENT_WPORT, PUBLIC_CLIENT_WPORT

from .cosem_server import ApduServer, CosemObject, ObjectStore, Walk, octet_string
from .faults import NO_FAULTS, Faults

__all__ = ["LOAD_PROFILE_OBIS", "DlmsMeter"]

LOAD_PROFILE_OBIS = Obis(1, 0, 99, 1, 0, 255)
DISCONNECT_CONTROL_OBIS = Obis(0, 0, 96, 3, 10, 255)
_CLOCK = Obis(0, 0, 1, 0, 0, 255)
_SUPPORTED = Conformance(0x001E1D)  # block transfer ×3, multiple references, get/set/action
_CIPHERED = frozenset(int(t) for t in CipheredTag)


def _exception(service_error: ServiceError) -> bytes:
    return ExceptionResponse(StateError.SERVICE_NOT_ALLOWED, service_error).to_bytes()


class DlmsMeter(ApduServer):
    """One simulated secured three-phase meter; ``serve`` a stream or ``connect``."""

    def __init__(
        self,
        address: str = "410000000001",
        *,
        keys: SecurityKeys | None = None,
        system_title: bytes = b"IVS\x00\x00\x00\x00\x01",
        serial: str | None = None,
        heartbeat: bool = True,
        seed: int = 0,
        faults: Faults = NO_FAULTS,
        unwrapped_probability: float = 0.0,
        max_pdu_size: int = 512,
        invocation_counter: int = 0,
        profile_entries: int = 96,
        time_scale: float = 1.0,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        super().__init__(
            heartbeat=encode_heartbeat(address) if heartbeat else None,
            faults=faults,
            seed=seed,
            unwrapped_probability=unwrapped_probability,
            accepted_wports={PUBLIC_CLIENT_WPORT: MANAGEMENT_WPORT},
        )
        self.address = address
        self.serial = serial or address
        self.keys = keys
        self.system_title = system_title
        self.security = (
            None
            if keys is None
            else SecurityContext(
                keys, system_title=system_title, invocation_counter=invocation_counter
            )
        )
        self.max_pdu_size = max_pdu_size
        self.profile_entries = profile_entries
        self.time_scale = time_scale
        self._clock = clock
        self._clock_offset = dt.timedelta()
        self.relay_closed = True
        self.associated = False
        self.granted = Conformance(0)
        self._hls: tuple[bytes, bytes] | None = None  # (StoC, CtoS) until pass 3 is checked
        self._blocks: dict[int, tuple[bytes, int]] = {}  # invoke-id → (raw, next block)
        self.plain_sent: list[bytes] = []
        rng = self.rng
        self._voltages = [Walk(rng, 230 + rng.uniform(-3, 3), 215, 245, 0.4) for _ in range(3)]
        self._powers = [Walk(rng, rng.uniform(100, 1500), 0, 4000, 30) for _ in range(3)]
        self._power_factor = Walk(rng, 0.95, 0.85, 0.99, 0.005)
        self._frequency = Walk(rng, 50.0, 49.9, 50.1, 0.01)
        self.import_wh = rng.uniform(10_000, 900_000)
        self.export_wh = rng.uniform(0, 5_000)
        self._last_step = time.monotonic()
        self.store = ObjectStore(self._objects())

    # -- model ---------------------------------------------------------------------------

    def now(self) -> dt.datetime:
        return (self._clock().replace(tzinfo=None) + self._clock_offset).replace(microsecond=0)

    def _step(self) -> None:
        now = time.monotonic()
        self.import_wh += self.power_w * (now - self._last_step) * self.time_scale / 3600
        self._last_step = now
        for walk in (*self._voltages, *self._powers, self._power_factor, self._frequency):
            walk()

    @property
    def power_w(self) -> float:
        return sum(p.value for p in self._powers) if self.relay_closed else 0.0

    def _phase_current(self, phase: int) -> float:
        if not self.relay_closed:
            return 0.0
        power = self._powers[phase].value
        return power / (self._voltages[phase].value * self._power_factor.value)

    def _objects(self) -> list[CosemObject]:
        def register(
            obis: str, tag: DataType, scaler: int, unit: Unit, value: Callable[[], float]
        ) -> CosemObject:
            def get() -> Data:
                return Data(tag, round(value() / 10**scaler))

            return CosemObject(3, Obis.parse(obis), {2: get, 3: ScalerUnit(scaler, unit).to_data})

        unsigned, signed = DataType.DOUBLE_LONG_UNSIGNED, DataType.DOUBLE_LONG
        volts, amps = Unit.VOLT, Unit.AMPERE
        objects = [
            register("1-0:1.8.0.255", unsigned, 0, Unit.WATT_HOUR, lambda: self.import_wh),
            register("1-0:2.8.0.255", unsigned, 0, Unit.WATT_HOUR, lambda: self.export_wh),
            register("1-0:32.7.0.255", unsigned, -1, volts, lambda: self._voltages[0].value),
            register("1-0:52.7.0.255", unsigned, -1, volts, lambda: self._voltages[1].value),
            register("1-0:72.7.0.255", unsigned, -1, volts, lambda: self._voltages[2].value),
            register("1-0:31.7.0.255", unsigned, -2, amps, lambda: self._phase_current(0)),
            register("1-0:51.7.0.255", unsigned, -2, amps, lambda: self._phase_current(1)),
            register("1-0:71.7.0.255", unsigned, -2, amps, lambda: self._phase_current(2)),
            register("1-0:1.7.0.255", signed, 0, Unit.WATT, lambda: self.power_w),
            register("1-0:13.7.0.255", signed, -3, Unit.COUNT, lambda: self._power_factor.value),
            register("1-0:14.7.0.255", unsigned, -2, Unit.HERTZ, lambda: self._frequency.value),
            CosemObject(8, _CLOCK, {2: self._clock_value}, setters={2: self._set_clock}),
            CosemObject(
                1, Obis(0, 0, 96, 1, 0, 255), {2: lambda: octet_string(self.serial.encode())}
            ),
            CosemObject(7, LOAD_PROFILE_OBIS, {2: self._load_profile}),
            CosemObject(
                70,
                DISCONNECT_CONTROL_OBIS,
                {
                    2: lambda: Data(DataType.BOOLEAN, self.relay_closed),
                    3: lambda: Data(DataType.ENUM, 1 if self.relay_closed else 0),
                    4: lambda: Data(DataType.ENUM, 1),
                },
                methods={1: self._switch(False), 2: self._switch(True)},
            ),
        ]
        return objects

    def _switch(self, closed: bool) -> Callable[[Data | None], tuple[ActionResult, Data | None]]:
        def call(parameters: Data | None) -> tuple[ActionResult, Data | None]:
            if parameters is None or parameters.tag != DataType.INTEGER:
                return ActionResult.TYPE_UNMATCHED, None
            self.relay_closed = closed
            return ActionResult.SUCCESS, None

        return call

    def _clock_value(self) -> Data:
        return octet_string(CosemDateTime.from_datetime(self.now()).to_bytes())

    def _set_clock(self, value: Data) -> DataAccessResult:
        try:
            assert isinstance(value.value, bytes)
            when = CosemDateTime.from_bytes(value.value).to_datetime()
        except (AssertionError, DecodeError):
            return DataAccessResult.TYPE_UNMATCHED
        if when.tzinfo is not None:
            when = when.astimezone(dt.UTC).replace(tzinfo=None)
        self._clock_offset += when - self.now()
        return DataAccessResult.SUCCESS

    def _load_profile(self) -> Data:
        """``profile_entries`` quarter-hour entries {clock, import energy}: a large value."""
        start = self.now().replace(minute=0, second=0)
        entries = []
        for index in range(self.profile_entries):
            stamp = CosemDateTime.from_datetime(start - dt.timedelta(minutes=15 * index))
            energy = math.floor(self.import_wh) - index * 100
            entries.append(
                Data(
                    DataType.STRUCTURE,
                    (octet_string(stamp.to_bytes()), Data(DataType.DOUBLE_LONG_UNSIGNED, energy)),
                )
            )
        return Data(DataType.ARRAY, tuple(entries))

    # -- association ---------------------------------------------------------------------

    def reset_connection(self) -> None:
        self.associated = False
        self._hls = None
        self._blocks.clear()

    def answer(self, apdu: bytes) -> list[bytes]:
        if apdu[0] == 0x60:
            return [self._associate(apdu)]
        if apdu[0] == 0x62:
            self.reset_connection()
            return [encode_rlre(Rlre())]
        ciphered = apdu[0] in _CIPHERED
        if ciphered:
            if self.security is None or not (self.associated or self._hls):
                return [_exception(ServiceError.SERVICE_NOT_SUPPORTED)]
            try:
                apdu = self.security.decipher(apdu)
            except SecurityError:
                return [_exception(ServiceError.DECIPHERING_ERROR)]
        elif self.security is not None and self._hls is None:  # HLS pass 3 may come plain
            return [_exception(ServiceError.SERVICE_NOT_SUPPORTED)]
        try:
            request = decode_service_apdu(apdu)
        except DecodeError:
            return []
        reply = self._serve_request(request)
        if reply is None:
            return [_exception(ServiceError.SERVICE_NOT_SUPPORTED)]
        self.plain_sent.append(reply)
        if ciphered and self.security is not None:
            reply = self.security.encipher(reply)
        return [reply]

    def _associate(self, apdu: bytes) -> bytes:
        self.reset_connection()
        try:
            aarq = decode_aarq(apdu)
        except DecodeError:
            return self._reject(ApplicationContext.LN, AcseServiceUserDiagnostic.NO_REASON_GIVEN)
        if self.security is None:
            if aarq.application_context is not ApplicationContext.LN or aarq.mechanism not in (
                None,
                Mechanism.LOWEST,
            ):
                return self._reject(
                    aarq.application_context,
                    AcseServiceUserDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED,
                )
            assert isinstance(aarq.user_information, InitiateRequest)
            return self._accept(aarq, aarq.user_information, None)
        if aarq.application_context is not ApplicationContext.LN_CIPHER:
            diagnostic = AcseServiceUserDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED
            return self._reject(aarq.application_context, diagnostic)
        if aarq.mechanism is not Mechanism.HLS_GMAC or not aarq.calling_authentication_value:
            diagnostic = AcseServiceUserDiagnostic.AUTHENTICATION_MECHANISM_NAME_REQUIRED
            return self._reject(aarq.application_context, diagnostic)
        if not isinstance(aarq.user_information, CipheredApdu) or aarq.calling_ap_title is None:
            return self._reject(aarq.application_context, AcseServiceUserDiagnostic.NO_REASON_GIVEN)
        self.security.peer_system_title = aarq.calling_ap_title
        try:
            initiate = decode_initiate_request(self.security.decipher(aarq.user_information))
        except DecodeError:  # SecurityError included: wrong keys
            return self._reject(
                aarq.application_context, AcseServiceUserDiagnostic.AUTHENTICATION_FAILURE
            )
        stoc = bytes(self.rng.getrandbits(8) for _ in range(16))
        self._hls = (stoc, aarq.calling_authentication_value)
        return self._accept(aarq, initiate, stoc)

    def _accept(self, aarq: Aarq, initiate: InitiateRequest, stoc: bytes | None) -> bytes:
        self.granted = Conformance(initiate.conformance & _SUPPORTED)
        response = InitiateResponse(self.granted, self.max_pdu_size)
        if self.security is None:
            self.associated = True
            aare = Aare(
                ApplicationContext.LN, AssociationResult.ACCEPTED, user_information=response
            )
            return encode_aare(aare)
        sealed = self.security.encipher(encode_initiate_response(response))
        aare = Aare(
            aarq.application_context,
            AssociationResult.ACCEPTED,
            AcseServiceUserDiagnostic.AUTHENTICATION_REQUIRED,
            responding_ap_title=self.system_title,
            authentication_required=True,
            mechanism=Mechanism.HLS_GMAC,
            responding_authentication_value=stoc,
            user_information=decode_ciphered_apdu(sealed),
        )
        return encode_aare(aare)

    def _reject(self, context: ApplicationContext, diagnostic: AcseServiceUserDiagnostic) -> bytes:
        return encode_aare(Aare(context, AssociationResult.REJECTED_PERMANENT, diagnostic))

    # -- services ------------------------------------------------------------------------

    def _serve_request(self, request: object) -> bytes | None:
        if self._hls is not None:
            return self._pass3(request)
        if not self.associated:
            return None
        if isinstance(request, GetRequestNormal):
            self._step()
            item = request.attribute
            value = self.store.get(item.class_id, item.obis, item.attribute_id)
            return self._get_reply(request, value)
        if isinstance(request, GetRequestNext):
            return self._next_block(request)
        if isinstance(request, GetRequestWithList) and (
            self.granted & Conformance.MULTIPLE_REFERENCES
        ):
            self._step()
            results = tuple(
                self.store.get(a.class_id, a.obis, a.attribute_id) for a, _ in request.attributes
            )
            return GetResponseWithList(request.invoke_id_and_priority, results).to_bytes()
        if isinstance(request, SetRequestNormal):
            item = request.attribute
            result = self.store.set(item.class_id, item.obis, item.attribute_id, request.value)
            return SetResponseNormal(request.invoke_id_and_priority, result).to_bytes()
        if isinstance(request, ActionRequestNormal):
            method = request.method
            outcome, returned = self.store.action(
                method.class_id, method.obis, method.method_id, request.parameters
            )
            return ActionResponseNormal(
                request.invoke_id_and_priority, outcome, returned
            ).to_bytes()
        return None

    def _pass3(self, request: object) -> bytes | None:
        assert self._hls is not None
        assert self.security is not None
        assert self.keys is not None
        if not (
            isinstance(request, ActionRequestNormal)
            and request.method.class_id == 15
            and request.method.obis == ASSOCIATION_LN_OBIS
            and request.method.method_id == 1
            and request.parameters is not None
            and isinstance(request.parameters.value, bytes)
        ):
            return None
        stoc, ctos = self._hls
        self._hls = None
        iid = request.invoke_id_and_priority
        try:
            # f(StoC) carries an older counter than the glo-ACTION around it (the client
            # computes it first), so it is checked on its own, not through the replay guard.
            verify_hls_gmac(
                request.parameters.value,
                stoc,
                ek=self.keys.ek,
                ak=self.keys.ak,
                system_title=self.security.peer_system_title or b"",
            )
        except SecurityError:
            return ActionResponseNormal(iid, ActionResult.READ_WRITE_DENIED).to_bytes()
        self.associated = True
        f_ctos = octet_string(self.security.reply_to_challenge(ctos))
        return ActionResponseNormal(iid, ActionResult.SUCCESS, f_ctos).to_bytes()

    def _block_size(self) -> int:
        return max(16, self.max_pdu_size - 40)  # room for the headers and the ciphering

    def _get_reply(self, request: GetRequestNormal, value: Data | DataAccessResult) -> bytes:
        iid = request.invoke_id_and_priority
        if isinstance(value, Data):
            raw = encode_data(value)
            if len(raw) > self._block_size():
                self._blocks[iid.invoke_id] = (raw, 1)
                return self._next_block(GetRequestNext(iid, 0))
        return GetResponseNormal(iid, value).to_bytes()

    def _next_block(self, request: GetRequestNext) -> bytes:
        iid = request.invoke_id_and_priority
        pending = self._blocks.get(iid.invoke_id)
        if pending is None or request.block_number != pending[1] - 1:
            self._blocks.pop(iid.invoke_id, None)
            return GetResponseNormal(iid, DataAccessResult.NO_LONG_GET_IN_PROGRESS).to_bytes()
        raw, number = pending
        size = self._block_size()
        part = raw[(number - 1) * size : number * size]
        last = number * size >= len(raw)
        if last:
            del self._blocks[iid.invoke_id]
        else:
            self._blocks[iid.invoke_id] = (raw, number + 1)
        return GetResponseWithDatablock(iid, last, number, part).to_bytes()
