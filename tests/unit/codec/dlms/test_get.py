"""GET request/response APDUs and block transfer reassembly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ivy_gateway.codec.dlms.apdu.common import (
    CosemAttributeDescriptor,
    InvokeIdAndPriority,
    SelectiveAccess,
)
from ivy_gateway.codec.dlms.apdu.get import (
    GetBlockReassembler,
    GetRequestNext,
    GetRequestNormal,
    GetRequestWithList,
    GetResponseNormal,
    GetResponseWithDatablock,
    GetResponseWithList,
    decode_get_request,
    decode_get_response,
)
from ivy_gateway.codec.dlms.axdr import Data, DataType, decode_data
from ivy_gateway.codec.dlms.enums import DataAccessResult
from ivy_gateway.codec.dlms.obis import Obis
from ivy_gateway.codec.errors import DecodeError, EncodeError, TruncatedError

VECTORS = {
    v["name"]: v
    for v in json.loads(
        (Path(__file__).parents[3] / "vectors" / "dlms.json").read_text(encoding="utf-8")
    )["vectors"]
}
REQUESTS = [v for v in VECTORS.values() if v["hex"].startswith("C0")]
RESPONSES = [v for v in VECTORS.values() if v["hex"].startswith("C4")]
C1 = InvokeIdAndPriority.make(1)
VOLTAGE = CosemAttributeDescriptor(3, Obis(1, 0, 12, 7, 0), 2)


@pytest.mark.parametrize("vector", REQUESTS, ids=lambda v: v["name"])
def test_request_vectors_round_trip(vector: dict[str, Any]) -> None:
    raw = bytes.fromhex(vector["hex"])
    assert decode_get_request(raw).to_bytes() == raw


@pytest.mark.parametrize("vector", RESPONSES, ids=lambda v: v["name"])
def test_response_vectors_round_trip(vector: dict[str, Any]) -> None:
    raw = bytes.fromhex(vector["hex"])
    assert decode_get_response(raw).to_bytes() == raw
    assert decode_get_response(memoryview(raw)).to_bytes() == raw


@pytest.mark.parametrize("vector", REQUESTS + RESPONSES, ids=lambda v: v["name"])
def test_every_prefix_is_truncated(vector: dict[str, Any]) -> None:
    raw = bytes.fromhex(vector["hex"])
    decode = decode_get_request if raw[0] == 0xC0 else decode_get_response
    for cut in range(len(raw)):
        with pytest.raises(DecodeError):
            decode(raw[:cut])


def test_encode_get_request_voltage_matches_the_reference_bytes() -> None:
    request = GetRequestNormal(C1, VOLTAGE)
    assert request.to_bytes() == bytes.fromhex(VECTORS["get_request_normal_voltage"]["hex"])


def test_selective_access_request() -> None:
    raw = bytes.fromhex(VECTORS["get_request_profile_entry_selective"]["hex"])
    request = decode_get_request(raw)
    assert isinstance(request, GetRequestNormal)
    assert request.access is not None
    assert request.access.selector == 2
    assert request.access.parameters.to_python() == [1, 2, 1, 0]


def test_with_list_request_and_next() -> None:
    request = decode_get_request(bytes.fromhex(VECTORS["get_request_with_list"]["hex"]))
    assert isinstance(request, GetRequestWithList)
    assert [a.attribute_id for a, _ in request.attributes] == [2, 3]
    nxt = decode_get_request(bytes.fromhex("C002C100000002"))
    assert nxt == GetRequestNext(C1, 2)


def test_response_normal_data_and_error() -> None:
    ok = decode_get_response(bytes.fromhex("C401C1000600005C54"))
    assert ok == GetResponseNormal(C1, Data(DataType.DOUBLE_LONG_UNSIGNED, 23636))
    assert ok.invoke_id_and_priority.invoke_id == 1
    err = decode_get_response(bytes.fromhex("C401C10104"))
    assert err == GetResponseNormal(C1, DataAccessResult.OBJECT_UNDEFINED)


def test_response_with_list_mixes_data_and_errors() -> None:
    response = decode_get_response(bytes.fromhex(VECTORS["get_response_with_list"]["hex"]))
    assert isinstance(response, GetResponseWithList)
    assert response.results == (
        Data(DataType.DOUBLE_LONG_UNSIGNED, 23636),
        DataAccessResult.OBJECT_UNDEFINED,
    )


def test_datablock_with_error_round_trips() -> None:
    response = GetResponseWithDatablock(C1, True, 3, DataAccessResult.DATA_BLOCK_UNAVAILABLE)
    raw = response.to_bytes()
    assert raw == bytes.fromhex("C402C1010000000301 0E".replace(" ", ""))
    assert decode_get_response(raw) == response


@pytest.mark.parametrize(
    ("wire", "match"),
    [
        ("C001C1000301000C0700FF0202", "access-selection"),
        ("C004C100", "GET-Request choice"),
        ("C001C1000301000C0700FF020000", "trailing"),
        ("C0038100", "count"),  # placeholder, replaced below
        ("C40181020000", "Get-Data-Result"),
        ("C401C10107", "DataAccessResult"),
        ("C404C100", "GET-Response choice"),
        ("C402C10200000001000100", "last-block"),
        ("C402C10000000001020100", "DataBlock-G"),
        ("C403C1050000", "count exceeds"),
        ("C401C1000600005C5400", "trailing"),
        ("C501C100", "not a GET-Response"),
        ("C103C100", "not a GET-Request"),
    ],
)
def test_invalid_apdus_are_rejected(wire: str, match: str) -> None:
    raw = bytes.fromhex(wire)
    decode = decode_get_request if raw[0] in (0xC0, 0xC1) else decode_get_response
    if wire == "C0038100":
        raw = bytes.fromhex("C003C105") + bytes(20)
    with pytest.raises(DecodeError, match=match):
        decode(raw)


def test_truncated_raw_data_is_truncated() -> None:
    with pytest.raises(TruncatedError):
        decode_get_response(bytes.fromhex("C402C1010000000100050102"))


def test_get_result_must_be_data_or_data_access_result() -> None:
    with pytest.raises(EncodeError):
        GetResponseNormal(C1, 5).to_bytes()  # type: ignore[arg-type]


def test_block_transfer_reassembles_the_vectors() -> None:
    first = decode_get_response(bytes.fromhex(VECTORS["get_response_datablock_1_of_2"]["hex"]))
    last_vector = VECTORS["get_response_datablock_2_of_2_last"]
    last = decode_get_response(bytes.fromhex(last_vector["hex"]))
    assert isinstance(first, GetResponseWithDatablock)
    assert isinstance(last, GetResponseWithDatablock)
    reassembler = GetBlockReassembler()
    assert reassembler.block_number == 0
    assert reassembler.feed(first) is None
    assert reassembler.next_request(C1).to_bytes() == bytes.fromhex("C002C100000001")
    result = reassembler.feed(last)
    expected = decode_data(bytes.fromhex(last_vector["decoded"]["reassembled_data"]))[0]
    assert result == expected
    assert reassembler.block_number == 2
    with pytest.raises(DecodeError, match="complete"):
        reassembler.feed(last)


def test_block_transfer_rejects_out_of_order_blocks_and_oversize() -> None:
    reassembler = GetBlockReassembler(max_size=4)
    with pytest.raises(DecodeError, match="expected block 1"):
        reassembler.feed(GetResponseWithDatablock(C1, False, 2, b"\x00"))
    with pytest.raises(DecodeError, match="exceeds"):
        reassembler.feed(GetResponseWithDatablock(C1, False, 1, bytes(5)))


def test_block_transfer_returns_the_abort_result() -> None:
    reassembler = GetBlockReassembler()
    aborted = GetResponseWithDatablock(C1, True, 1, DataAccessResult.LONG_GET_ABORTED)
    assert reassembler.feed(aborted) is DataAccessResult.LONG_GET_ABORTED


def test_block_transfer_rejects_trailing_bytes_after_the_value() -> None:
    reassembler = GetBlockReassembler()
    with pytest.raises(DecodeError, match="trailing"):
        reassembler.feed(GetResponseWithDatablock(C1, True, 1, b"\x00\x00"))


def test_invoke_id_and_priority() -> None:
    iid = InvokeIdAndPriority.make(5, confirmed=False, high_priority=False)
    assert iid.value == 5
    assert (iid.invoke_id, iid.confirmed, iid.high_priority) == (5, False, False)
    assert InvokeIdAndPriority.make(15).value == 0xCF
    with pytest.raises(ValueError, match="invoke-id"):
        InvokeIdAndPriority.make(16)
    with pytest.raises(ValueError, match="byte"):
        InvokeIdAndPriority(256)


@pytest.mark.parametrize(("class_id", "attribute"), [(-1, 2), (65536, 2), (3, 128), (3, -129)])
def test_descriptor_validators_reject(class_id: int, attribute: int) -> None:
    with pytest.raises(ValueError, match="outside"):
        CosemAttributeDescriptor(class_id, Obis(1, 0, 1, 8, 0), attribute)


def test_selective_access_selector_range() -> None:
    with pytest.raises(ValueError, match="access-selector"):
        SelectiveAccess(256, Data(DataType.NULL_DATA))


def test_block_number_must_fit_32_bits() -> None:
    with pytest.raises(EncodeError):
        GetRequestNext(C1, 2**32).to_bytes()
