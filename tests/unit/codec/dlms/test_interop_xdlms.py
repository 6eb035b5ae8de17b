"""Interop of the association's service APDUs with the Gurux and dlms-cosem oracles.

What our ``Association`` sends decodes in both oracles; GET responses that Gurux encodes
(``GXDLMSTranslator.xmlToPdu``) and a glo-get-response that ``dlms_cosem.security.encrypt``
ciphers are decoded by our ``Association``. (dlms-cosem's ``GetResponseNormal.to_bytes``
is broken, ECOSYSTEM §5, so responses come from Gurux.)
"""

from __future__ import annotations

import contextlib
import io

import pytest
from dlms_cosem import security as cosem_security
from dlms_cosem.protocol.xdlms import ActionRequestFactory, GetRequestFactory, SetRequestFactory
from gurux_dlms import GXByteBuffer, GXDLMSTranslator
from gurux_dlms.enums.TranslatorOutputType import TranslatorOutputType

from ivy_gateway.codec.dlms import Data, DataType, Obis
from ivy_gateway.codec.dlms.apdu.acse import (
    Aare,
    AcseServiceUserDiagnostic,
    ApplicationContext,
    AssociationResult,
    encode_aare,
)
from ivy_gateway.codec.dlms.apdu.initiate import (
    Conformance,
    InitiateResponse,
    encode_initiate_response,
)
from ivy_gateway.codec.dlms.association import Association
from ivy_gateway.codec.dlms.association_events import GetCompleted
from ivy_gateway.codec.dlms.security import SecurityContext, SecurityKeys, decode_ciphered_apdu

EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
CLIENT = bytes.fromhex("4D4D4D0000000001")
SERVER = bytes.fromhex("4D4D4D0000BC614E")
VOLTAGE = Obis(1, 0, 12, 7, 0, 255)
CLOCK = Obis(0, 0, 1, 0, 0, 255)
DISCONNECT = Obis(0, 0, 96, 3, 10, 255)
STAMP = bytes.fromhex("07EA011E05042213008000FF")


def _translator() -> GXDLMSTranslator:
    return GXDLMSTranslator(TranslatorOutputType.SIMPLE_XML)


def _to_xml(pdu: bytes) -> str:
    with contextlib.redirect_stdout(io.StringIO()):
        xml: str = _translator().pduToXml(GXByteBuffer(pdu))
    return xml


def _gurux_encode(xml: str) -> bytes:
    buffer = _translator().xmlToPdu(xml)  # a GXByteBuffer: only its first ``size`` bytes count
    return bytes(buffer.array()[: buffer.size])


def _associated() -> Association:
    association = Association()
    association.send_aarq()
    info = InitiateResponse(Conformance(0x001E1D), 1024)
    association.receive(
        encode_aare(Aare(ApplicationContext.LN, AssociationResult.ACCEPTED, user_information=info))
    )
    return association


def test_get_request_decodes_in_both_oracles() -> None:
    apdu = _associated().send_get(3, VOLTAGE, 2)
    xml = _to_xml(apdu)
    assert "<GetRequestNormal>" in xml
    assert 'InstanceId Value="01000C0700FF"' in xml
    decoded = GetRequestFactory.from_bytes(apdu)
    assert decoded.cosem_attribute.instance.to_bytes() == VOLTAGE.to_bytes()
    assert decoded.cosem_attribute.attribute == 2
    assert decoded.invoke_id_and_priority.invoke_id == 1
    assert decoded.to_bytes() == apdu


def test_get_with_list_decodes_in_both_oracles() -> None:
    apdu = _associated().send_get_with_list([(3, VOLTAGE, 2), (3, VOLTAGE, 3)])
    assert 'AttributeDescriptorList Qty="02"' in _to_xml(apdu)
    decoded = GetRequestFactory.from_bytes(apdu)
    attributes = [item.attribute.attribute for item in decoded.cosem_attributes_with_selection]
    assert attributes == [2, 3]


def test_set_request_decodes_in_both_oracles() -> None:
    apdu = _associated().send_set(8, CLOCK, 2, Data(DataType.OCTET_STRING, STAMP))
    assert f'OctetString Value="{STAMP.hex().upper()}"' in _to_xml(apdu)
    decoded = SetRequestFactory.from_bytes(apdu)
    assert decoded.cosem_attribute.attribute == 2
    assert bytes(decoded.data) == b"\x09\x0c" + STAMP


@pytest.mark.parametrize(("method", "invoke_id"), [(1, 1), (2, 1)])
def test_action_request_decodes_in_both_oracles(method: int, invoke_id: int) -> None:
    apdu = _associated().send_action(70, DISCONNECT, method, Data(DataType.INTEGER, 0))
    xml = _to_xml(apdu)
    assert f'MethodId Value="{method:02X}"' in xml
    assert '<Int8 Value="00" />' in xml
    decoded = ActionRequestFactory.from_bytes(apdu)
    assert decoded.cosem_method.method == method
    assert bytes(decoded.data) == b"\x0f\x00"
    assert decoded.invoke_id_and_priority.invoke_id == invoke_id


@pytest.mark.parametrize(
    ("xml_value", "expected"),
    [
        ('<UInt32 Value="00005C54" />', Data(DataType.DOUBLE_LONG_UNSIGNED, 23636)),
        ('<Int32 Value="FFFFFA24" />', Data(DataType.DOUBLE_LONG, -1500)),
        ('<Boolean Value="01" />', Data(DataType.BOOLEAN, True)),
        (f'<OctetString Value="{STAMP.hex().upper()}" />', Data(DataType.OCTET_STRING, STAMP)),
        (
            '<Structure Qty="02" ><Int8 Value="FE" /><Enum Value="23" /></Structure>',
            Data(DataType.STRUCTURE, (Data(DataType.INTEGER, -2), Data(DataType.ENUM, 35))),
        ),
    ],
)
def test_gurux_get_responses_decode_in_our_association(xml_value: str, expected: Data) -> None:
    association = _associated()
    association.send_get(3, VOLTAGE, 2)
    xml = (
        '<GetResponse><GetResponseNormal><InvokeIdAndPriority Value="C1" />'
        f"<Result><Data>{xml_value}</Data></Result></GetResponseNormal></GetResponse>"
    )
    assert association.receive(_gurux_encode(xml)) == GetCompleted(1, expected)


def test_dlms_cosem_ciphered_get_response_is_deciphered_by_our_association() -> None:
    security = SecurityContext(SecurityKeys(EK, AK), system_title=CLIENT)
    association = Association(security=security)
    association.send_aarq()
    server = SecurityContext(SecurityKeys(EK, AK), system_title=SERVER)
    plain_info = encode_initiate_response(InitiateResponse(Conformance(0x001E1D), 1024))
    association.receive(
        encode_aare(
            Aare(
                ApplicationContext.LN_CIPHER,
                AssociationResult.ACCEPTED,
                AcseServiceUserDiagnostic.NULL,
                responding_ap_title=SERVER,
                user_information=decode_ciphered_apdu(server.encipher(plain_info)),
            )
        )
    )
    association.send_get(8, CLOCK, 2)
    plain = bytes.fromhex("C401C100090C") + STAMP
    control = cosem_security.SecurityControlField(
        security_suite=0, authenticated=True, encrypted=True
    )
    counter = 0x1000
    ciphered = cosem_security.encrypt(control, SERVER, counter, EK, plain, AK)
    content = bytes((control.to_bytes()[0],)) + counter.to_bytes(4, "big") + ciphered
    apdu = bytes((0xCC, len(content))) + content
    assert association.receive(apdu) == GetCompleted(1, Data(DataType.OCTET_STRING, STAMP))
