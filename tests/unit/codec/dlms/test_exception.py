"""Exception-Response and Confirmed-Service-Error."""

from __future__ import annotations

import pytest

from ivy_gateway.codec.dlms.apdu.exception import (
    ConfirmedServiceError,
    ExceptionResponse,
    decode_confirmed_service_error,
    decode_exception_response,
)
from ivy_gateway.codec.dlms.enums import (
    ConfirmedServiceErrorService,
    InitiateError,
    ServiceError,
    ServiceErrorKind,
    StateError,
)
from ivy_gateway.codec.errors import DecodeError, TruncatedError


@pytest.mark.parametrize(
    ("apdu", "wire"),
    [
        (
            ExceptionResponse(StateError.SERVICE_NOT_ALLOWED, ServiceError.SERVICE_NOT_SUPPORTED),
            "D80102",
        ),
        (ExceptionResponse(StateError.SERVICE_UNKNOWN, ServiceError.OTHER_REASON), "D80203"),
        (
            ExceptionResponse(
                StateError.SERVICE_NOT_ALLOWED, ServiceError.INVOCATION_COUNTER_ERROR, 5
            ),
            "D8010600000005",
        ),
    ],
)  # fmt: skip
def test_exception_response_both_ways(apdu: ExceptionResponse, wire: str) -> None:
    raw = bytes.fromhex(wire)
    assert apdu.to_bytes() == raw
    assert decode_exception_response(raw) == apdu


@pytest.mark.parametrize(
    ("wire", "error"),
    [
        ("D801", TruncatedError),
        ("D8010600", TruncatedError),
        ("D80302", DecodeError),
        ("D80107", DecodeError),
        ("D8010200", DecodeError),
        ("C80102", DecodeError),
        ("", TruncatedError),
    ],
)
def test_exception_response_rejects(wire: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_exception_response(bytes.fromhex(wire))


def test_counter_goes_with_invocation_counter_error_only() -> None:
    with pytest.raises(ValueError, match="invocation_counter"):
        ExceptionResponse(StateError.SERVICE_NOT_ALLOWED, ServiceError.OTHER_REASON, 1)
    with pytest.raises(ValueError, match="invocation_counter"):
        ExceptionResponse(StateError.SERVICE_NOT_ALLOWED, ServiceError.INVOCATION_COUNTER_ERROR)


def test_confirmed_service_error_both_ways() -> None:
    apdu = ConfirmedServiceError(
        ConfirmedServiceErrorService.INITIATE_ERROR,
        ServiceErrorKind.INITIATE,
        InitiateError.DLMS_VERSION_TOO_LOW,
    )
    assert apdu.to_bytes() == bytes.fromhex("0E010601")
    assert decode_confirmed_service_error(bytes.fromhex("0E010601")) == apdu


@pytest.mark.parametrize(
    ("wire", "error"),
    [("0E0106", TruncatedError), ("0E000601", DecodeError), ("0E010B01", DecodeError),
     ("0E01060100", DecodeError), ("0F010601", DecodeError)],
)  # fmt: skip
def test_confirmed_service_error_rejects(wire: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_confirmed_service_error(bytes.fromhex(wire))


def test_confirmed_service_error_value_is_a_byte() -> None:
    with pytest.raises(ValueError, match="error value"):
        ConfirmedServiceError(ConfirmedServiceErrorService.READ, ServiceErrorKind.ACCESS, 256)
