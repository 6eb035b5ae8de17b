"""The client side of a DLMS/COSEM association as a sans-IO state machine (h11 style).

``send_*()`` returns the APDU bytes to write (wrapper framing is the caller's job);
``receive(apdu)`` takes one whole APDU from the meter and returns one event
(``association_events``). Nothing here waits, reads a clock or draws random numbers: the
HLS challenge CtoS comes from the caller.

Lifecycle (Green Book 9.4; dlms.md D1–D3, G4)::

    IDLE ──send_aarq──► AARQ_SENT ──AARE accepted──────────────────────────► ASSOCIATED
                            │      ──AARE accepted, diag 14 (HLS)──► AUTHENTICATING
                            └─────AARE rejected──► IDLE                  │ send_hls_reply (pass 3)
                                                                         ▼
                    IDLE ◄──f(CtoS) wrong / refused── HLS_REPLY_SENT ──f(CtoS) ok──► ASSOCIATED
    ASSOCIATED ──send_get/set/action──► ASSOCIATED ──send_rlrq──► RLRQ_SENT ──RLRE──► IDLE

The table ``TRANSITIONS`` is the whole lifecycle; any pair not in it raises
``LocalProtocolError`` (our call) or ``RemoteProtocolError`` (the peer's APDU).
Notifications, Exception-Responses and responses with unknown invoke-ids are accepted in
every state. With a ``SecurityContext`` and ciphering on, every outgoing service APDU is
sent glo-ciphered and ciphered APDUs from the meter are deciphered (suite 0).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..errors import DecodeError, SecurityError
from .apdu.acse import (
    AcseServiceUserDiagnostic,
    ApplicationContext,
    AssociationResult,
    Mechanism,
    build_aarq,
    decode_aare,
    encode_aarq,
)
from .apdu.action import ActionRequestNormal, ActionResponseNormal
from .apdu.ciphered import CipheredApdu, CipheredTag, decode_ciphered_apdu
from .apdu.common import (
    _IIDS,
    CosemAttributeDescriptor,
    CosemMethodDescriptor,
    InvokeIdAndPriority,
)
from .apdu.exception import (
    ConfirmedServiceError,
    ExceptionResponse,
    decode_confirmed_service_error,
)
from .apdu.get import (
    GetBlockReassembler,
    GetRequestNormal,
    GetRequestWithList,
    GetResponseNormal,
    GetResponseWithDatablock,
    GetResponseWithList,
    decode_get_response,
)
from .apdu.initiate import (
    Conformance,
    InitiateRequest,
    InitiateResponse,
    decode_initiate_response,
    encode_initiate_request,
)
from .apdu.notification import DataNotification, EventNotificationRequest
from .apdu.release import Rlrq, decode_rlre, encode_rlrq
from .apdu.set import SetRequestNormal, SetResponseNormal
from .apdu.tags import ApduTag
from .apdu.xdlms import ServiceApdu, decode_service_apdu
from .association_events import (
    REMOTE_INPUTS,
    TRANSITIONS,
    ActionCompleted,
    Associated,
    AssociationEvent,
    AssociationInput,
    AssociationRejected,
    AssociationState,
    AuthenticationFailed,
    AuthenticationRequired,
    BlockReceived,
    ErrorReceived,
    GetCompleted,
    GetListCompleted,
    LocalProtocolError,
    NotificationReceived,
    Released,
    RemoteProtocolError,
    RequestFailed,
    SetCompleted,
    UnexpectedResponse,
)
from .axdr import Data, DataType
from .enums import ActionResult
from .obis import Obis
from .security import SecurityContext

__all__ = [
    "ASSOCIATION_LN_OBIS",
    "DEFAULT_CONFORMANCE",
    "Association",
    "AssociationState",
]

#: What the reference gateway proposes and the EM114070 accepted (vector aarq_ln_no_auth):
#: block transfer ×3, multiple references, get, set, selective access, action.
DEFAULT_CONFORMANCE = Conformance(0x001E1D)
#: The current association's Association LN object (class 15), for HLS pass 3.
ASSOCIATION_LN_OBIS = Obis(0, 0, 40, 0, 0, 255)
_REPLY_TO_HLS_AUTHENTICATION = 1  # class 15 method 1
_INVOKE_IDS = 16  # the invoke-id is 4 bits (dlms.md E1)

S = AssociationState
#: builds a service request APDU for the invoke-id allocated to it
_Builder = Callable[[InvokeIdAndPriority], bytes]


_CIPHERED_TAGS = frozenset(int(t) for t in CipheredTag)
#: Responses the client expects; requests from the server are protocol errors.
_REQUEST_TAGS = frozenset((ApduTag.GET_REQUEST, ApduTag.SET_REQUEST, ApduTag.ACTION_REQUEST))


# What a pending invoke-id waits for; plain ints, not an enum: the lookups are per APDU.
_GET, _GET_LIST, _SET, _ACTION, _HLS = range(5)
_KIND_NAMES = ("GET", "GET-with-list", "SET", "ACTION", "HLS pass 3")
#: response type → bit mask of the request kinds it may answer
_ANSWERS: dict[type, int] = {
    GetResponseNormal: 1 << _GET,
    GetResponseWithDatablock: 1 << _GET,
    GetResponseWithList: 1 << _GET_LIST,
    SetResponseNormal: 1 << _SET,
    ActionResponseNormal: 1 << _ACTION | 1 << _HLS,
}


class Association:
    """One client association with one server (meter) on one connection.

    ``security`` enables suite 0: with ``ciphered`` (the default when ``security`` is
    given) the context is LN-with-ciphering and service APDUs are glo-ciphered;
    ``mechanism=Mechanism.HLS_GMAC`` adds the 4-pass authentication.
    """

    __slots__ = (
        "_blocks",
        "_challenge",
        "_next_invoke_id",
        "_pending",
        "_stoc",
        "ciphered",
        "conformance",
        "last_invoke_id",
        "max_block_size",
        "max_receive_pdu_size",
        "mechanism",
        "negotiated_conformance",
        "password",
        "security",
        "server_max_pdu_size",
        "server_system_title",
        "state",
    )

    def __init__(
        self,
        *,
        security: SecurityContext | None = None,
        ciphered: bool | None = None,
        mechanism: Mechanism = Mechanism.LOWEST,
        password: bytes | None = None,
        conformance: Conformance = DEFAULT_CONFORMANCE,
        max_receive_pdu_size: int = 0xFFFF,
        max_block_size: int = 1 << 20,
    ) -> None:
        self.ciphered = security is not None if ciphered is None else ciphered
        if (self.ciphered or mechanism is Mechanism.HLS_GMAC) and security is None:
            raise ValueError("ciphering and HLS-GMAC need a SecurityContext")
        if mechanism not in (Mechanism.LOWEST, Mechanism.LLS, Mechanism.HLS_GMAC):
            raise ValueError(f"authentication mechanism {mechanism.name} is not supported")
        self.security = security
        self.mechanism = mechanism
        self.password = password
        self.conformance = conformance
        self.max_receive_pdu_size = max_receive_pdu_size
        self.max_block_size = max_block_size
        self.state = S.IDLE
        self.negotiated_conformance = Conformance(0)
        self.server_max_pdu_size = 0
        self.server_system_title: bytes | None = None
        self.last_invoke_id: int | None = None
        self._pending: dict[int, int] = {}  # invoke-id → kind
        self._blocks: dict[int, GetBlockReassembler] = {}
        self._next_invoke_id = 1
        self._challenge = b""  # CtoS, kept to check pass 4
        self._stoc = b""

    # -- bookkeeping ---------------------------------------------------------------------

    def _move(self, event: AssociationInput) -> None:
        target = TRANSITIONS.get((self.state, event))
        if target is None:
            error = RemoteProtocolError if event in REMOTE_INPUTS else LocalProtocolError
            raise error(f"cannot {event.value} in state {self.state.name}")
        self.state = target

    @property
    def pending_invoke_ids(self) -> tuple[int, ...]:
        return tuple(self._pending)

    @property
    def supports_get_with_list(self) -> bool:
        return bool(self.negotiated_conformance & Conformance.MULTIPLE_REFERENCES)

    def reset(self) -> tuple[int, ...]:
        """Forget the association (connection lost, timeout): back to IDLE. Returns the
        invoke-ids that were outstanding."""
        dropped = tuple(self._pending)
        self._pending.clear()
        self._blocks.clear()
        self.state = S.IDLE
        return dropped

    def abandon(self, invoke_id: int) -> bool:
        """Stop waiting for ``invoke_id`` (e.g. after a timeout): a late answer is then an
        ``UnexpectedResponse``. False if it was not outstanding."""
        self._blocks.pop(invoke_id, None)
        return self._pending.pop(invoke_id, None) is not None

    def _allocate(self, kind: int) -> InvokeIdAndPriority:
        if len(self._pending) >= _INVOKE_IDS:
            raise LocalProtocolError("all 16 invoke-ids are in use")
        invoke_id = self._next_invoke_id
        while invoke_id in self._pending:
            invoke_id = (invoke_id + 1) % _INVOKE_IDS
        self._next_invoke_id = (invoke_id + 1) % _INVOKE_IDS
        self._pending[invoke_id] = kind
        self.last_invoke_id = invoke_id
        return _IIDS[0xC0 | invoke_id]  # confirmed, high priority (dlms.md E1)

    def _protect(self, apdu: bytes) -> bytes:
        if self.ciphered:
            assert self.security is not None  # checked in __init__
            apdu = self.security.encipher(apdu)
        if self.server_max_pdu_size and len(apdu) > self.server_max_pdu_size:
            raise LocalProtocolError(
                f"request of {len(apdu)} bytes exceeds the server's {self.server_max_pdu_size}"
            )
        return apdu

    def _service(self, kind: int, build: _Builder) -> bytes:
        if self.state is not S.ASSOCIATED:  # the only state with SEND_SERVICE in the table
            self._move(AssociationInput.SEND_SERVICE)
        iid = self._allocate(kind)
        try:
            return self._protect(build(iid))
        except LocalProtocolError:
            self._pending.pop(iid.invoke_id)
            raise

    # -- sending -------------------------------------------------------------------------

    def send_aarq(self, challenge: bytes | None = None) -> bytes:
        """The AARQ; ``challenge`` is CtoS for HLS-GMAC (8..64 random bytes)."""
        if (self.mechanism is Mechanism.HLS_GMAC) != (challenge is not None):
            raise LocalProtocolError("a challenge goes with HLS-GMAC, and only with it")
        initiate = InitiateRequest(self.conformance, self.max_receive_pdu_size)
        user_information: InitiateRequest | CipheredApdu = initiate
        title = None
        if self.security is not None:
            title = self.security.system_title
        if self.ciphered:
            assert self.security is not None
            sealed = self.security.encipher(encode_initiate_request(initiate))
            user_information = decode_ciphered_apdu(sealed)
        value = challenge if self.mechanism is Mechanism.HLS_GMAC else self.password
        aarq = build_aarq(
            user_information,
            application_context=ApplicationContext.LN_CIPHER
            if self.ciphered
            else ApplicationContext.LN,
            mechanism=None if self.mechanism is Mechanism.LOWEST else self.mechanism,
            authentication_value=value if self.mechanism is not Mechanism.LOWEST else None,
            calling_ap_title=title,
        )
        self._move(AssociationInput.SEND_AARQ)
        self._pending.clear()
        self._blocks.clear()
        self._challenge = challenge or b""
        return encode_aarq(aarq)

    def send_hls_reply(self) -> bytes:
        """HLS pass 3: ACTION Association LN method 1 with f(StoC)."""
        self._move(AssociationInput.SEND_HLS_REPLY)
        assert self.security is not None  # HLS needs it (checked in __init__)
        reply = self.security.reply_to_challenge(self._stoc)
        iid = self._allocate(_HLS)
        method = CosemMethodDescriptor(15, ASSOCIATION_LN_OBIS, _REPLY_TO_HLS_AUTHENTICATION)
        request = ActionRequestNormal(iid, method, Data(DataType.OCTET_STRING, reply)).to_bytes()
        # Sent plain, as in the Green Book's worked example (dlms.md G4): f(StoC) carries our
        # counter, and a glo-ACTION around it would carry a newer one, which a server's
        # replay guard could then hold against f(StoC) (and the same for f(CtoS) back).
        return request

    def send_get(self, class_id: int, obis: Obis, attribute: int) -> bytes:
        def build(iid: InvokeIdAndPriority) -> bytes:
            descriptor = CosemAttributeDescriptor(class_id, obis, attribute)
            return GetRequestNormal(iid, descriptor).to_bytes()

        return self._service(_GET, build)

    def send_get_with_list(self, items: Sequence[tuple[int, Obis, int]]) -> bytes:
        """GET-Request-With-List; only when the server granted multiple-references."""
        if not self.supports_get_with_list:
            raise LocalProtocolError("the server did not grant multiple-references")
        if not items:
            raise LocalProtocolError("GET-with-list needs at least one attribute")

        def build(iid: InvokeIdAndPriority) -> bytes:
            selections = tuple((CosemAttributeDescriptor(*item), None) for item in items)
            return GetRequestWithList(iid, selections).to_bytes()

        return self._service(_GET_LIST, build)

    def send_set(self, class_id: int, obis: Obis, attribute: int, value: Data) -> bytes:
        def build(iid: InvokeIdAndPriority) -> bytes:
            descriptor = CosemAttributeDescriptor(class_id, obis, attribute)
            return SetRequestNormal(iid, descriptor, value).to_bytes()

        return self._service(_SET, build)

    def send_action(
        self, class_id: int, obis: Obis, method: int, parameters: Data | None = None
    ) -> bytes:
        def build(iid: InvokeIdAndPriority) -> bytes:
            descriptor = CosemMethodDescriptor(class_id, obis, method)
            return ActionRequestNormal(iid, descriptor, parameters).to_bytes()

        return self._service(_ACTION, build)

    def send_rlrq(self) -> bytes:
        """RLRQ, reason normal (``62 03 80 01 00``)."""
        self._move(AssociationInput.SEND_RLRQ)
        return encode_rlrq(Rlrq())

    # -- receiving -----------------------------------------------------------------------

    def receive(self, apdu: bytes) -> AssociationEvent:
        """One whole APDU from the server → one event. ``DecodeError`` (incl.
        ``SecurityError`` and ``RemoteProtocolError``) for APDUs that cannot be accepted."""
        if not apdu:
            raise DecodeError("empty APDU", offset=0)
        tag = apdu[0]
        if tag == 0xC4 and not self.ciphered:  # GET.response: the common case, no detours
            return self._receive_response(decode_get_response(apdu))
        if tag == 0x61:
            return self._receive_aare(apdu)
        if tag == 0x63:
            decoded = decode_rlre(apdu)
            self._move(AssociationInput.RLRE)
            self._pending.clear()
            self._blocks.clear()
            return Released(decoded.reason)
        if tag in _CIPHERED_TAGS:
            if self.security is None:
                raise RemoteProtocolError(f"ciphered APDU {tag:02X} but no keys are configured")
            plain = self.security.decipher(apdu)
            if plain[:1] and plain[0] in _CIPHERED_TAGS:
                raise RemoteProtocolError("a ciphered APDU inside a ciphered APDU")
            return self._receive_plain(plain, ciphered=True)
        return self._receive_plain(apdu, ciphered=False)

    def _receive_plain(self, apdu: bytes, *, ciphered: bool) -> AssociationEvent:
        if apdu[0] in (0x60, 0x61, 0x62, 0x63) or apdu[0] in _REQUEST_TAGS:
            raise RemoteProtocolError(f"a server does not send APDU {apdu[0]:02X}")
        decoded = decode_service_apdu(apdu)
        if isinstance(decoded, DataNotification | EventNotificationRequest):
            return NotificationReceived(decoded, apdu)
        if isinstance(decoded, ExceptionResponse | ConfirmedServiceError):
            dropped = tuple(self._pending)
            self._pending.clear()
            self._blocks.clear()
            if self.state is not S.ASSOCIATED:
                self.state = S.IDLE
            return ErrorReceived(decoded, dropped)
        if self.ciphered and not ciphered and self.state is not S.HLS_REPLY_SENT:
            raise RemoteProtocolError("plain response in a ciphered association")
        return self._receive_response(decoded)

    def _receive_response(self, response: ServiceApdu) -> AssociationEvent:
        iid = getattr(response, "invoke_id_and_priority", None)
        assert isinstance(iid, InvokeIdAndPriority)  # every remaining APDU is a response
        invoke_id = iid.value & 0x0F
        kind = self._pending.get(invoke_id)
        if kind is None:
            return UnexpectedResponse(invoke_id, response)
        if not _ANSWERS.get(type(response), 0) >> kind & 1:
            del self._pending[invoke_id]
            self._blocks.pop(invoke_id, None)
            name = type(response).__name__
            return RequestFailed(invoke_id, f"{name} does not answer a {_KIND_NAMES[kind]}")
        if type(response) is GetResponseNormal:
            del self._pending[invoke_id]
            return GetCompleted(invoke_id, response.result)
        if isinstance(response, GetResponseWithDatablock):
            return self._receive_block(invoke_id, response)
        del self._pending[invoke_id]
        if isinstance(response, GetResponseWithList):
            return GetListCompleted(invoke_id, response.results)
        if isinstance(response, SetResponseNormal):
            return SetCompleted(invoke_id, response.result)
        assert isinstance(response, ActionResponseNormal)
        if kind == _HLS:
            return self._receive_hls_answer(response)
        return ActionCompleted(invoke_id, response.result, response.return_parameters)

    def _receive_block(
        self, invoke_id: int, response: GetResponseWithDatablock
    ) -> AssociationEvent:
        reassembler = self._blocks.get(invoke_id)
        if reassembler is None:
            reassembler = self._blocks[invoke_id] = GetBlockReassembler(self.max_block_size)
        try:
            result = reassembler.feed(response)
        except DecodeError as error:
            del self._pending[invoke_id]
            del self._blocks[invoke_id]
            return RequestFailed(invoke_id, f"block transfer failed: {error}")
        if result is None:
            next_request = reassembler.next_request(response.invoke_id_and_priority)
            reply = self._protect(next_request.to_bytes())
            return BlockReceived(invoke_id, response.block_number, reply)
        del self._pending[invoke_id]
        del self._blocks[invoke_id]
        return GetCompleted(invoke_id, result)

    def _receive_hls_answer(self, response: ActionResponseNormal) -> AssociationEvent:
        assert self.security is not None  # only HLS sends _HLS
        reply = response.return_parameters
        if response.result is not ActionResult.SUCCESS:
            self._move(AssociationInput.HLS_FAILED)
            return AuthenticationFailed(f"server refused f(StoC): {response.result.name}")
        if not isinstance(reply, Data) or not isinstance(reply.value, bytes):
            self._move(AssociationInput.HLS_FAILED)
            return AuthenticationFailed("server returned no f(CtoS)")
        try:
            self.security.verify_challenge_reply(reply.value, self._challenge)
        except SecurityError as error:
            self._move(AssociationInput.HLS_FAILED)
            return AuthenticationFailed(f"server not authentic: {error}")
        self._move(AssociationInput.HLS_VERIFIED)
        return self._associated()

    def _associated(self) -> Associated:
        return Associated(
            self.negotiated_conformance, self.server_max_pdu_size, self.server_system_title
        )

    def _receive_aare(self, apdu: bytes) -> AssociationEvent:
        aare = decode_aare(apdu)
        if self.state is not S.AARQ_SENT:
            raise RemoteProtocolError(f"unexpected AARE in state {self.state.name}")
        self.server_system_title = aare.responding_ap_title
        if self.security is not None and aare.responding_ap_title is not None:
            self.security.peer_system_title = aare.responding_ap_title
        information = aare.user_information
        if isinstance(information, CipheredApdu):
            if self.security is None:
                raise RemoteProtocolError("ciphered user-information but no keys are configured")
            plain = self.security.decipher(information)
            if plain[:1] == bytes((ApduTag.CONFIRMED_SERVICE_ERROR,)):
                information = decode_confirmed_service_error(plain)
            else:
                information = decode_initiate_response(plain)
        if not aare.accepted or isinstance(information, ConfirmedServiceError):
            self._move(AssociationInput.AARE_REJECTED)
            error = information if isinstance(information, ConfirmedServiceError) else None
            result = aare.result if not aare.accepted else AssociationResult.REJECTED_PERMANENT
            return AssociationRejected(result, aare.diagnostic, error)
        if not isinstance(information, InitiateResponse):
            self._move(AssociationInput.AARE_REJECTED)
            raise RemoteProtocolError("accepted AARE without an InitiateResponse")
        self.negotiated_conformance = information.conformance
        self.server_max_pdu_size = information.max_receive_pdu_size
        if self.mechanism is not Mechanism.HLS_GMAC:
            self._move(AssociationInput.AARE_ACCEPTED)
            return self._associated()
        challenge = aare.responding_authentication_value
        if aare.diagnostic is not AcseServiceUserDiagnostic.AUTHENTICATION_REQUIRED or not (
            challenge
        ):
            self._move(AssociationInput.AARE_REJECTED)
            return AuthenticationFailed("the server did not send an HLS challenge")
        self._move(AssociationInput.AARE_CHALLENGE)
        self._stoc = challenge
        return AuthenticationRequired(challenge)
