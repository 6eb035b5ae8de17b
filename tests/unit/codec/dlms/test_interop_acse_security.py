"""Interop of our ACSE and security codecs with the Gurux and dlms-cosem oracles (dev-only).

Both directions: what we encode, they decode; what they produce, we decode. dlms-cosem drops
the top conformance byte (ECOSYSTEM §5), so conformance is compared on the lower 16 bits there.
"""

from __future__ import annotations

import contextlib
import io
import re

import pytest
from dlms_cosem import security as cosem_security
from dlms_cosem.protocol.acse import ApplicationAssociationRequest, ApplicationAssociationResponse
from gurux_dlms import GXByteBuffer, GXDLMSClient, GXDLMSTranslator
from gurux_dlms.enums import Authentication, InterfaceType, Security
from gurux_dlms.enums.TranslatorOutputType import TranslatorOutputType
from gurux_dlms.objects import GXDLMSRegister
from gurux_dlms.secure import GXDLMSSecureClient

from ivy_gateway.codec.dlms.apdu.acse import (
    Aare,
    AcseServiceUserDiagnostic,
    ApplicationContext,
    AssociationResult,
    Mechanism,
    build_aarq,
    decode_aarq,
    encode_aare,
    encode_aarq,
)
from ivy_gateway.codec.dlms.apdu.initiate import (
    Conformance,
    InitiateRequest,
    InitiateResponse,
    decode_initiate_request,
    encode_initiate_request,
)
from ivy_gateway.codec.dlms.security import (
    AUTHENTICATED_ONLY,
    CipheredApdu,
    SecurityContext,
    SecurityKeys,
    compute_hls_gmac,
    decipher_apdu,
    decode_ciphered_apdu,
    encipher_apdu,
)

EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
CLIENT = bytes.fromhex("4D4D4D0000000001")
SERVER = bytes.fromhex("4D4D4D0000BC614E")
GET_REQUEST = bytes.fromhex("C001C100030100010800FF0200")  # what gurux's client.read() sends
GET_RESPONSE = bytes.fromhex("C401C100090C07EA011E05042213008000FF")
WRAPPER_SIZE = 8
FULL_CONFORMANCE = (
    Conformance.GENERAL_PROTECTION
    | Conformance.GENERAL_BLOCK_TRANSFER
    | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ
    | Conformance.MULTIPLE_REFERENCES
    | Conformance.GET
    | Conformance.SET
    | Conformance.SELECTIVE_ACCESS
    | Conformance.ACTION
)


def _translate(pdu: bytes, *, keys: bool = False) -> str:
    translator = GXDLMSTranslator(TranslatorOutputType.SIMPLE_XML)
    if keys:
        translator.comments = True  # the deciphered content is shown as a comment
        translator.security = Security.AUTHENTICATION_ENCRYPTION
        translator.blockCipherKey = EK
        translator.authenticationKey = AK
        translator.systemTitle = CLIENT
        translator.serverSystemTitle = SERVER
    with contextlib.redirect_stdout(io.StringIO()):  # it prints "Encryption is applied."
        xml: str = translator.pduToXml(GXByteBuffer(pdu))
    return xml


def _frames(frames: list[bytes]) -> bytes:
    assert len(frames) == 1
    wrapped = bytes(frames[0])
    assert int.from_bytes(wrapped[6:8], "big") == len(wrapped) - WRAPPER_SIZE
    return wrapped[WRAPPER_SIZE:]


def _gurux_conformance(value: int) -> Conformance:
    # Gurux numbers conformance bits from the other end (its bit 0 is the standard's bit 23).
    return Conformance(int(f"{int(value):024b}"[::-1], 2))


def _secure_client(invocation_counter: int) -> GXDLMSSecureClient:
    client = GXDLMSSecureClient(True, 16, 1, Authentication.HIGH_GMAC, None, InterfaceType.WRAPPER)
    client.ciphering.security = Security.AUTHENTICATION_ENCRYPTION
    client.ciphering.systemTitle = CLIENT
    client.ciphering.blockCipherKey = EK
    client.ciphering.authenticationKey = AK
    client.ciphering.invocationCounter = invocation_counter
    return client


# --- our AARQ/AARE, their decoders ------------------------------------------------------------


def test_our_lls_aarq_is_decoded_by_gurux_and_dlms_cosem() -> None:
    aarq = build_aarq(
        InitiateRequest(FULL_CONFORMANCE, 1024),
        mechanism=Mechanism.LLS,
        authentication_value=b"secret12",
    )
    wire = encode_aarq(aarq)
    xml = _translate(wire)
    assert '<ApplicationContextName Value="LN" />' in xml
    assert '<MechanismName Value="Low" />' in xml
    assert f'<CallingAuthentication Value="{b"secret12".hex().upper()}" />' in xml
    assert '<ProposedMaxPduSize Value="0400" />' in xml
    bits = set(re.findall(r'<ConformanceBit Name="(\w+)" />', xml))
    assert bits == {
        "GeneralProtection",
        "GeneralBlockTransfer",
        "BlockTransferWithGetOrRead",
        "MultipleReferences",
        "Get",
        "Set",
        "SelectiveAccess",
        "Action",
    }
    theirs = ApplicationAssociationRequest.from_bytes(wire)
    assert theirs.authentication.value == Mechanism.LLS
    assert bytes(theirs.authentication_value) == b"secret12"
    initiate = theirs.user_information.content
    assert initiate.client_max_receive_pdu_size == 1024
    # dlms-cosem keeps only the lower 16 conformance bits (ECOSYSTEM §5).
    assert initiate.proposed_conformance.to_bytes()[-2:] == int(FULL_CONFORMANCE).to_bytes(3)[-2:]
    assert initiate.proposed_conformance.get
    assert initiate.proposed_conformance.action


def test_our_ciphered_hls_gmac_aarq_is_decoded_and_deciphered_by_the_oracles() -> None:
    client = SecurityContext(SecurityKeys(ek=EK, ak=AK), system_title=CLIENT, invocation_counter=9)
    initiate = InitiateRequest(Conformance(0x001E1D), 1200, dedicated_key=bytes(range(16)))
    aarq = build_aarq(
        decode_ciphered_apdu(client.encipher(encode_initiate_request(initiate))),
        application_context=ApplicationContext.LN_CIPHER,
        mechanism=Mechanism.HLS_GMAC,
        authentication_value=b"K56iVagY",
        calling_ap_title=CLIENT,
    )
    wire = encode_aarq(aarq)
    xml = _translate(wire, keys=True)
    assert '<ApplicationContextName Value="LN_WITH_CIPHERING" />' in xml
    assert f'<CallingAPTitle Value="{CLIENT.hex().upper()}" />' in xml
    assert '<MechanismName Value="HighGmac" />' in xml
    assert "Invocation Counter: 9" in xml
    assert f'<DedicatedKey Value="{bytes(range(16)).hex().upper()}" />' in xml
    assert '<ProposedMaxPduSize Value="04B0" />' in xml
    theirs = ApplicationAssociationRequest.from_bytes(wire)
    assert theirs.ciphered
    assert theirs.system_title == CLIENT
    ciphered = theirs.user_information.content
    plain = cosem_security.decrypt(
        ciphered.security_control,
        CLIENT,
        ciphered.invocation_counter,
        EK,
        ciphered.ciphered_text,
        AK,
    )
    assert decode_initiate_request(plain) == initiate


def test_our_aare_is_decoded_by_dlms_cosem() -> None:
    aare = Aare(
        ApplicationContext.LN,
        AssociationResult.ACCEPTED,
        AcseServiceUserDiagnostic.AUTHENTICATION_REQUIRED,
        responding_ap_title=SERVER,
        authentication_required=True,
        mechanism=Mechanism.HLS_GMAC,
        responding_authentication_value=b"P6wRJ21F",
        user_information=InitiateResponse(Conformance(0x00101D), 512),
    )
    theirs = ApplicationAssociationResponse.from_bytes(encode_aare(aare))
    assert theirs.result.value == 0
    assert theirs.result_source_diagnostics.value == 14
    assert theirs.system_title == SERVER
    assert theirs.authentication_value == b"P6wRJ21F"
    assert theirs.user_information.content.server_max_receive_pdu_size == 512


# --- their AARQs, our decoder ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authentication", "password", "mechanism"),
    [
        (Authentication.NONE, None, None),
        (Authentication.LOW, "00000000", Mechanism.LLS),
        (Authentication.HIGH, "Gurux", Mechanism.HLS),
    ],
)
def test_gurux_client_aarqs_are_decoded(
    authentication: Authentication, password: str | None, mechanism: Mechanism | None
) -> None:
    client = GXDLMSClient(True, 16, 1, authentication, password, InterfaceType.WRAPPER)
    aarq = decode_aarq(_frames(client.aarqRequest()))
    assert aarq.application_context is ApplicationContext.LN
    assert aarq.mechanism is mechanism
    assert aarq.authentication_required is (mechanism is not None)
    if mechanism is Mechanism.LLS:
        assert aarq.calling_authentication_value == b"00000000"
    if mechanism is Mechanism.HLS:  # the value is the client's random challenge
        assert aarq.calling_authentication_value is not None
        assert 8 <= len(aarq.calling_authentication_value) <= 64
    initiate = aarq.user_information
    assert isinstance(initiate, InitiateRequest)
    # Gurux proposes general-protection (the top byte dlms-cosem loses): 00 40 1E 5D.
    assert initiate.conformance == _gurux_conformance(client.proposedConformance)
    assert initiate.conformance == Conformance(0x401E5D)
    assert initiate.max_receive_pdu_size == client.maxReceivePDUSize


def test_gurux_secure_client_aarq_and_get_request_are_deciphered() -> None:
    client = _secure_client(invocation_counter=41)
    aarq = decode_aarq(_frames(client.aarqRequest()))
    assert aarq.application_context is ApplicationContext.LN_CIPHER
    assert aarq.calling_ap_title == CLIENT
    assert aarq.mechanism is Mechanism.HLS_GMAC
    assert aarq.calling_authentication_value is not None
    assert 8 <= len(aarq.calling_authentication_value) <= 64
    ciphered = aarq.user_information
    assert isinstance(ciphered, CipheredApdu)
    assert ciphered.invocation_counter == 41
    server = SecurityContext(SecurityKeys(ek=EK, ak=AK), system_title=SERVER)
    server.peer_system_title = aarq.calling_ap_title
    request = decode_initiate_request(server.decipher(ciphered))
    assert request.conformance == _gurux_conformance(client.proposedConformance)
    get = _frames(client.read(GXDLMSRegister("1.0.1.8.0.255"), 2))
    assert get[0] == 0xC8
    assert server.decipher(get) == GET_REQUEST  # and its counter is above the AARQ's


def test_gurux_hls_gmac_password_matches_ours() -> None:
    client = _secure_client(invocation_counter=0x01234567)
    theirs = bytes(client.ciphering.generateGmacPassword(b"P6wRJ21F"))
    ours = compute_hls_gmac(
        b"P6wRJ21F", ek=EK, ak=AK, system_title=CLIENT, invocation_counter=0x01234567
    )
    assert ours == theirs


# --- ciphered APDUs with dlms-cosem ------------------------------------------------------------


def test_dlms_cosem_ciphered_apdus_are_deciphered_by_us() -> None:
    sc = cosem_security.SecurityControlField(0, authenticated=True, encrypted=True)
    body = cosem_security.encrypt(sc, SERVER, 77, EK, GET_RESPONSE, AK)
    content = sc.to_bytes() + (77).to_bytes(4, "big") + body
    glo = bytes((0xCC, len(content))) + content
    general = bytes((0xDB, 8)) + SERVER + bytes((len(content),)) + content
    assert decipher_apdu(glo, key=EK, ak=AK, system_title=SERVER) == GET_RESPONSE
    assert decipher_apdu(general, key=EK, ak=AK) == GET_RESPONSE


def test_dlms_cosem_deciphers_ours_and_agrees_on_gmac() -> None:
    for general in (False, True):
        wire = encipher_apdu(
            GET_REQUEST, key=EK, ak=AK, system_title=CLIENT, invocation_counter=123, general=general
        )
        parsed = decode_ciphered_apdu(wire)
        sc = cosem_security.SecurityControlField.from_bytes(bytes((0x30,)))
        plain = cosem_security.decrypt(
            sc, CLIENT, parsed.invocation_counter, EK, parsed.information + parsed.auth_tag, AK
        )
        assert plain == GET_REQUEST
    auth_only = cosem_security.SecurityControlField.from_bytes(
        bytes((AUTHENTICATED_ONLY.to_byte(),))
    )
    theirs = cosem_security.gmac(auth_only, SERVER, 5, EK, AK, b"K56iVagY")
    assert compute_hls_gmac(b"K56iVagY", ek=EK, ak=AK, system_title=SERVER, invocation_counter=5)[
        5:
    ] == bytes(theirs)


def test_gurux_translator_deciphers_ours() -> None:
    wire = encipher_apdu(GET_REQUEST, key=EK, ak=AK, system_title=CLIENT, invocation_counter=3)
    xml = _translate(wire, keys=True)
    assert "Decrypt data: C0 01 C1 00 03 01 00 01 08 00 FF 02 00" in xml
    assert '<InstanceId Value="0100010800FF" />' in xml
