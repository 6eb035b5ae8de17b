"""ACSE APDUs (AARQ, AARE, RLRQ, RLRE) and the xDLMS InitiateRequest/InitiateResponse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivy_gateway.codec.dlms.apdu.acse import (
    Aare,
    Aarq,
    AcseServiceProviderDiagnostic,
    AcseServiceUserDiagnostic,
    ApplicationContext,
    AssociationResult,
    Mechanism,
    build_aarq,
    decode_aare,
    decode_aarq,
    decode_acse_apdu,
    encode_aare,
    encode_aarq,
)
from ivy_gateway.codec.dlms.apdu.exception import ConfirmedServiceError
from ivy_gateway.codec.dlms.apdu.initiate import (
    SN_VAA_NAME,
    Conformance,
    InitiateRequest,
    InitiateResponse,
    decode_initiate_request,
    decode_initiate_response,
    encode_initiate_request,
    encode_initiate_response,
)
from ivy_gateway.codec.dlms.apdu.release import (
    ReleaseRequestReason,
    ReleaseResponseReason,
    Rlre,
    Rlrq,
    decode_rlre,
    decode_rlrq,
    encode_rlre,
    encode_rlrq,
)
from ivy_gateway.codec.dlms.enums import (
    ConfirmedServiceErrorService,
    InitiateError,
    ServiceErrorKind,
)
from ivy_gateway.codec.dlms.security import (
    CipheredApdu,
    SecurityContext,
    SecurityKeys,
    decipher_apdu,
    decode_ciphered_apdu,
    encipher_apdu,
)
from ivy_gateway.codec.errors import DecodeError, EncodeError, TruncatedError

VECTORS = {
    v["name"]: v
    for v in json.loads(
        (Path(__file__).parents[3] / "vectors" / "dlms.json").read_text(encoding="utf-8")
    )["vectors"]
}
ACSE = sorted(n for n in VECTORS if n.split("_")[0] in {"aarq", "aare", "rlrq", "rlre"})
EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
CLIENT = bytes.fromhex("4D4D4D0000000001")
SERVER = bytes.fromhex("4D4D4D0000BC614E")
ENCODERS: dict[type, Any] = {
    Aarq: encode_aarq,
    Aare: encode_aare,
    Rlrq: encode_rlrq,
    Rlre: encode_rlre,
}


def _wire(name: str) -> bytes:
    return bytes.fromhex(VECTORS[name]["hex"])


def _encode(apdu: Aarq | Aare | Rlrq | Rlre) -> bytes:
    data: bytes = ENCODERS[type(apdu)](apdu)
    return data


# --- vectors both ways ------------------------------------------------------------------


@pytest.mark.parametrize("name", ACSE)
def test_vector_decodes_and_re_encodes_byte_exact(name: str) -> None:
    apdu = decode_acse_apdu(_wire(name))
    assert type(apdu).__name__.upper() == VECTORS[name]["decoded"]["apdu"]
    assert _encode(apdu) == _wire(name)


@pytest.mark.parametrize("name", ["aarq_ln_no_auth", "aarq_ln_lls_password", "aarq_sn_no_auth"])
def test_plain_aarq_vectors_are_rebuilt_from_their_fields(name: str) -> None:
    fields = VECTORS[name]["decoded"]
    mechanism = fields["mechanism"]
    aarq = build_aarq(
        InitiateRequest(
            conformance=Conformance(int(fields["conformance"], 16)),
            max_receive_pdu_size=fields["max_pdu"],
            dlms_version=fields["dlms_version"],
        ),
        application_context=ApplicationContext[fields["application_context"]],
        mechanism=None if mechanism is None else Mechanism(mechanism),
        authentication_value=bytes.fromhex(fields["auth_value"])
        if "auth_value" in fields
        else None,
    )
    assert encode_aarq(aarq) == _wire(name)
    assert decode_aarq(_wire(name)) == aarq


def test_ciphered_hls_gmac_aarq_is_rebuilt_from_its_fields() -> None:
    vector = VECTORS["aarq_ln_cipher_hls_gmac"]
    fields = vector["decoded"]
    client = SecurityContext(
        SecurityKeys(ek=EK, ak=AK),
        system_title=bytes.fromhex(fields["calling_ap_title"]),
        invocation_counter=fields["invocation_counter"],
    )
    plain = bytes.fromhex(fields["plaintext_user_information"])
    initiate = decode_ciphered_apdu(client.encipher(plain))
    aarq = build_aarq(
        initiate,
        application_context=ApplicationContext.LN_CIPHER,
        mechanism=Mechanism.HLS_GMAC,
        authentication_value=bytes.fromhex(fields["auth_value"]),
        calling_ap_title=client.system_title,
    )
    assert encode_aarq(aarq).hex().upper() == vector["hex"]
    # The server side: decode, decipher with the client's title, read the proposal.
    received = decode_aarq(_wire("aarq_ln_cipher_hls_gmac"))
    assert isinstance(received.user_information, CipheredApdu)
    assert received.calling_ap_title is not None
    request = decode_initiate_request(
        decipher_apdu(
            received.user_information, key=EK, ak=AK, system_title=received.calling_ap_title
        )
    )
    assert request.dedicated_key == bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    assert request.conformance == Conformance(0x001E1F)
    assert request.max_receive_pdu_size == 0x04B0


def test_accepted_aare_gives_negotiated_parameters() -> None:
    aare = decode_aare(_wire("aare_accepted_ln"))
    assert aare.accepted
    assert aare.diagnostic is AcseServiceUserDiagnostic.NULL
    response = aare.user_information
    assert isinstance(response, InitiateResponse)
    assert (
        response.conformance
        == Conformance.GET | Conformance.SET | Conformance.SELECTIVE_ACCESS | (Conformance.ACTION)
    )
    assert response.max_receive_pdu_size == 1024
    assert response.vaa_name == 7
    rebuilt = Aare(ApplicationContext.LN, AssociationResult.ACCEPTED, user_information=response)
    assert encode_aare(rebuilt) == _wire("aare_accepted_ln")


def test_hls_gmac_aare_gives_server_title_challenge_and_ciphered_response() -> None:
    vector = VECTORS["aare_accepted_hls_gmac_ciphered"]
    aare = decode_aare(_wire("aare_accepted_hls_gmac_ciphered"))
    assert aare.accepted
    assert aare.diagnostic is AcseServiceUserDiagnostic.AUTHENTICATION_REQUIRED
    assert aare.responding_ap_title == SERVER
    assert aare.mechanism is Mechanism.HLS_GMAC
    assert aare.authentication_required
    assert aare.responding_authentication_value == b"P6wRJ21F"
    assert isinstance(aare.user_information, CipheredApdu)
    plain = decipher_apdu(aare.user_information, key=EK, ak=AK, system_title=SERVER)
    assert plain.hex().upper() == vector["decoded"]["plaintext_user_information"]
    response = decode_initiate_response(plain)
    # Rebuild it from the fields, ciphering the response with the server's title.
    ciphered = encipher_apdu(
        encode_initiate_response(response),
        key=EK,
        ak=AK,
        system_title=SERVER,
        invocation_counter=aare.user_information.invocation_counter,
    )
    rebuilt = Aare(
        ApplicationContext.LN_CIPHER,
        AssociationResult.ACCEPTED,
        AcseServiceUserDiagnostic.AUTHENTICATION_REQUIRED,
        responding_ap_title=SERVER,
        authentication_required=True,
        mechanism=Mechanism.HLS_GMAC,
        responding_authentication_value=b"P6wRJ21F",
        user_information=decode_ciphered_apdu(ciphered),
    )
    assert encode_aare(rebuilt).hex().upper() == vector["hex"]


def test_rejected_aares_keep_reason_and_confirmed_service_error() -> None:
    rejected = decode_aare(_wire("aare_rejected_context_not_supported"))
    assert not rejected.accepted
    assert rejected.result is AssociationResult.REJECTED_PERMANENT
    assert rejected.diagnostic is AcseServiceUserDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED
    with_error = decode_aare(_wire("aare_rejected_with_confirmed_service_error"))
    assert with_error.user_information == ConfirmedServiceError(
        ConfirmedServiceErrorService.INITIATE_ERROR,
        ServiceErrorKind.INITIATE,
        InitiateError.DLMS_VERSION_TOO_LOW,
    )


def test_release_vectors() -> None:
    assert decode_rlrq(_wire("rlrq_normal")) == Rlrq()
    assert encode_rlrq(Rlrq(ReleaseRequestReason.NORMAL)) == _wire("rlrq_normal")
    assert decode_rlre(_wire("rlre_normal")) == Rlre()
    assert encode_rlre(Rlre()) == _wire("rlre_normal")


def test_release_without_reason_and_with_user_information() -> None:
    assert encode_rlrq(Rlrq(reason=None)) == bytes.fromhex("6200")
    assert decode_rlrq(bytes.fromhex("6200")) == Rlrq(reason=None)
    request = InitiateRequest(Conformance.GET, 1024)
    rlrq = Rlrq(ReleaseRequestReason.URGENT, request)
    assert decode_rlrq(encode_rlrq(rlrq)) == rlrq
    rlre = Rlre(ReleaseResponseReason.USER_DEFINED, InitiateResponse(Conformance.GET, 512))
    assert encode_rlre(rlre).hex().upper() == "631580011EBE10040E0800065F1F040000001002000007"
    assert decode_rlre(encode_rlre(rlre)) == rlre


# --- InitiateRequest / InitiateResponse -------------------------------------------------


def test_green_book_initiate_request_with_dedicated_key() -> None:
    plain = bytes.fromhex("01011000112233445566778899AABBCCDDEEFF0000065F1F0400007E1F04B0")
    request = decode_initiate_request(plain)
    assert request == InitiateRequest(
        Conformance(0x007E1F),
        1200,
        dedicated_key=bytes.fromhex("00112233445566778899AABBCCDDEEFF"),
    )
    assert encode_initiate_request(request) == plain
    assert "***" in repr(request)
    assert "0011223344" not in repr(request).replace(" ", "")
    assert "dedicated_key=None" in repr(InitiateRequest(Conformance.GET, 1))


def test_initiate_request_optional_fields_round_trip() -> None:
    request = InitiateRequest(
        Conformance.GENERAL_PROTECTION | Conformance.GET,
        0xFFFF,
        dlms_version=5,
        response_allowed=False,
        quality_of_service=-3,
    )
    wire = encode_initiate_request(request)
    assert wire.hex().upper() == "01000100" + "01FD" + "05" + "5F1F0400400010" + "FFFF"
    assert decode_initiate_request(wire) == request
    assert decode_initiate_request(bytes.fromhex("0100010100065F1F040000001004B0")).response_allowed


def test_initiate_response_optional_fields_round_trip() -> None:
    response = InitiateResponse(Conformance.READ, 200, vaa_name=SN_VAA_NAME, quality_of_service=7)
    wire = encode_initiate_response(response)
    assert wire.hex().upper() == "08" + "0107" + "06" + "5F1F0400100000" + "00C8" + "FA00"
    assert decode_initiate_response(wire) == response


def test_conformance_bits_follow_the_spec_numbering() -> None:
    # bit 0 is the MSB on the wire; the reference gateway's 00 1E 1D.
    assert Conformance(0x001E1D) == (
        Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ
        | Conformance.BLOCK_TRANSFER_WITH_SET_OR_WRITE
        | Conformance.BLOCK_TRANSFER_WITH_ACTION
        | Conformance.MULTIPLE_REFERENCES
        | Conformance.GET
        | Conformance.SET
        | Conformance.SELECTIVE_ACCESS
        | Conformance.ACTION
    )
    assert int(Conformance.GENERAL_PROTECTION).to_bytes(3, "big") == bytes.fromhex("400000")


@pytest.mark.parametrize(
    ("wire", "error", "reason"),
    [
        ("", TruncatedError, "cut short"),
        ("08", DecodeError, "must start with 01"),
        ("0102", DecodeError, "presence flag 02"),
        ("0101", TruncatedError, "length missing"),
        ("010105AA", TruncatedError, "dedicated-key cut short"),
        ("01000000060400", DecodeError, "tag 5F 1F"),
        ("01000000060600", DecodeError, "tag 5F 1F"),
        ("01000000065F1F03000000", DecodeError, "24 bits"),
        ("01000000065F1F0401000000", DecodeError, "24 bits"),
        ("01000000065F1F0400000010", TruncatedError, "client-max-receive-pdu-size"),
        ("01000000065F1F040000001004B000", DecodeError, "1 bytes after"),
    ],
)
def test_decode_initiate_request_rejects(wire: str, error: type[Exception], reason: str) -> None:
    with pytest.raises(error, match=reason):
        decode_initiate_request(bytes.fromhex(wire))


@pytest.mark.parametrize(
    ("wire", "error", "reason"),
    [
        ("01", DecodeError, "must start with 08"),
        ("0803", DecodeError, "presence flag"),
        ("0800065F1F040000001004", TruncatedError, "server-max"),
        ("0800065F1F04000000100400", TruncatedError, "vaa-name"),
        ("0800065F1F040000001004000007FF", DecodeError, "after"),
    ],
)
def test_decode_initiate_response_rejects(wire: str, error: type[Exception], reason: str) -> None:
    with pytest.raises(error, match=reason):
        decode_initiate_response(bytes.fromhex(wire))


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"conformance": 1 << 24}, "conformance"),
        ({"max_receive_pdu_size": 0x10000}, "max receive PDU size"),
        ({"max_receive_pdu_size": -1}, "max receive PDU size"),
        ({"dlms_version": 256}, "DLMS version"),
        ({"quality_of_service": 128}, "quality of service"),
    ],
)
def test_initiate_messages_validate_their_ranges(kwargs: dict[str, Any], reason: str) -> None:
    args: dict[str, Any] = {"conformance": Conformance.GET, "max_receive_pdu_size": 1, **kwargs}
    with pytest.raises(EncodeError, match=reason):
        InitiateRequest(**args)
    with pytest.raises(EncodeError, match=reason):
        InitiateResponse(**args)


@pytest.mark.parametrize("vaa_name", [-1, 0x10000])
def test_initiate_response_validates_vaa_name(vaa_name: int) -> None:
    with pytest.raises(EncodeError, match="VAA name"):
        InitiateResponse(Conformance.GET, 1, vaa_name=vaa_name)


# --- ACSE validators ----------------------------------------------------------------------

AARQ_HEAD = "A109060760857405080101"
AARE_HEAD = "A109060760857405080101A203020100A305A103020100"


def _apdu(tag: str, body: str) -> bytes:
    raw = bytes.fromhex(body)
    return bytes.fromhex(tag) + bytes((len(raw),)) + raw


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (_apdu("61", AARQ_HEAD), "not an AARQ"),
        (_apdu("60", AARQ_HEAD) + b"\x00", "1 bytes after"),
        (_apdu("60", AARQ_HEAD + AARQ_HEAD), "repeats component A1"),
        (_apdu("60", AARQ_HEAD + "0400"), "no component 04"),
        (_apdu("60", AARQ_HEAD + "AA00"), "no component AA"),
        (_apdu("60", "A60A0408" + "00" * 8), "lacks application-context-name"),
        (_apdu("60", "A1080606608574050801"), "not a DLMS UA name"),
        (_apdu("60", "A10A060860857405080101FF"), "not a DLMS UA name"),
        (_apdu("60", "A109060760857405080301"), "not a DLMS UA name"),
        (_apdu("60", "A109060760857405080105"), "application context 5 is not defined"),
        (_apdu("60", "A10A06076085740508010100"), "exactly one 06"),
        (_apdu("60", "A1090407608574050801FF"), "exactly one 06"),
        (_apdu("60", "A10A06096085740508010101"), "AARQ: BER value of 9 bytes"),
        (_apdu("60", AARQ_HEAD + "8B0760857405080208"), "mechanism 8 is not defined"),
        (_apdu("60", AARQ_HEAD + "8B0760857405080301"), "not a DLMS UA name"),
        (_apdu("60", AARQ_HEAD + "8A00"), "ACSE-requirements"),
        (_apdu("60", AARQ_HEAD + "8A020880"), "ACSE-requirements"),
        (_apdu("60", AARQ_HEAD + "8A0101"), "ACSE-requirements"),
        (_apdu("60", AARQ_HEAD + "AC0481023132"), "exactly one 80"),
        (_apdu("60", AARQ_HEAD + "A606050400000000"), "exactly one 04"),
        (_apdu("60", AARQ_HEAD + "BE020400"), "unexpected APDU \\(empty\\)"),
        (_apdu("60", AARQ_HEAD + "BE0404020E01"), "unexpected APDU \\(tag 0E\\)"),
        (_apdu("60", AARQ_HEAD + "BE0404020801"), "unexpected APDU"),
        (_apdu("60", AARQ_HEAD + "BE0704052103300000"), "shorter than SC"),
        (_apdu("60", AARQ_HEAD + "BE0404020101"), "AARQ: presence flag|AARQ: "),
    ],
)
def test_decode_aarq_rejects(wire: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason) as info:
        decode_aarq(wire)
    assert not isinstance(info.value, TruncatedError)


def test_a_short_component_inside_a_complete_aarq_is_malformed_not_truncated() -> None:
    with pytest.raises(DecodeError, match="AARQ:") as info:
        decode_aarq(_apdu("60", AARQ_HEAD + "BE0404020100"))
    assert not isinstance(info.value, TruncatedError)


@pytest.mark.parametrize("cut", range(len(bytes.fromhex(VECTORS["aarq_ln_no_auth"]["hex"]))))
def test_a_cut_aarq_is_truncated(cut: int) -> None:
    with pytest.raises(TruncatedError):
        decode_aarq(_wire("aarq_ln_no_auth")[:cut])


def test_aarq_skips_acse_components_dlms_does_not_use() -> None:
    # protocol-version (80 02 07 80) and implementation-information (BD ..) as Gurux may send.
    aarq = decode_aarq(_apdu("60", "80020780" + AARQ_HEAD + "BD0380014A"))
    assert aarq == Aarq(ApplicationContext.LN)


def test_aarq_with_requirements_bit_clear_and_called_title() -> None:
    aarq = decode_aarq(_apdu("60", AARQ_HEAD + "A2060404CAFEBABE" + "8A020700"))
    assert not aarq.authentication_required
    assert aarq.called_ap_title == bytes.fromhex("CAFEBABE")
    assert encode_aarq(aarq) == _apdu("60", AARQ_HEAD + "A2060404CAFEBABE")


def test_aarq_repr_hides_the_password() -> None:
    aarq = decode_aarq(_wire("aarq_ln_lls_password"))
    assert aarq.calling_authentication_value == b"12345678"
    assert "12345678" not in repr(aarq)


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (_apdu("61", "A109060760857405080101"), "lacks result"),
        (_apdu("61", "A109060760857405080101A203020100"), "lacks result"),
        (_apdu("61", AARE_HEAD.replace("A203020100", "A203020103")), "result 3 is not defined"),
        (_apdu("61", AARE_HEAD.replace("A203020100", "A203050100")), "exactly one 02"),
        (_apdu("61", AARE_HEAD.replace("A203020100", "A2040202FF00")), "result -256 is not"),
        (_apdu("61", AARE_HEAD.replace("A203020100", "A2020200")), "INTEGER of 0 bytes"),
        (_apdu("61", AARE_HEAD.replace("A203020100", "A20702050000000000")), "INTEGER of 5"),
        (_apdu("61", AARE_HEAD.replace("A305A103020100", "A305A303020100")), "neither"),
        (_apdu("61", AARE_HEAD.replace("A305A103020100", "A3058103020100")), "neither"),
        (_apdu("61", AARE_HEAD.replace("A305A103020100", "A306A10302010000")), "neither"),
        (_apdu("61", AARE_HEAD.replace("A305A103020100", "A305A10302010F")), "diagnostic 15"),
        (_apdu("61", AARE_HEAD.replace("A305A103020100", "A305A203020103")), "diagnostic 3"),
        (_apdu("61", AARE_HEAD.replace("A305A103020100", "A305A103040100")), "exactly one 02"),
        (_apdu("61", AARE_HEAD + "BE0404020100"), "unexpected APDU"),
        (_apdu("61", AARE_HEAD + "AB020400"), "no component AB"),
    ],
)
def test_decode_aare_rejects(wire: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode_aare(wire)


def test_a_short_confirmed_service_error_inside_an_aare_is_malformed() -> None:
    with pytest.raises(DecodeError, match="AARE: ") as info:
        decode_aare(_apdu("61", AARE_HEAD + "BE0404020E01"))
    assert not isinstance(info.value, TruncatedError)


def test_aare_with_provider_diagnostic_round_trips() -> None:
    aare = Aare(
        ApplicationContext.SN,
        AssociationResult.REJECTED_TRANSIENT,
        AcseServiceProviderDiagnostic.NO_COMMON_ACSE_VERSION,
    )
    wire = encode_aare(aare)
    assert wire.hex().upper().endswith("A305A203020102")
    assert decode_aare(wire) == aare


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        ("620380010A", "release reason 10"),
        ("62028000", "INTEGER of 0"),
        ("6203A10100", "no component A1"),
        ("6206800100800101", "repeats"),
        ("6303800102", "release reason 2"),
        ("6306BE0404020100", "RLRE: |unexpected"),
    ],
)
def test_decode_release_rejects(wire: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode_acse_apdu(bytes.fromhex(wire))


@pytest.mark.parametrize(
    ("wire", "error"), [("", TruncatedError), ("C0", DecodeError), ("64", DecodeError)]
)
def test_decode_acse_apdu_rejects_other_tags(wire: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_acse_apdu(bytes.fromhex(wire))


PLAIN = InitiateRequest(Conformance(0x001E1D), 0xFFFF)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"mechanism": Mechanism.LLS}, "authentication value goes with"),
        ({"authentication_value": b"x"}, "authentication value goes with"),
        ({"mechanism": Mechanism.LOWEST, "authentication_value": b"x"}, "goes with"),
        ({"mechanism": Mechanism.LLS, "authentication_value": b""}, "non-empty password"),
        ({"mechanism": Mechanism.HLS_MD5, "authentication_value": b"1234567"}, "8..64"),
        ({"mechanism": Mechanism.HLS_GMAC, "authentication_value": bytes(65)}, "8..64"),
        ({"mechanism": Mechanism.HLS_GMAC, "authentication_value": bytes(8)}, "system title"),
        (
            {
                "mechanism": Mechanism.HLS_GMAC,
                "authentication_value": bytes(8),
                "calling_ap_title": bytes(7),
            },
            "system title",
        ),
        ({"application_context": ApplicationContext.LN_CIPHER}, "system title"),
        (
            {"application_context": ApplicationContext.LN_CIPHER, "calling_ap_title": CLIENT},
            "ciphered contexts carry",
        ),
    ],
)
def test_build_aarq_rejects_inconsistent_requests(kwargs: dict[str, Any], reason: str) -> None:
    with pytest.raises(EncodeError, match=reason):
        build_aarq(PLAIN, **kwargs)


def test_build_aarq_with_hls_gmac_on_a_plain_ln_context() -> None:
    aarq = build_aarq(
        PLAIN,
        mechanism=Mechanism.HLS_GMAC,
        authentication_value=b"K56iVagY",
        calling_ap_title=CLIENT,
    )
    assert aarq.authentication_required
    assert decode_aarq(encode_aarq(aarq)) == aarq
    lowest = build_aarq(PLAIN, mechanism=Mechanism.LOWEST)
    assert not lowest.authentication_required
    assert encode_aarq(lowest).hex().upper().startswith("6026" + AARQ_HEAD + "8B0760857405080200")


def test_ciphered_user_information_must_be_a_ciphered_initiate_request() -> None:
    wire = encipher_apdu(
        bytes.fromhex("C001C1000301000C0700FF0200"),
        key=EK,
        ak=AK,
        system_title=CLIENT,
        invocation_counter=1,
    )
    body = AARQ_HEAD + "BE" + f"{len(wire) + 2:02X}" + "04" + f"{len(wire):02X}" + wire.hex()
    with pytest.raises(DecodeError, match="unexpected APDU"):
        decode_aarq(_apdu("60", body))


# --- hypothesis round trips ---------------------------------------------------------------

octets = st.binary(min_size=0, max_size=70)
conformances = st.integers(min_value=0, max_value=0xFF_FFFF).map(Conformance)
initiate_requests = st.builds(
    InitiateRequest,
    conformances,
    st.integers(min_value=0, max_value=0xFFFF),
    st.integers(min_value=0, max_value=255),
    st.none() | st.binary(max_size=200),
    st.booleans(),
    st.none() | st.integers(min_value=-128, max_value=127),
)
initiate_responses = st.builds(
    InitiateResponse,
    conformances,
    st.integers(min_value=0, max_value=0xFFFF),
    st.integers(min_value=0, max_value=255),
    st.integers(min_value=0, max_value=0xFFFF),
    st.none() | st.integers(min_value=-128, max_value=127),
)


@st.composite
def ciphered_initiates(draw: st.DrawFn, plain: st.SearchStrategy[bytes]) -> CipheredApdu:
    wire = encipher_apdu(
        draw(plain),
        key=EK,
        ak=AK,
        system_title=CLIENT,
        invocation_counter=draw(st.integers(min_value=0, max_value=0xFFFF_FFFF)),
        general=draw(st.booleans()),
    )
    return decode_ciphered_apdu(wire)


aarqs = st.builds(
    Aarq,
    st.sampled_from(ApplicationContext),
    st.none()
    | initiate_requests
    | ciphered_initiates(initiate_requests.map(encode_initiate_request)),
    st.none() | octets,
    st.none() | octets,
    st.booleans(),
    st.none() | st.sampled_from(Mechanism),
    st.none() | octets,
)
diagnostics = st.sampled_from(AcseServiceUserDiagnostic) | st.sampled_from(
    AcseServiceProviderDiagnostic
)
aares = st.builds(
    Aare,
    st.sampled_from(ApplicationContext),
    st.sampled_from(AssociationResult),
    diagnostics,
    st.none() | octets,
    st.booleans(),
    st.none() | st.sampled_from(Mechanism),
    st.none() | octets,
    st.none()
    | initiate_responses
    | ciphered_initiates(initiate_responses.map(encode_initiate_response))
    | st.builds(
        ConfirmedServiceError,
        st.sampled_from(ConfirmedServiceErrorService),
        st.sampled_from(ServiceErrorKind),
        st.integers(min_value=0, max_value=255),
    ),
)
releases = st.builds(
    Rlrq, st.none() | st.sampled_from(ReleaseRequestReason), st.none() | initiate_requests
) | st.builds(
    Rlre, st.none() | st.sampled_from(ReleaseResponseReason), st.none() | initiate_responses
)


@given(initiate_requests)
def test_any_initiate_request_round_trips(request: InitiateRequest) -> None:
    assert decode_initiate_request(encode_initiate_request(request)) == request


@given(initiate_responses)
def test_any_initiate_response_round_trips(response: InitiateResponse) -> None:
    assert decode_initiate_response(encode_initiate_response(response)) == response


@given(aarqs)
def test_any_aarq_round_trips(aarq: Aarq) -> None:
    wire = encode_aarq(aarq)
    assert decode_acse_apdu(wire) == aarq
    assert encode_aarq(decode_aarq(wire)) == wire


@given(aares)
def test_any_aare_round_trips(aare: Aare) -> None:
    wire = encode_aare(aare)
    assert decode_acse_apdu(wire) == aare


@given(releases)
def test_any_release_round_trips(release: Rlrq | Rlre) -> None:
    assert decode_acse_apdu(_encode(release)) == release
