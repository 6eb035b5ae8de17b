"""The ciphered three-phase DLMS simulator: HLS-GMAC, glo-ciphering, lists, blocks, relay."""

from __future__ import annotations

import pytest

from ivy_gateway.codec.dlms import Data, DataAccessResult, DataType, Obis
from ivy_gateway.codec.dlms.apdu.acse import AcseServiceUserDiagnostic, Mechanism, decode_aare
from ivy_gateway.codec.dlms.apdu.initiate import Conformance
from ivy_gateway.codec.dlms.association import Association
from ivy_gateway.codec.dlms.association_events import (
    ActionCompleted,
    Associated,
    AssociationRejected,
    AuthenticationFailed,
    AuthenticationRequired,
    BlockReceived,
    GetCompleted,
    GetListCompleted,
)
from ivy_gateway.codec.dlms.security import SecurityContext, SecurityKeys
from ivy_gateway.simulators.dlms_meter import DISCONNECT_CONTROL_OBIS, LOAD_PROFILE_OBIS, DlmsMeter

EK = bytes(range(16))
AK = bytes(range(16, 32))
CLIENT = b"CLIENT01"
VOLTAGE_L1 = Obis(1, 0, 32, 7, 0, 255)


def _client(ek: bytes = EK) -> Association:
    security = SecurityContext(SecurityKeys(ek, AK), system_title=CLIENT)
    return Association(security=security, mechanism=Mechanism.HLS_GMAC)


def _exchange(meter: DlmsMeter, association: Association, apdu: bytes) -> object:
    [reply] = meter.answer(apdu)
    return association.receive(reply)


def _associated(meter: DlmsMeter) -> Association:
    client = _client()
    event = _exchange(meter, client, client.send_aarq(b"challenge!"))
    assert isinstance(event, AuthenticationRequired)
    assert isinstance(_exchange(meter, client, client.send_hls_reply()), Associated)
    return client


def test_hls_gmac_association_and_ciphered_get() -> None:
    meter = DlmsMeter(keys=SecurityKeys(EK, AK))
    client = _associated(meter)
    request = client.send_get(3, VOLTAGE_L1, 2)
    assert request[0] == 0xC8
    [reply] = meter.answer(request)
    assert reply[0] == 0xCC
    event = client.receive(reply)
    assert isinstance(event, GetCompleted)
    assert meter.plain_sent[-1][:2] == b"\xc4\x01"


def test_wrong_keys_are_refused_in_the_aare() -> None:
    meter = DlmsMeter(keys=SecurityKeys(EK, AK))
    client = _client(bytes(16))
    [reply] = meter.answer(client.send_aarq(b"challenge!"))
    assert decode_aare(reply).diagnostic is AcseServiceUserDiagnostic.AUTHENTICATION_FAILURE


def test_wrong_f_stoc_is_denied() -> None:
    meter = DlmsMeter(keys=SecurityKeys(EK, AK))
    client = _client()
    _exchange(meter, client, client.send_aarq(b"challenge!"))
    assert meter._hls is not None
    meter._hls = (b"another StoC....", meter._hls[1])
    assert isinstance(_exchange(meter, client, client.send_hls_reply()), AuthenticationFailed)


@pytest.mark.parametrize("plain", [True, False])
def test_unauthenticated_or_plain_services_are_refused(plain: bool) -> None:
    meter = DlmsMeter(keys=SecurityKeys(EK, AK))
    client = _associated(meter)
    request = client.send_get(3, VOLTAGE_L1, 2)
    if plain:
        request = bytes.fromhex("C001C1000301002007 00FF0200".replace(" ", ""))
        assert meter.answer(request) == [bytes.fromhex("D80102")]
    else:
        assert meter.answer(request[:-1] + bytes((request[-1] ^ 1,))) == [bytes.fromhex("D80105")]


def test_other_contexts_are_rejected() -> None:
    meter = DlmsMeter(keys=SecurityKeys(EK, AK))
    [reply] = meter.answer(Association().send_aarq())
    assert not decode_aare(reply).accepted
    plain_meter = DlmsMeter()
    [reply] = plain_meter.answer(_client().send_aarq(b"challenge!"))
    assert not decode_aare(reply).accepted


def test_plain_meter_lists_blocks_and_relay() -> None:
    meter = DlmsMeter(profile_entries=40, max_pdu_size=256)
    client = Association()
    event = _exchange(meter, client, client.send_aarq())
    assert isinstance(event, Associated)
    assert event.conformance & Conformance.MULTIPLE_REFERENCES
    listed = _exchange(
        meter, client, client.send_get_with_list([(3, VOLTAGE_L1, 2), (3, VOLTAGE_L1, 3)])
    )
    assert isinstance(listed, GetListCompleted)
    assert listed.results[1] == Data(
        DataType.STRUCTURE, (Data(DataType.INTEGER, -1), Data(DataType.ENUM, 35))
    )
    event = _exchange(meter, client, client.send_get(7, LOAD_PROFILE_OBIS, 2))
    blocks = 0
    while isinstance(event, BlockReceived):
        blocks += 1
        event = _exchange(meter, client, event.reply)
    assert blocks >= 2
    assert isinstance(event, GetCompleted)
    assert isinstance(event.result, Data)
    assert len(event.result.value) == 40  # type: ignore[arg-type]
    action = client.send_action(70, DISCONNECT_CONTROL_OBIS, 1, Data(DataType.INTEGER, 0))
    assert isinstance(_exchange(meter, client, action), ActionCompleted)
    assert not meter.relay_closed
    stray_next = bytes.fromhex("C002C900000005")
    assert meter.answer(stray_next) == [bytes.fromhex("C401C90110")]
    assert meter.answer(bytes.fromhex("6203800100")) == [bytes.fromhex("6303800100")]
    assert isinstance(DataAccessResult.NO_LONG_GET_IN_PROGRESS, int)


def test_rejected_aare_for_garbage() -> None:
    [reply] = DlmsMeter().answer(bytes.fromhex("6003A10100"))
    event = Association()
    event.send_aarq()
    assert isinstance(event.receive(reply), AssociationRejected)
