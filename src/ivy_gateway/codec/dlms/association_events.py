"""The association's vocabulary: states and the transition table, the events
``Association.receive`` returns, and the errors it raises (sans-IO).

One APDU in, one event out. Errors::

    CodecError
     └── AssociationError
          ├── LocalProtocolError    we asked for something the state does not allow
          │                         (GET before the AARE, a list without multiple-references,
          │                         a 17th outstanding request, a PDU above the server's size)
          └── RemoteProtocolError   the peer sent an APDU the state does not allow (an AARE
                                    while associated, a request, a plain response in a
                                    ciphered association); also a ``DecodeError``, so a
                                    session that counts bad APDUs catches both with one type
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple

from ..errors import CodecError, DecodeError
from .apdu.acse import AssociationResult, Diagnostic
from .apdu.exception import ConfirmedServiceError, ExceptionResponse
from .apdu.initiate import Conformance
from .apdu.notification import DataNotification, EventNotificationRequest
from .apdu.release import ReleaseResponseReason
from .apdu.xdlms import ServiceApdu
from .axdr import Data
from .enums import ActionResult, DataAccessResult

__all__ = [
    "REMOTE_INPUTS",
    "TRANSITIONS",
    "ActionCompleted",
    "Associated",
    "AssociationError",
    "AssociationEvent",
    "AssociationInput",
    "AssociationRejected",
    "AssociationState",
    "AuthenticationFailed",
    "AuthenticationRequired",
    "BlockReceived",
    "ErrorReceived",
    "GetCompleted",
    "GetListCompleted",
    "LocalProtocolError",
    "NotificationReceived",
    "Released",
    "RemoteProtocolError",
    "RequestFailed",
    "SetCompleted",
    "UnexpectedResponse",
]


class AssociationState(enum.Enum):
    IDLE = "idle"
    AARQ_SENT = "aarq_sent"
    #: the AARE accepted with "authentication-required": pass 3 is ours to send
    AUTHENTICATING = "authenticating"
    #: pass 3 sent, waiting for the server's f(CtoS) (pass 4)
    HLS_REPLY_SENT = "hls_reply_sent"
    ASSOCIATED = "associated"
    RLRQ_SENT = "rlrq_sent"


class AssociationInput(enum.Enum):
    """What moves the association from one state to another (see ``TRANSITIONS``)."""

    SEND_AARQ = "send AARQ"
    AARE_ACCEPTED = "accepted AARE"
    AARE_CHALLENGE = "AARE asking for HLS pass 3/4"
    AARE_REJECTED = "rejected AARE"
    SEND_HLS_REPLY = "send HLS pass 3"
    HLS_VERIFIED = "verified HLS pass 4"
    HLS_FAILED = "failed HLS pass 4"
    SEND_SERVICE = "send a service request"
    SEND_RLRQ = "send RLRQ"
    RLRE = "RLRE"


_S, _I = AssociationState, AssociationInput
#: the whole lifecycle: (state, input) → next state; any other pair raises
TRANSITIONS: dict[tuple[AssociationState, AssociationInput], AssociationState] = {
    (_S.IDLE, _I.SEND_AARQ): _S.AARQ_SENT,
    (_S.AARQ_SENT, _I.AARE_ACCEPTED): _S.ASSOCIATED,
    (_S.AARQ_SENT, _I.AARE_CHALLENGE): _S.AUTHENTICATING,
    (_S.AARQ_SENT, _I.AARE_REJECTED): _S.IDLE,
    (_S.AUTHENTICATING, _I.SEND_HLS_REPLY): _S.HLS_REPLY_SENT,
    (_S.HLS_REPLY_SENT, _I.HLS_VERIFIED): _S.ASSOCIATED,
    (_S.HLS_REPLY_SENT, _I.HLS_FAILED): _S.IDLE,
    (_S.ASSOCIATED, _I.SEND_SERVICE): _S.ASSOCIATED,
    (_S.ASSOCIATED, _I.SEND_RLRQ): _S.RLRQ_SENT,
    (_S.RLRQ_SENT, _I.RLRE): _S.IDLE,
}
REMOTE_INPUTS = frozenset(
    {
        AssociationInput.AARE_ACCEPTED,
        AssociationInput.AARE_CHALLENGE,
        AssociationInput.AARE_REJECTED,
        AssociationInput.RLRE,
    }
)


class AssociationError(CodecError):
    """Base of the association's own errors."""


class LocalProtocolError(AssociationError):
    """The caller asked for a transition or service the association does not allow now."""


class RemoteProtocolError(AssociationError, DecodeError):
    """The peer sent an APDU that is well formed but not allowed in this state."""


@dataclass(frozen=True, slots=True)
class Associated:
    """The association is up; ``conformance`` and ``max_pdu_size`` are the server's grant."""

    conformance: Conformance
    max_pdu_size: int
    server_system_title: bytes | None = None


@dataclass(frozen=True, slots=True)
class AuthenticationRequired:
    """HLS: the AARE accepted pending pass 3/4; call ``send_hls_reply()``."""

    challenge: bytes  #: StoC


@dataclass(frozen=True, slots=True)
class AssociationRejected:
    result: AssociationResult
    diagnostic: Diagnostic
    error: ConfirmedServiceError | None = None


@dataclass(frozen=True, slots=True)
class AuthenticationFailed:
    """HLS pass 3 refused by the server, or its f(CtoS) did not authenticate it."""

    reason: str


class GetCompleted(NamedTuple):
    """The answer to a GET; a ``NamedTuple`` (immutable, typed) because it is made for
    nearly every APDU and builds several times faster than a frozen dataclass."""

    invoke_id: int
    result: Data | DataAccessResult


@dataclass(frozen=True, slots=True)
class GetListCompleted:
    invoke_id: int
    results: tuple[Data | DataAccessResult, ...]


@dataclass(frozen=True, slots=True)
class BlockReceived:
    """A GET answer arrives in blocks: write ``reply`` (the GET-Request-Next) and wait on."""

    invoke_id: int
    block_number: int
    reply: bytes


@dataclass(frozen=True, slots=True)
class SetCompleted:
    invoke_id: int
    result: DataAccessResult


@dataclass(frozen=True, slots=True)
class ActionCompleted:
    invoke_id: int
    result: ActionResult
    return_value: Data | DataAccessResult | None = None


@dataclass(frozen=True, slots=True)
class RequestFailed:
    """The answer to an outstanding request could not be used; the request is dropped."""

    invoke_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class UnexpectedResponse:
    """A response nobody waits for (unknown or abandoned invoke-id): count it, drop it."""

    invoke_id: int | None
    apdu: ServiceApdu


@dataclass(frozen=True, slots=True)
class ErrorReceived:
    """Exception-Response or Confirmed-Service-Error: no invoke-id, so every outstanding
    request is dropped (dlms.md D3: re-associate after one)."""

    error: ExceptionResponse | ConfirmedServiceError
    dropped_invoke_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class NotificationReceived:
    """A pushed Data-/Event-Notification (any state); ``apdu`` is the plain APDU."""

    notification: DataNotification | EventNotificationRequest
    apdu: bytes


@dataclass(frozen=True, slots=True)
class Released:
    reason: ReleaseResponseReason | None


AssociationEvent = (
    Associated
    | AuthenticationRequired
    | AssociationRejected
    | AuthenticationFailed
    | GetCompleted
    | GetListCompleted
    | BlockReceived
    | SetCompleted
    | ActionCompleted
    | RequestFailed
    | UnexpectedResponse
    | ErrorReceived
    | NotificationReceived
    | Released
)
