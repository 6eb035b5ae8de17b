"""Exception-Response and Confirmed-Service-Error (Green Book xDLMS, dlms.md §E7)::

Exception-Response       D8 state-error(1) service-error(1) [invocation-counter(4)]
                         (the counter follows only service-error 6, invocation-counter-error)
Confirmed-Service-Error  0E service-choice(1) error-class(1) error-value(1)
                         e.g. 0E 01 06 01: initiateError / initiate / dlms-version-too-low
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import DecodeError
from ..enums import ConfirmedServiceErrorService, ServiceError, ServiceErrorKind, StateError
from .common import byte_at, check_end, enum_at, u32_at, u32_bytes
from .tags import ApduTag

__all__ = [
    "ConfirmedServiceError",
    "ExceptionResponse",
    "decode_confirmed_service_error",
    "decode_exception_response",
]


@dataclass(frozen=True, slots=True)
class ExceptionResponse:
    state_error: StateError
    service_error: ServiceError
    invocation_counter: int | None = None  # only with INVOCATION_COUNTER_ERROR

    def __post_init__(self) -> None:
        needs_counter = self.service_error == ServiceError.INVOCATION_COUNTER_ERROR
        if needs_counter != (self.invocation_counter is not None):
            raise ValueError("invocation_counter goes with INVOCATION_COUNTER_ERROR only")

    def to_bytes(self) -> bytes:
        head = bytes((ApduTag.EXCEPTION_RESPONSE, self.state_error, self.service_error))
        if self.invocation_counter is None:
            return head
        return head + u32_bytes(self.invocation_counter)


@dataclass(frozen=True, slots=True)
class ConfirmedServiceError:
    service: ConfirmedServiceErrorService
    error_class: ServiceErrorKind
    error_value: int  # meaning depends on error_class (e.g. enums.InitiateError)

    def __post_init__(self) -> None:
        if not 0 <= self.error_value <= 0xFF:
            raise ValueError(f"error value {self.error_value} outside 0..255")

    def to_bytes(self) -> bytes:
        return bytes(
            (ApduTag.CONFIRMED_SERVICE_ERROR, self.service, self.error_class, self.error_value)
        )


def decode_exception_response(buf: bytes | memoryview) -> ExceptionResponse:
    """Decode a whole Exception-Response (``D8 …``): 3 bytes, or 7 with a counter."""
    if byte_at(buf, 0) != ApduTag.EXCEPTION_RESPONSE:
        raise DecodeError(f"not an Exception-Response: tag 0x{buf[0]:02X}", offset=0)
    state = enum_at(buf, 1, StateError)
    service = enum_at(buf, 2, ServiceError)
    counter = None
    end = 3
    if service == ServiceError.INVOCATION_COUNTER_ERROR:
        counter, end = u32_at(buf, 3), 7
    check_end(buf, end)
    return ExceptionResponse(state, service, counter)


def decode_confirmed_service_error(buf: bytes | memoryview) -> ConfirmedServiceError:
    """Decode a whole Confirmed-Service-Error (``0E …``, 4 bytes)."""
    if byte_at(buf, 0) != ApduTag.CONFIRMED_SERVICE_ERROR:
        raise DecodeError(f"not a Confirmed-Service-Error: tag 0x{buf[0]:02X}", offset=0)
    service = enum_at(buf, 1, ConfirmedServiceErrorService)
    error_class = enum_at(buf, 2, ServiceErrorKind)
    value = byte_at(buf, 3)
    check_end(buf, 4)
    return ConfirmedServiceError(service, error_class, value)
