"""APDU decode throughput through the client ``Association``: ours vs dlms-cosem and gurux-dlms.

Every contender turns the same bytes into the decoded value:

* plain GET.response ``C401C1000600005C54``: ours = ``Association.receive`` (tag dispatch,
  decode, invoke-id match, event) timed alone, the requests being sent untimed; also the
  pair ``send_get`` + ``receive`` and ``decode_service_apdu`` alone. dlms-cosem:
  ``GetResponseFactory.from_bytes`` + ``parse_as_dlms_data``; gurux: ``GXDLMSClient.getData``
  on a PDU-only client. (Our client cycles its invoke-ids, so it gets the same APDU with
  the matching id byte.)
* ciphered glo-get-response (vector ``ciphered_glo_get_response_auth_enc``, SC 30): ours =
  ``send_get`` + ``Association.receive`` on a stream of fresh APDUs with rising counters
  (the replay guard refuses repeats) — so ours also enciphers a GET.request per round;
  dlms-cosem: ``security.decrypt`` + the decode above; gurux:
  ``GXDLMSChippering.decryptAesGcm`` + ``getData``.

Target: ≥ 5× the faster oracle on plain APDUs.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable

from harness import Row, rate
from ivy_gateway.codec.dlms import Obis, decode_service_apdu
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

PLAIN = bytes.fromhex("C401C1000600005C54")
EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
CLIENT = bytes.fromhex("4D4D4D0000000001")
SERVER = bytes.fromhex("4D4D4D0000BC614E")
CIPHERED = bytes.fromhex(
    "CC233000000043A22499810AAA90B0E60CE0329AE124627256BAC96FFE17649BB3C03AD598"
)
CIPHERED_PLAIN = bytes.fromhex("C401C100090C07EA011E05042213008000FF")
CLOCK = Obis(0, 0, 1, 0, 0, 255)
VOLTAGE = Obis(1, 0, 12, 7, 0, 255)
_STREAM = 20_000
_INFO = InitiateResponse(Conformance(0x001E1D), 1024)


def _by_invoke_id(apdu: bytes) -> tuple[bytes, ...]:
    """``apdu`` with each of the 16 invoke-ids (byte 2), for a client that cycles them."""
    return tuple(apdu[:2] + bytes((0xC0 | i,)) + apdu[3:] for i in range(16))


def _plain_association() -> Callable[[], object]:
    association = Association()
    association.send_aarq()
    accepted = AssociationResult.ACCEPTED
    association.receive(encode_aare(Aare(ApplicationContext.LN, accepted, user_information=_INFO)))
    responses = _by_invoke_id(PLAIN)

    def run() -> object:
        association.send_get(3, VOLTAGE, 2)
        event = association.receive(responses[association.last_invoke_id or 0])
        assert isinstance(event, GetCompleted)
        return event.result

    return run


def _receive_only_rate(min_time_s: float = 1.0) -> float:
    """``Association.receive`` alone: 16 GETs are sent untimed, their 16 answers timed."""
    association = Association()
    association.send_aarq()
    accepted = AssociationResult.ACCEPTED
    association.receive(encode_aare(Aare(ApplicationContext.LN, accepted, user_information=_INFO)))
    responses = _by_invoke_id(PLAIN)
    receive = association.receive
    best = 0.0
    for _ in range(3):
        spent, count = 0.0, 0
        while spent < min_time_s:
            order = []
            for _ in range(16):
                association.send_get(3, VOLTAGE, 2)
                order.append(responses[association.last_invoke_id or 0])
            start = time.perf_counter()
            for apdu in order:
                receive(apdu)
            spent += time.perf_counter() - start
            count += 16
        best = max(best, count / spent)
    return best


class _CipheredAssociation:
    """Deciphers pre-made glo-get-responses with rising counters; a new association per lap."""

    def __init__(self) -> None:
        self._apdus: list[bytes] = []
        self._index = _STREAM

    def _new_lap(self) -> None:
        server = SecurityContext(SecurityKeys(EK, AK), system_title=SERVER)
        security = SecurityContext(SecurityKeys(EK, AK), system_title=CLIENT)
        self._association = Association(security=security)
        self._association.send_aarq()
        sealed = server.encipher(encode_initiate_response(_INFO))
        aare = Aare(
            ApplicationContext.LN_CIPHER,
            AssociationResult.ACCEPTED,
            AcseServiceUserDiagnostic.NULL,
            responding_ap_title=SERVER,
            user_information=decode_ciphered_apdu(sealed),
        )
        self._association.receive(encode_aare(aare))
        # the client allocates invoke-ids 1, 2, ... 15, 0, 1, ...: answer each in turn
        plain = _by_invoke_id(CIPHERED_PLAIN)
        self._apdus = [server.encipher(plain[(i + 1) % 16]) for i in range(_STREAM)]
        self._index = 0

    def __call__(self) -> object:
        if self._index == _STREAM:
            self._new_lap()
        self._association.send_get(8, CLOCK, 2)
        apdu = self._apdus[self._index]
        self._index += 1
        return self._association.receive(apdu)


def _gurux_decode() -> Callable[[bytes], object]:
    from gurux_dlms import GXByteBuffer, GXDLMSClient, GXReplyData
    from gurux_dlms.enums import InterfaceType

    client = GXDLMSClient(True, 16, 1)
    client.interfaceType = InterfaceType.PDU

    def decode(apdu: bytes) -> object:
        reply = GXReplyData()
        client.getData(GXByteBuffer(apdu), reply)
        return reply.value

    return decode


def _cosem_decode(apdu: bytes) -> object:
    from dlms_cosem.protocol.xdlms.get import GetResponseFactory
    from dlms_cosem.utils import parse_as_dlms_data

    return parse_as_dlms_data(GetResponseFactory.from_bytes(apdu).data)


def _cosem_ciphered() -> object:
    from dlms_cosem import security

    sc = security.SecurityControlField.from_bytes(CIPHERED[2:3])
    counter = int.from_bytes(CIPHERED[3:7], "big")
    return _cosem_decode(security.decrypt(sc, SERVER, counter, EK, CIPHERED[7:], AK))


def _gurux_ciphered() -> Callable[[], object]:
    from gurux_dlms import GXByteBuffer
    from gurux_dlms.AesGcmParameter import AesGcmParameter
    from gurux_dlms.GXDLMSChippering import GXDLMSChippering
    from gurux_dlms.GXDLMSSettings import GXDLMSSettings

    settings = GXDLMSSettings(False, None)
    decode = _gurux_decode()

    def run() -> object:
        parameter = AesGcmParameter(0, SERVER, EK, AK)
        parameter.settings = settings
        plain = GXDLMSChippering.decryptAesGcm(settings, parameter, GXByteBuffer(CIPHERED))
        return decode(bytes(plain))

    return run


def results() -> list[Row]:
    rows: list[Row] = []
    gurux_decode = _gurux_decode()
    area = "dlms apdu: GET.response C401C1000600005C54"
    ours = _receive_only_rate()
    pair = rate(_plain_association())
    bare = rate(lambda: decode_service_apdu(PLAIN))
    gurux = rate(lambda: gurux_decode(PLAIN))
    cosem = rate(lambda: _cosem_decode(PLAIN))
    best = max(gurux, cosem)
    verdict = "ok" if ours >= 5 * best else "BELOW TARGET"
    rows += [
        Row(area, "ivy Association.receive", ours, "APDUs/s", "≥5× oracles"),
        Row(area, "ivy send_get + receive", pair, "APDUs/s", note="request encoded too"),
        Row(area, "ivy decode_service_apdu", bare, "APDUs/s"),
        Row(area, "gurux-dlms getData", gurux, "APDUs/s"),
        Row(area, "dlms-cosem from_bytes+parse", cosem, "APDUs/s"),
        Row(area, "ivy association / faster oracle", ours / best, "×", "≥5", verdict),
    ]
    area = "dlms apdu: glo-get-response (SC 30) decipher+decode"
    ciphered = _CipheredAssociation()
    gurux_ciphered = _gurux_ciphered()
    with open(os.devnull, "w", encoding="utf-8") as sink, contextlib.redirect_stdout(sink):
        event = ciphered()
        assert isinstance(event, GetCompleted)
        ours = rate(ciphered)
        cosem = rate(_cosem_ciphered)
        gurux = rate(gurux_ciphered, min_time_s=0.3, repeat=2)
    best = max(gurux, cosem)
    rows += [
        Row(area, "ivy Association.receive", ours, "APDUs/s", "≥ oracles"),
        Row(area, "dlms-cosem decrypt+decode", cosem, "APDUs/s"),
        Row(area, "gurux-dlms decryptAesGcm+getData", gurux, "APDUs/s"),
        Row(area, "ivy association / faster oracle", ours / best, "×"),
    ]
    return rows
