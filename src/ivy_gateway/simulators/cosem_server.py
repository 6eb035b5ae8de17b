"""What the simulated DLMS/COSEM meters share: an object model and the connection loop.

* ``CosemObject`` / ``ObjectStore``: interface-class objects as data — getters per
  attribute, setters, methods. Attribute 1 (logical_name) answers itself; an unknown
  object, a class mismatch or an unknown attribute is ``object-undefined`` (em114070.md §5:
  a cheap meter says 4 where the standard would say 9).
* ``Walk``: a seeded random walk, so values change slowly and reproducibly.
* ``ApduServer``: the meter side of one TCP connection — optional heartbeat, the wrapper
  decoder (wrapped and bare APDUs), one reply list per APDU, wrapped with the request's
  wPorts swapped (or bare, with ``unwrapped_probability``), written through
  ``faults.ReplyChannel``. Subclasses implement ``answer`` and ``reset_connection``.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ivy_gateway.codec.dlms import Data, DataAccessResult, DataType, Obis
from ivy_gateway.codec.dlms.enums import ActionResult
from ivy_gateway.codec.wrapper import (
    MANAGEMENT_WPORT,
    NEED_DATA,
    PUBLIC_CLIENT_WPORT,
    RawApdu,
    WrappedPacket,
    WrapperDecoder,
    encode_wrapped,
)
from ivy_gateway.transport import ByteStream

from . import open_stream
from .faults import NO_FAULTS, Faults, ReplyChannel

__all__ = ["ApduServer", "CosemObject", "ObjectStore", "Walk", "octet_string"]

Getter = Callable[[], Data]
Setter = Callable[[Data], DataAccessResult]
Method = Callable[[Data | None], tuple[ActionResult, Data | None]]


def octet_string(value: bytes) -> Data:
    return Data(DataType.OCTET_STRING, value)


@dataclass(slots=True)
class CosemObject:
    class_id: int
    obis: Obis
    attributes: dict[int, Getter]
    setters: dict[int, Setter] = field(default_factory=dict)
    methods: dict[int, Method] = field(default_factory=dict)


class ObjectStore:
    """The objects of one logical device, by (class, OBIS)."""

    def __init__(self, objects: list[CosemObject]) -> None:
        self._objects = {(o.class_id, o.obis): o for o in objects}

    def find(self, class_id: int, obis: Obis) -> CosemObject | None:
        return self._objects.get((class_id, obis))

    def get(self, class_id: int, obis: Obis, attribute: int) -> Data | DataAccessResult:
        found = self.find(class_id, obis)
        if found is None:
            return DataAccessResult.OBJECT_UNDEFINED
        if attribute == 1:
            return octet_string(obis.to_bytes())
        getter = found.attributes.get(attribute)
        return DataAccessResult.OBJECT_UNDEFINED if getter is None else getter()

    def set(self, class_id: int, obis: Obis, attribute: int, value: Data) -> DataAccessResult:
        found = self.find(class_id, obis)
        if found is None:
            return DataAccessResult.OBJECT_UNDEFINED
        setter = found.setters.get(attribute)
        return DataAccessResult.READ_WRITE_DENIED if setter is None else setter(value)

    def action(
        self, class_id: int, obis: Obis, method: int, parameters: Data | None
    ) -> tuple[ActionResult, Data | None]:
        found = self.find(class_id, obis)
        call = None if found is None else found.methods.get(method)
        if call is None:
            return ActionResult.OBJECT_UNDEFINED, None
        return call(parameters)


class Walk:
    """A value that wanders within ``low..high`` by at most ``step`` per read."""

    __slots__ = ("_rng", "high", "low", "step", "value")

    def __init__(self, rng: random.Random, start: float, low: float, high: float, step: float):
        self._rng = rng
        self.value = start
        self.low, self.high, self.step = low, high, step

    def __call__(self) -> float:
        moved = self.value + self._rng.uniform(-self.step, self.step)
        self.value = min(self.high, max(self.low, moved))
        return self.value


class ApduServer(abc.ABC):
    """Base of the simulated meters: serves one connection at a time."""

    def __init__(
        self,
        *,
        heartbeat: bytes | None,
        faults: Faults = NO_FAULTS,
        seed: int = 0,
        unwrapped_probability: float = 0.0,
        accepted_wports: Mapping[int, int] | None = None,
    ) -> None:
        self.heartbeat = heartbeat
        self.faults = faults
        self.rng = random.Random(seed)
        self.unwrapped_probability = unwrapped_probability
        #: client wPort → our wPort; requests from others still decode (route on content)
        self._wports = dict(accepted_wports or {MANAGEMENT_WPORT: MANAGEMENT_WPORT})
        self._channel: ReplyChannel | None = None
        self._reply_ports = (MANAGEMENT_WPORT, MANAGEMENT_WPORT)
        #: every APDU sent and received, in order, as on the wire (without the wrapper)
        self.sent: list[bytes] = []
        self.received: list[bytes] = []
        self.connections = 0

    # -- subclass hooks -------------------------------------------------------------------

    @abc.abstractmethod
    def answer(self, apdu: bytes) -> list[bytes]:
        """The APDUs (already ciphered if need be) that answer one received APDU."""

    @abc.abstractmethod
    def reset_connection(self) -> None:
        """A new connection: forget the association."""

    # -- running --------------------------------------------------------------------------

    async def connect(self, host: str, port: int) -> None:
        """Dial the gateway and serve the connection until either side closes it."""
        stream = await open_stream(host, port)
        try:
            await self.serve(stream)
        finally:
            await stream.aclose()

    async def serve(self, stream: ByteStream) -> None:
        self.connections += 1
        self.reset_connection()
        channel = self._channel = ReplyChannel(stream, self.faults)
        pairs = [(client, ours) for client, ours in self._wports.items()]
        pairs += [(PUBLIC_CLIENT_WPORT, MANAGEMENT_WPORT), (MANAGEMENT_WPORT, MANAGEMENT_WPORT)]
        decoder = WrapperDecoder(accepted_wports=pairs)
        try:
            if self.heartbeat is not None:
                await channel.send(self.heartbeat)
            while not channel.closed:
                chunk = await stream.read()
                if not chunk:
                    return
                decoder.feed(chunk)
                while not channel.closed and (event := decoder.next_event()) is not NEED_DATA:
                    if isinstance(event, WrappedPacket):
                        header = event.header
                        self._reply_ports = (header.destination, header.source)
                        await self._answer(event.apdu)
                    elif isinstance(event, RawApdu):
                        await self._answer(event.apdu)
        finally:
            self._channel = None

    async def _answer(self, apdu: bytes) -> None:
        self.received.append(apdu)
        for reply in self.answer(apdu):
            await self.send_apdu(reply)

    async def send_apdu(self, apdu: bytes) -> bool:
        """Send one APDU now (also used for pushed notifications); False if not connected."""
        channel = self._channel
        if channel is None or channel.closed:
            return False
        self.sent.append(apdu)
        if self.unwrapped_probability and self.rng.random() < self.unwrapped_probability:
            await channel.send(apdu)
        else:
            source, destination = self._reply_ports
            await channel.send(encode_wrapped(apdu, source=source, destination=destination))
        return True
