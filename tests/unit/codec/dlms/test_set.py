"""SET request/response APDUs."""

from __future__ import annotations

import pytest

from ivy_gateway.codec.dlms.apdu.common import (
    CosemAttributeDescriptor,
    InvokeIdAndPriority,
    SelectiveAccess,
)
from ivy_gateway.codec.dlms.apdu.set import (
    DataBlock,
    SetRequestNormal,
    SetRequestWithDatablock,
    SetRequestWithFirstDatablock,
    SetRequestWithList,
    SetResponseDatablock,
    SetResponseLastDatablock,
    SetResponseNormal,
    SetResponseWithList,
    decode_set_request,
    decode_set_response,
)
from ivy_gateway.codec.dlms.axdr import Data, DataType
from ivy_gateway.codec.dlms.clock import CosemDateTime
from ivy_gateway.codec.dlms.enums import DataAccessResult
from ivy_gateway.codec.dlms.obis import Obis
from ivy_gateway.codec.errors import DecodeError, TruncatedError

C1 = InvokeIdAndPriority.make(1)
CLOCK_TIME = CosemAttributeDescriptor(8, Obis(0, 0, 1, 0, 0), 2)
STAMP = bytes.fromhex("07EA011E05042213008000FF")


def test_set_clock_matches_the_vector() -> None:
    request = SetRequestNormal(C1, CLOCK_TIME, Data(DataType.OCTET_STRING, STAMP))
    raw = bytes.fromhex("C101C100080000010000FF0200090C07EA011E05042213008000FF")
    assert request.to_bytes() == raw
    assert decode_set_request(raw) == request
    assert CosemDateTime.from_bytes(STAMP).year == 2026


@pytest.mark.parametrize(
    "apdu",
    [
        SetRequestNormal(
            C1, CLOCK_TIME, Data(DataType.NULL_DATA), SelectiveAccess(1, Data(DataType.NULL_DATA))
        ),
        SetRequestWithFirstDatablock(C1, CLOCK_TIME, DataBlock(False, 1, b"\x09\x0c")),
        SetRequestWithDatablock(C1, DataBlock(True, 2, STAMP)),
        SetRequestWithList(
            C1,
            ((CLOCK_TIME, None), (CLOCK_TIME, None)),
            (Data(DataType.UNSIGNED, 1), Data(DataType.UNSIGNED, 2)),
        ),
    ],
)
def test_requests_round_trip(apdu: object) -> None:
    raw = apdu.to_bytes()  # type: ignore[attr-defined]
    assert decode_set_request(raw) == apdu
    for cut in range(len(raw)):
        with pytest.raises(DecodeError):
            decode_set_request(raw[:cut])


@pytest.mark.parametrize(
    ("apdu", "wire"),
    [
        (SetResponseNormal(C1, DataAccessResult.SUCCESS), "C501C100"),
        (SetResponseNormal(C1, DataAccessResult.READ_WRITE_DENIED), "C501C103"),
        (SetResponseDatablock(C1, 1), "C502C100000001"),
        (SetResponseLastDatablock(C1, DataAccessResult.SUCCESS, 2), "C503C10000000002"),
        (
            SetResponseWithList(C1, (DataAccessResult.SUCCESS, DataAccessResult.OTHER_REASON)),
            "C505C10200FA",
        ),
    ],
)
def test_responses_both_ways(apdu: object, wire: str) -> None:
    raw = bytes.fromhex(wire)
    assert apdu.to_bytes() == raw  # type: ignore[attr-defined]
    assert decode_set_response(raw) == apdu


@pytest.mark.parametrize(
    ("wire", "match"),
    [
        ("C106C100", "SET-Request choice"),
        ("C103C1020000000100", "last-block"),
        ("C104C101" + "0008" + "0000010000FF02" + "00" + "02" + "1101" + "1102", "values"),
        ("C104C105" + "00" * 12, "count exceeds"),
        ("C101C100080000010000FF02000000", "trailing"),
    ],
)
def test_invalid_requests_are_rejected(wire: str, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        decode_set_request(bytes.fromhex(wire))


@pytest.mark.parametrize(
    ("wire", "error"),
    [
        ("C504C100", DecodeError),
        ("C501C107", DecodeError),
        ("C505C105", TruncatedError),
        ("C501C10000", DecodeError),
        ("C401C100", DecodeError),
    ],
)
def test_invalid_responses_are_rejected(wire: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_set_response(bytes.fromhex(wire))


def test_with_list_needs_one_value_per_attribute() -> None:
    with pytest.raises(ValueError, match="one value per attribute"):
        SetRequestWithList(C1, ((CLOCK_TIME, None),), ())


def test_truncated_block_raw_data() -> None:
    with pytest.raises(TruncatedError):
        decode_set_request(bytes.fromhex("C103C1010000000105AA"))
