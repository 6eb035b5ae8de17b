"""ACTION request/response APDUs (normal variants)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ivy_gateway.codec.dlms.apdu.action import (
    ActionRequestNormal,
    ActionResponseNormal,
    decode_action_request,
    decode_action_response,
)
from ivy_gateway.codec.dlms.apdu.common import CosemMethodDescriptor, InvokeIdAndPriority
from ivy_gateway.codec.dlms.axdr import Data, DataType
from ivy_gateway.codec.dlms.enums import ActionResult, DataAccessResult
from ivy_gateway.codec.dlms.obis import Obis
from ivy_gateway.codec.errors import DecodeError

VECTORS = [
    v
    for v in json.loads(
        (Path(__file__).parents[3] / "vectors" / "dlms.json").read_text(encoding="utf-8")
    )["vectors"]
    if v["hex"][:2] in ("C3", "C7")
]
C1 = InvokeIdAndPriority.make(1)
DISCONNECT = CosemMethodDescriptor(70, Obis(0, 0, 96, 3, 10), 1)


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["name"])
def test_vectors_round_trip(vector: dict[str, Any]) -> None:
    raw = bytes.fromhex(vector["hex"])
    decode = decode_action_request if raw[0] == 0xC3 else decode_action_response
    assert decode(raw).to_bytes() == raw
    for cut in range(len(raw)):
        with pytest.raises(DecodeError):
            decode(raw[:cut])


def test_remote_disconnect_request_bytes() -> None:
    request = ActionRequestNormal(C1, DISCONNECT, Data(DataType.INTEGER, 0))
    assert request.to_bytes().hex().upper() == "C301C10046000060030AFF01010F00"


@pytest.mark.parametrize(
    ("apdu", "wire"),
    [
        (ActionRequestNormal(C1, DISCONNECT), "C301C10046000060030AFF0100"),
        (ActionResponseNormal(C1, ActionResult.SUCCESS), "C701C10000"),
        (
            ActionResponseNormal(C1, ActionResult.SUCCESS, DataAccessResult.TYPE_UNMATCHED),
            "C701C10001010C",
        ),
        (
            ActionResponseNormal(C1, ActionResult.SUCCESS, Data(DataType.BOOLEAN, True)),
            "C701C1000100" + "0301",
        ),
    ],
)
def test_both_ways(apdu: ActionRequestNormal | ActionResponseNormal, wire: str) -> None:
    raw = bytes.fromhex(wire)
    assert apdu.to_bytes() == raw
    decode = decode_action_request if raw[0] == 0xC3 else decode_action_response
    assert decode(raw) == apdu


@pytest.mark.parametrize(
    ("wire", "match"),
    [
        ("C302C100", "ACTION-Request choice"),
        ("C301C10046000060030AFF0102", "parameters flag"),
        ("C301C10046000060030AFF010000", "trailing"),
        ("C702C100", "ACTION-Response choice"),
        ("C701C10002", "return-parameters flag"),
        ("C701C10500", "ActionResult"),
        ("C701C1000102", "Get-Data-Result"),
    ],
)
def test_invalid_apdus_are_rejected(wire: str, match: str) -> None:
    raw = bytes.fromhex(wire)
    decode = decode_action_request if raw[0] == 0xC3 else decode_action_response
    with pytest.raises(DecodeError, match=match):
        decode(raw)
