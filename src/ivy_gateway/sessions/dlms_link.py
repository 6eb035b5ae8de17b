"""The request side of a DLMS session: one association per meter, requests by invoke-id.

``AssociatedLink`` owns the ``Association`` (built from the meter's profile and options:
LN, or LN-with-ciphering + HLS-GMAC when the profile says ``hls-gmac`` and keys are set),
the lock that lets one caller at a time use it, and a future per request in flight.
``associated()`` associates on first use and releases after the last queued caller; a
timeout, rejection or protocol violation resets the association so the next caller
re-associates (dlms.md D3). ``DlmsSession`` adds the read loop that resolves the futures.

Suite-0 invocation counters must rise across connections; until they are persisted, the
first counter of a connection is taken from the clock (16 per second since 2024-01-01).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Final

from ivy_gateway.codec.dlms import Data, DataAccessResult, Obis
from ivy_gateway.codec.dlms.apdu.acse import Mechanism
from ivy_gateway.codec.dlms.association import Association
from ivy_gateway.codec.dlms.association_events import (
    Associated,
    AssociationEvent,
    AssociationRejected,
    AssociationState,
    AuthenticationFailed,
    AuthenticationRequired,
    GetCompleted,
    GetListCompleted,
    LocalProtocolError,
    Released,
    RequestFailed,
)
from ivy_gateway.codec.dlms.security import SecurityContext, SecurityKeys
from ivy_gateway.codec.wrapper import (
    encode_wrapped,
)
from ivy_gateway.domain.errors import (
    MeterError,
    MeterOffline,
    MeterRejected,
    MeterTimeout,
    ProtocolViolation,
)
from ivy_gateway.domain.meter import MeterId, ProtocolKind
from ivy_gateway.transport import ByteStream

from .context import SessionContext
from .profiles import SecurityMode

__all__ = ["PLACEHOLDER", "AssociatedLink"]

log = logging.getLogger(__name__)

PLACEHOLDER: Final = MeterId("000000000000")
ACSE: Final = -1  # waiter key of AARE / HLS pass 4 / RLRE (they carry no invoke-id)
_LIST_CHUNK: Final = 10  # attributes per GET-with-list
_DEFAULT_TITLE: Final = b"IVYGW\x00\x00\x01"
_COUNTER_EPOCH_S: Final = 1_704_067_200


class AssociatedLink:
    """The request side of a DLMS connection: the association, its lock and the futures of
    the requests in flight (by invoke-id; ``_ACSE`` for the AARE, pass 4 and the RLRE)."""

    __slots__ = (
        "_association",
        "_closed",
        "_context",
        "_lock",
        "_meter",
        "_profile",
        "_security",
        "_stream",
        "_users",
        "_waiters",
        "unexpected_responses",
    )

    def __init__(self, stream: ByteStream, context: SessionContext) -> None:
        self._stream = stream
        self._context = context
        self._meter: MeterId | None = None
        self._profile = context.profile_for(PLACEHOLDER, ProtocolKind.DLMS)
        self._association: Association | None = None
        self._security: SecurityContext | None = None
        self._lock: asyncio.Lock | None = None
        self._users = 0
        self._waiters: dict[int, asyncio.Future[AssociationEvent]] = {}
        self._closed = False
        self.unexpected_responses = 0

    @property
    def meter(self) -> MeterId:
        return self._meter or PLACEHOLDER

    def _resolve(self, key: int, event: AssociationEvent) -> None:
        waiter = self._waiters.get(key)
        if waiter is not None and not waiter.done():
            waiter.set_result(event)
        elif key != ACSE:
            self.unexpected_responses += 1

    def _fail_waiters(self, error: MeterError) -> None:
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(error)
        self._waiters.clear()

    def _capture(self, direction: Any, data: bytes) -> None:
        capture = self._context.capture
        if capture is not None and self._meter is not None and capture.is_enabled(self._meter):
            capture.record(self._meter, direction, data, self._stream.info)

    async def _send(self, apdu: bytes) -> None:
        packet = encode_wrapped(
            apdu,
            source=self._profile.wrapper_source,
            destination=self._profile.wrapper_destination,
        )
        self._capture("tx", packet)
        await self._stream.write(packet)

    # -- associations --------------------------------------------------------------------

    def _ensure_association(self) -> Association:
        if self._association is None:
            options = self._context.options_for(self.meter)
            ciphered = self._profile.security is SecurityMode.HLS_GMAC and options.ciphered
            if ciphered and options.dlms_ek is not None and options.dlms_ak is not None:
                counter = max(0, self._context.clock.now_ms() // 1000 - _COUNTER_EPOCH_S) * 16
                self._security = SecurityContext(
                    SecurityKeys(options.dlms_ek, options.dlms_ak),
                    system_title=options.dlms_system_title or _DEFAULT_TITLE,
                    invocation_counter=counter & 0xFFFF_FFFF,
                )
                self._association = Association(
                    security=self._security, mechanism=Mechanism.HLS_GMAC
                )
            else:
                self._association = Association()
        return self._association

    @contextlib.asynccontextmanager
    async def associated(self) -> AsyncIterator[Association]:
        """Hold the meter's association (AARQ first if need be; RLRQ after the last user)."""
        if self._closed:
            raise MeterOffline("the meter connection is closed")
        if self._lock is None:
            self._lock = asyncio.Lock()
        self._users += 1
        try:
            async with self._lock:
                association = self._ensure_association()
                if association.state is not AssociationState.ASSOCIATED:
                    await self._associate(association)
                try:
                    yield association
                except (MeterTimeout, MeterRejected, ProtocolViolation):
                    association.reset()  # re-associate next time (dlms.md D3)
                    raise
                finally:
                    if self._users == 1:
                        await self._release(association)
        finally:
            self._users -= 1

    async def _associate(self, association: Association) -> None:
        association.reset()
        challenge = os.urandom(16) if association.mechanism is Mechanism.HLS_GMAC else None
        event = await self._acse(association.send_aarq(challenge), association)
        if isinstance(event, AuthenticationRequired):
            event = await self._acse(association.send_hls_reply(), association)
        if isinstance(event, Associated):
            return
        association.reset()
        if isinstance(event, AssociationRejected):
            detail = {"result": event.result.name, "diagnostic": event.diagnostic.name}
            raise MeterRejected(
                f"association rejected: {event.diagnostic.name}",
                code=int(event.diagnostic),
                detail=detail,
            )
        if isinstance(event, AuthenticationFailed):
            raise MeterRejected(f"HLS authentication failed: {event.reason}", code=13)
        raise ProtocolViolation(f"unexpected answer to the AARQ: {event}")

    async def _acse(self, apdu: bytes, association: Association) -> AssociationEvent:
        try:
            return await self._exchange(ACSE, apdu)
        except MeterError:
            association.reset()
            raise

    async def _release(self, association: Association) -> None:
        if association.state is not AssociationState.ASSOCIATED or self._closed:
            association.reset()
            return
        try:
            event = await self._exchange(ACSE, association.send_rlrq())
            if not isinstance(event, Released):
                log.info("unexpected answer to the RLRQ: %s", event)
        except MeterError as error:
            log.info("release failed: %s", error)
        association.reset()

    async def _exchange(self, key: int, apdu: bytes) -> AssociationEvent:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[AssociationEvent] = loop.create_future()
        self._waiters[key] = waiter
        try:
            await self._send(apdu)
            async with asyncio.timeout(self._context.timings.request_timeout_s):
                return await waiter
        except TimeoutError:
            raise MeterTimeout("no answer from the meter in time") from None
        finally:
            if self._waiters.get(key) is waiter:
                del self._waiters[key]

    async def _request(self, build: Callable[[Association], bytes]) -> AssociationEvent:
        """One service request with retries; the association must be held."""
        association = self._ensure_association()
        retries = self._context.timings.retries
        for attempt in range(retries + 1):
            try:
                apdu = build(association)
            except LocalProtocolError as error:
                raise ProtocolViolation(str(error)) from error
            invoke_id = association.last_invoke_id
            assert invoke_id is not None
            try:
                event = await self._exchange(invoke_id, apdu)
            except MeterTimeout:
                association.abandon(invoke_id)
                if attempt == retries:
                    raise
                continue
            if isinstance(event, RequestFailed):
                raise ProtocolViolation(event.reason)
            return event
        raise AssertionError("unreachable")  # pragma: no cover

    # -- services ------------------------------------------------------------------------

    async def _get_raw(self, class_id: int, obis: Obis, attribute: int) -> Data:
        async with self.associated():
            return await self._get(class_id, obis, attribute)

    async def _get(self, class_id: int, obis: Obis, attribute: int) -> Data:
        result = await self._get_result(class_id, obis, attribute)
        if isinstance(result, DataAccessResult):
            raise MeterRejected(
                f"GET {class_id}/{obis}/{attribute}: {result.name}",
                code=int(result),
                detail={"result": result.name},
            )
        return result

    async def _get_result(
        self, class_id: int, obis: Obis, attribute: int
    ) -> Data | DataAccessResult:
        event = await self._request(lambda a: a.send_get(class_id, obis, attribute))
        if not isinstance(event, GetCompleted):
            raise ProtocolViolation(f"unexpected answer to a GET: {event}")
        return event.result

    async def _get_many(
        self, items: Sequence[tuple[int, Obis, int]]
    ) -> list[Data | DataAccessResult]:
        association = self._ensure_association()
        if len(items) < 2 or not association.supports_get_with_list:
            return [await self._get_result(*item) for item in items]
        results: list[Data | DataAccessResult] = []
        for start in range(0, len(items), _LIST_CHUNK):
            chunk = items[start : start + _LIST_CHUNK]
            event = await self._request(lambda a, c=chunk: a.send_get_with_list(c))  # type: ignore[misc]
            if not isinstance(event, GetListCompleted) or len(event.results) != len(chunk):
                raise ProtocolViolation(f"unexpected answer to a GET-with-list: {event}")
            results.extend(event.results)
        return results
