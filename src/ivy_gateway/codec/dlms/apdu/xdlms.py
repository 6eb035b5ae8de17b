"""One entry point for the plain (not ciphered, not ACSE) xDLMS service APDUs.

``decode_service_apdu`` dispatches on the tag (dlms.md Part B) and returns a typed APDU;
``response_invoke_id`` gives the 4-bit invoke-id a session correlates a response with.
"""

from __future__ import annotations

from collections.abc import Callable

from ...errors import DecodeError, TruncatedError
from .action import (
    ActionRequestNormal,
    ActionResponseNormal,
    decode_action_request,
    decode_action_response,
)
from .exception import (
    ConfirmedServiceError,
    ExceptionResponse,
    decode_confirmed_service_error,
    decode_exception_response,
)
from .get import GetRequest, GetResponse, decode_get_request, decode_get_response
from .notification import (
    DataNotification,
    EventNotificationRequest,
    decode_data_notification,
    decode_event_notification,
)
from .set import SetRequest, SetResponse, decode_set_request, decode_set_response
from .tags import ApduTag

__all__ = ["ServiceApdu", "decode_service_apdu", "response_invoke_id"]

ServiceApdu = (
    GetRequest
    | GetResponse
    | SetRequest
    | SetResponse
    | ActionRequestNormal
    | ActionResponseNormal
    | DataNotification
    | EventNotificationRequest
    | ExceptionResponse
    | ConfirmedServiceError
)

_DECODERS: dict[int, Callable[[bytes | memoryview], ServiceApdu]] = {
    ApduTag.GET_REQUEST: decode_get_request,
    ApduTag.GET_RESPONSE: decode_get_response,
    ApduTag.SET_REQUEST: decode_set_request,
    ApduTag.SET_RESPONSE: decode_set_response,
    ApduTag.ACTION_REQUEST: decode_action_request,
    ApduTag.ACTION_RESPONSE: decode_action_response,
    ApduTag.DATA_NOTIFICATION: decode_data_notification,
    ApduTag.EVENT_NOTIFICATION_REQUEST: decode_event_notification,
    ApduTag.EXCEPTION_RESPONSE: decode_exception_response,
    ApduTag.CONFIRMED_SERVICE_ERROR: decode_confirmed_service_error,
}


def decode_service_apdu(buf: bytes | memoryview) -> ServiceApdu:
    """Decode one whole plain xDLMS service APDU; ``DecodeError`` for anything else."""
    if not buf:
        raise TruncatedError("empty APDU", offset=0)
    decoder = _DECODERS.get(buf[0])
    if decoder is None:
        raise DecodeError(f"not a plain xDLMS service APDU: tag 0x{buf[0]:02X}", offset=0)
    return decoder(buf)


def response_invoke_id(apdu: ServiceApdu) -> int | None:
    """The 4-bit invoke-id of a GET/SET/ACTION APDU; ``None`` for the others.

    Exception-Response and Confirmed-Service-Error carry no invoke-id: a session fails
    every outstanding request when it gets one.
    """
    iid = getattr(apdu, "invoke_id_and_priority", None)
    return None if iid is None else int(iid.invoke_id)
