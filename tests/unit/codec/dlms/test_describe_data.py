"""describe_service_apdu reproduces the ``decoded`` objects of tests/vectors/dlms.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import ivy_gateway.codec.dlms as dlms
from ivy_gateway.codec.dlms.apdu.action import ActionRequestNormal, ActionResponseNormal
from ivy_gateway.codec.dlms.apdu.common import (
    CosemAttributeDescriptor,
    CosemMethodDescriptor,
    InvokeIdAndPriority,
    SelectiveAccess,
)
from ivy_gateway.codec.dlms.apdu.get import GetResponseWithDatablock
from ivy_gateway.codec.dlms.apdu.set import (
    DataBlock,
    SetRequestNormal,
    SetRequestWithDatablock,
    SetRequestWithFirstDatablock,
    SetRequestWithList,
    SetResponseDatablock,
    SetResponseLastDatablock,
    SetResponseWithList,
)
from ivy_gateway.codec.dlms.apdu.xdlms import decode_service_apdu, response_invoke_id
from ivy_gateway.codec.dlms.axdr import BitString, CompactArray, Data, DataType
from ivy_gateway.codec.dlms.clock import CosemDate
from ivy_gateway.codec.dlms.describe_data import describe_data, describe_service_apdu
from ivy_gateway.codec.dlms.enums import ActionResult, DataAccessResult
from ivy_gateway.codec.dlms.obis import Obis
from ivy_gateway.codec.errors import DecodeError, TruncatedError

SERVICE_TAGS = {"C0", "C1", "C2", "C3", "C4", "C5", "C7", "0F", "0E", "D8"}
VECTORS = [
    v
    for v in json.loads(
        (Path(__file__).parents[3] / "vectors" / "dlms.json").read_text(encoding="utf-8")
    )["vectors"]
    if v["hex"][:2] in SERVICE_TAGS
]
# Keys that describe more than the APDU itself: the reassembly of several blocks (tested in
# test_get.py) and the HLS f(StoC)/f(CtoS) computed by the security layer.
CONTEXT_KEYS = {"reassembled_data", "f_stoc", "f_ctos"}
C1 = InvokeIdAndPriority.make(1)
ATTR = CosemAttributeDescriptor(8, Obis(0, 0, 1, 0, 0), 2)
NULL = Data(DataType.NULL_DATA)


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["name"])
def test_description_equals_the_vector(vector: dict[str, Any]) -> None:
    expected = {k: v for k, v in vector["decoded"].items() if k not in CONTEXT_KEYS}
    described = describe_service_apdu(bytes.fromhex(vector["hex"]))
    assert described == expected
    json.dumps(described)  # JSON-able


def test_all_service_vectors_are_covered() -> None:
    assert len(VECTORS) >= 60


@pytest.mark.parametrize(
    ("apdu", "expected"),
    [
        (
            GetResponseWithDatablock(C1, True, 1, DataAccessResult.LONG_GET_ABORTED),
            {"apdu": "GET-Response-With-Datablock", "last_block": True, "block_number": 1,
             "data_access_result": 15},
        ),
        (
            SetRequestNormal(C1, ATTR, NULL, SelectiveAccess(1, NULL)),
            {"apdu": "SET-Request-Normal", "class_id": 8, "obis": "0-0:1.0.0.255", "attribute": 2,
             "access_selector": 1, "access_parameters": "00", "value_hex": "00"},
        ),
        (
            SetRequestWithFirstDatablock(C1, ATTR, DataBlock(False, 1, b"\x09")),
            {"apdu": "SET-Request-With-First-Datablock", "class_id": 8, "obis": "0-0:1.0.0.255",
             "attribute": 2, "last_block": False, "block_number": 1, "raw_data": "09"},
        ),
        (
            SetRequestWithDatablock(C1, DataBlock(True, 2, b"\x00")),
            {"apdu": "SET-Request-With-Datablock", "last_block": True, "block_number": 2,
             "raw_data": "00"},
        ),
        (
            SetRequestWithList(C1, ((ATTR, None),), (Data(DataType.UNSIGNED, 1),)),
            {"apdu": "SET-Request-With-List", "count": 1, "values_hex": ["1101"]},
        ),
        (SetResponseDatablock(C1, 3), {"apdu": "SET-Response-Datablock", "block_number": 3}),
        (
            SetResponseLastDatablock(C1, DataAccessResult.SUCCESS, 3),
            {"apdu": "SET-Response-Last-Datablock", "data_access_result": 0, "block_number": 3},
        ),
        (
            SetResponseWithList(C1, (DataAccessResult.SUCCESS,)),
            {"apdu": "SET-Response-With-List", "results": [0]},
        ),
        (
            ActionRequestNormal(C1, CosemMethodDescriptor(70, Obis(0, 0, 96, 3, 10), 1)),
            {"apdu": "ACTION-Request-Normal", "class_id": 70, "obis": "0-0:96.3.10.255",
             "method": 1},
        ),
        (
            ActionResponseNormal(C1, ActionResult.SUCCESS, DataAccessResult.TYPE_UNMATCHED),
            {"apdu": "ACTION-Response-Normal", "action_result": 0, "return_data_access_result": 12},
        ),
    ],
)  # fmt: skip
def test_descriptions_of_apdus_without_vectors(apdu: Any, expected: dict[str, Any]) -> None:
    expected = {"invoke_id_and_priority": 193, **expected}
    assert describe_service_apdu(apdu.to_bytes()) == expected


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (Data(DataType.BIT_STRING, BitString.from_str("101")), "101"),
        (Data(DataType.DATE, CosemDate(2026, 1, 30, 5)), "07EA011E05"),
        (Data(DataType.COMPACT_ARRAY, CompactArray(b"\x11", b"\x01")), "110101"),
        (Data(DataType.ARRAY, (Data(DataType.OCTET_STRING, b"\xab"),)), ["AB"]),
    ],
)
def test_value_formats(data: Data, value: Any) -> None:
    assert describe_data(data)["value"] == value


def test_long_form_lengths_are_reported() -> None:
    described = describe_data(Data(DataType.ARRAY, (Data(DataType.NULL_DATA),) * 300))
    assert described["length_encoding"] == "82012C"


def test_dispatcher_rejects_unknown_and_empty_apdus() -> None:
    with pytest.raises(TruncatedError):
        decode_service_apdu(b"")
    with pytest.raises(DecodeError, match="not a plain xDLMS"):
        decode_service_apdu(bytes.fromhex("601D"))


def test_response_invoke_id() -> None:
    assert response_invoke_id(decode_service_apdu(bytes.fromhex("C401C50104"))) == 5
    assert response_invoke_id(decode_service_apdu(bytes.fromhex("D80102"))) is None


def test_public_api_is_pinned() -> None:
    assert sorted(dlms.__all__) == sorted(
        [
            "DEFAULT_CATALOGUE", "ActionResult", "ApduTag", "BitString", "Catalogue",
            "ClockStatus", "CompactArray", "CosemAttributeDescriptor", "CosemDate",
            "CosemDateTime", "CosemMethodDescriptor", "CosemObject", "CosemTime", "Data",
            "DataAccessResult", "DataType", "GetBlockReassembler", "InterfaceClass",
            "InvokeIdAndPriority", "LongInvokeIdAndPriority", "Obis", "ScalerUnit",
            "SelectiveAccess", "ServiceApdu", "ServiceError", "StateError", "Unit",
            "decode_data", "decode_scaler_unit", "decode_service_apdu",
            "describe_service_apdu", "encode_data", "notification_values",
            "response_invoke_id", "skip_data",
        ]
    )  # fmt: skip
    for name in dlms.__all__:
        assert getattr(dlms, name) is not None
