"""The EM114070 simulator answers as em114070.md §7 says, byte for byte where recorded."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path

import pytest

from ivy_gateway.codec.dlms import Data, DataType, Obis, decode_service_apdu
from ivy_gateway.codec.dlms.apdu.get import GetResponseNormal
from ivy_gateway.codec.wrapper import NEED_DATA, WrappedPacket, WrapperDecoder, encode_wrapped
from ivy_gateway.simulators.em114070_meter import Em114070Meter
from ivy_gateway.transport.fakes import LoopbackPair

VECTORS = {
    v["name"]: bytes.fromhex(v["hex"])
    for v in json.loads(
        (Path(__file__).parents[2] / "vectors" / "dlms.json").read_text(encoding="utf-8")
    )["vectors"]
}
OBJECTS = json.loads(
    (Path(__file__).parents[2] / "vectors" / "em114070-objects.json").read_text(encoding="utf-8")
)["objects"]


def _associated(**kwargs: object) -> Em114070Meter:
    meter = Em114070Meter(**kwargs)  # type: ignore[arg-type]
    assert meter.answer(VECTORS["aarq_ln_no_auth"]) == [VECTORS["aare_accepted_ln"]]
    return meter


def _get(obis: str, class_id: int, attribute: int, iid: int = 0xC1) -> bytes:
    return (
        bytes((0xC0, 0x01, iid, 0, class_id)) + Obis.parse(obis).to_bytes() + bytes((attribute, 0))
    )


def test_other_contexts_are_rejected() -> None:
    meter = Em114070Meter()
    assert meter.answer(VECTORS["aarq_sn_no_auth"])[0][:3] == bytes.fromhex("6117A1")
    assert meter.answer(VECTORS["aarq_ln_cipher_hls_gmac"]) == [
        VECTORS["aare_rejected_context_not_supported"]
    ]
    assert meter.answer(bytes.fromhex("6003A10100")) != [VECTORS["aare_accepted_ln"]]


def test_get_before_association_is_service_not_allowed() -> None:
    assert Em114070Meter().answer(VECTORS["get_request_normal_voltage"]) == [
        bytes.fromhex("D80102")
    ]


@pytest.mark.parametrize("item", OBJECTS, ids=lambda o: o["obis"])
def test_every_scanned_object_answers_with_its_type(item: dict[str, object]) -> None:
    meter = _associated(serial="000000000000")
    [reply] = meter.answer(_get(str(item["obis"]), int(item["class_id"]), 2, iid=0x55))  # type: ignore[call-overload]
    response = decode_service_apdu(reply)
    assert isinstance(response, GetResponseNormal)
    assert response.invoke_id_and_priority.value == 0x55  # echoed whole
    assert isinstance(response.result, Data)
    assert response.result.tag == item["dlms_tag"]
    if item["obis"] in ("0-0:42.0.0.255", "0-0:96.1.0.255", "0-0:96.1.1.255", "0-0:96.14.0.255"):
        assert reply.hex().upper().endswith(str(item["example_data_hex"]))


def test_scaler_unit_logical_name_and_undefined() -> None:
    meter = _associated()
    [scaler] = meter.answer(VECTORS["get_request_normal_scaler_unit"])
    assert scaler == VECTORS["get_response_structure_scaler_unit_volt"]
    [name] = meter.answer(_get("1-0:12.7.0.255", 3, 1))
    assert name.endswith(bytes.fromhex("090601000C0700FF"))
    for request in (_get("1-0:32.7.0.255", 3, 2), _get("1-0:12.7.0.255", 1, 2)):
        assert meter.answer(request) == [VECTORS["get_response_error_object_undefined"]]


def test_relay_only_with_the_switch() -> None:
    assert _associated().answer(VECTORS["action_request_remote_disconnect"]) == [
        bytes.fromhex("C701C10400")
    ]
    meter = _associated(disconnect_control=True)
    assert meter.answer(VECTORS["action_request_remote_disconnect"]) == [
        VECTORS["action_response_success"]
    ]
    assert not meter.relay_closed
    [state] = meter.answer(_get("0-0:96.3.10.255", 70, 2))
    assert state == VECTORS["get_response_disconnect_output_state_false"]
    bad = VECTORS["action_request_remote_reconnect"][:-2] + b"\x00"
    assert meter.answer(bad)[0] == bytes.fromhex("C701C20C00")


def test_set_clock_and_release() -> None:
    meter = _associated()
    assert meter.answer(VECTORS["set_request_clock"]) == [VECTORS["set_response_success"]]
    assert meter.now().year == 2026
    wrong = bytes.fromhex("C101C100080000010000FF02001100")
    assert meter.answer(wrong) == [bytes.fromhex("C501C10C")]
    truncated = _get("1-0:12.7.0.255", 3, 2)[:9]
    assert meter.answer(truncated) == []  # silent on what it cannot parse
    assert meter.answer(VECTORS["rlrq_normal"]) == [VECTORS["rlre_normal"]]
    assert meter.answer(VECTORS["get_request_normal_voltage"]) == [bytes.fromhex("D80102")]


def test_values_change_slowly_and_energy_never_falls() -> None:
    meter = _associated(seed=7, time_scale=3600.0)
    before = meter.energy_wh
    voltages = []
    for _ in range(20):
        [reply] = meter.answer(VECTORS["get_request_normal_voltage"])
        response = decode_service_apdu(reply)
        assert isinstance(response, GetResponseNormal)
        assert isinstance(response.result, Data)
        assert isinstance(response.result.value, int)
        voltages.append(response.result.value)
    assert all(abs(a - b) <= 31 for a, b in itertools.pairwise(voltages))
    assert meter.energy_wh >= before


async def test_serves_a_stream_with_heartbeat_pushes_and_unwrapped_replies() -> None:
    meter = Em114070Meter("311501114070", unwrapped_probability=1.0)
    assert not await meter.push_event()
    async with LoopbackPair() as pair:
        task = asyncio.create_task(meter.serve(pair.meter))
        decoder = WrapperDecoder()
        decoder.feed(await pair.gateway.read())
        assert decoder.next_event().meter_address == "311501114070"  # type: ignore[union-attr]
        await pair.gateway.write(
            encode_wrapped(VECTORS["aarq_ln_no_auth"], source=1, destination=1)
        )
        assert await pair.gateway.read() == VECTORS["aare_accepted_ln"]  # bare
        meter.unwrapped_probability = 0.0
        assert await meter.push_event(with_time=False)
        assert await meter.push_data(with_time=True)
        data = b""
        while len(data) < 2 * 8 + 16:
            data += await pair.gateway.read()
        decoder.feed(data)
        events = []
        while (event := decoder.next_event()) is not NEED_DATA:
            events.append(event)
        assert [e.apdu[0] for e in events if isinstance(e, WrappedPacket)][:1] == [0xC2]
        pair.close()
        await task
    assert meter.sent[0] == VECTORS["aare_accepted_ln"]
    assert meter.received == [VECTORS["aarq_ln_no_auth"]]
    assert Data(DataType.NULL_DATA).tag == 0
