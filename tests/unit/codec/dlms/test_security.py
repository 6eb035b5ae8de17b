"""Security suite 0: ciphered APDU wire format, AES-GCM, replay guard, HLS-GMAC."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from ivy_gateway.codec.dlms.apdu.ciphered import ciphered_tag_for
from ivy_gateway.codec.dlms.security import (
    AUTHENTICATED_ENCRYPTED,
    AUTHENTICATED_ONLY,
    ENCRYPTED_ONLY,
    CipheredApdu,
    CipheredTag,
    KeyId,
    SecurityContext,
    SecurityControl,
    SecurityKeys,
    compute_hls_gmac,
    decipher_apdu,
    decode_ciphered_apdu,
    encipher_apdu,
    encode_ciphered_apdu,
    verify_hls_gmac,
)
from ivy_gateway.codec.errors import DecodeError, EncodeError, SecurityError, TruncatedError

VECTORS = {
    v["name"]: v
    for v in json.loads(
        (Path(__file__).parents[3] / "vectors" / "dlms.json").read_text(encoding="utf-8")
    )["vectors"]
}
CIPHERED = sorted(n for n in VECTORS if n.startswith("ciphered_") and "hls" not in n)
HLS_REPLIES = [
    "hls_gmac_reply_to_hls_authentication_request",
    "ciphered_green_book_hls_gmac_pass3",
]
HLS_RESPONSES = [
    "hls_gmac_reply_to_hls_authentication_response",
    "ciphered_green_book_hls_gmac_pass4",
]

EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
CLIENT = bytes.fromhex("4D4D4D0000000001")
SERVER = bytes.fromhex("4D4D4D0000BC614E")
GET_REQUEST = bytes.fromhex("C001C100080000010000FF0200")
GET_RESPONSE = bytes.fromhex("C401C100090C07EA011E05042213008000FF")


def _key(params: dict[str, Any]) -> bytes:
    return bytes.fromhex(params.get("ek") or params["dedicated_key"])


def _title(params: dict[str, Any]) -> bytes | None:
    title = params.get("system_title")
    return None if title is None else bytes.fromhex(title)


def _pair() -> tuple[SecurityContext, SecurityContext]:
    keys = SecurityKeys(ek=EK, ak=AK, broadcast_key=bytes(range(16, 32)))
    client = SecurityContext(keys, system_title=CLIENT, peer_system_title=SERVER)
    server = SecurityContext(keys, system_title=SERVER, peer_system_title=CLIENT)
    return client, server


# --- security control byte --------------------------------------------------------------


@pytest.mark.parametrize("value", range(256))
def test_security_control_byte_round_trips(value: int) -> None:
    assert SecurityControl.from_byte(value).to_byte() == value


def test_security_control_names_the_bits() -> None:
    sc = SecurityControl.from_byte(0xF5)
    assert sc == SecurityControl(5, True, True, True, True)
    assert AUTHENTICATED_ENCRYPTED.to_byte() == 0x30
    assert AUTHENTICATED_ONLY.to_byte() == 0x10
    assert ENCRYPTED_ONLY.to_byte() == 0x20


@pytest.mark.parametrize("suite", [-1, 16])
def test_security_control_rejects_suite_ids_outside_four_bits(suite: int) -> None:
    with pytest.raises(EncodeError):
        SecurityControl(suite_id=suite)


# --- vectors ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CIPHERED)
def test_vector_deciphers_to_its_plaintext(name: str) -> None:
    vector = VECTORS[name]
    params = vector["params"]
    plaintext = decipher_apdu(
        bytes.fromhex(vector["hex"]), key=_key(params), ak=AK, system_title=_title(params)
    )
    assert plaintext.hex().upper() == vector["decoded"]["plaintext"]


@pytest.mark.parametrize("name", CIPHERED)
def test_vector_is_reproduced_by_enciphering_its_plaintext(name: str) -> None:
    vector = VECTORS[name]
    wire = bytes.fromhex(vector["hex"])
    parsed = decode_ciphered_apdu(wire)
    assert parsed.tag.apdu_name == vector["decoded"]["apdu"]
    assert parsed.invocation_counter == vector["decoded"]["invocation_counter"]
    assert f"{parsed.security_control.to_byte():02X}" == vector["decoded"]["security_control"]
    assert encode_ciphered_apdu(parsed) == wire
    title = _title(vector["params"]) or parsed.system_title
    assert title is not None
    again = encipher_apdu(
        bytes.fromhex(vector["decoded"]["plaintext"]),
        key=_key(vector["params"]),
        ak=AK,
        system_title=title,
        invocation_counter=parsed.invocation_counter,
        security_control=parsed.security_control,
        dedicated=parsed.key_id is KeyId.DEDICATED,
        general=parsed.tag.is_general,
    )
    assert again == wire


def test_green_book_initiate_request_tag() -> None:
    vector = VECTORS["ciphered_green_book_glo_initiate_request"]
    parsed = decode_ciphered_apdu(bytes.fromhex(vector["hex"]))
    assert parsed.auth_tag.hex().upper() == vector["decoded"]["tag"]


@pytest.mark.parametrize("name", HLS_REPLIES)
def test_hls_gmac_f_stoc_matches_the_vectors(name: str) -> None:
    vector = VECTORS[name]
    params = vector["params"]
    reply = compute_hls_gmac(
        bytes.fromhex(params["stoc"]),
        ek=EK,
        ak=AK,
        system_title=bytes.fromhex(params["client_system_title"]),
        invocation_counter=params["ic"],
    )
    assert reply.hex().upper() == vector["decoded"]["f_stoc"]
    # ... and it is what the ACTION request carries as its octet-string parameter.
    assert vector["hex"].endswith("0911" + reply.hex().upper())


@pytest.mark.parametrize("name", HLS_RESPONSES)
def test_hls_gmac_f_ctos_verifies(name: str) -> None:
    vector = VECTORS[name]
    params = vector["params"]
    reply = bytes.fromhex(vector["decoded"]["f_ctos"])
    counter = verify_hls_gmac(
        reply,
        bytes.fromhex(params["ctos"]),
        ek=EK,
        ak=AK,
        system_title=bytes.fromhex(params["server_system_title"]),
    )
    assert counter == params["ic"]


def test_hls_gmac_rejects_a_reply_to_another_challenge() -> None:
    reply = bytes.fromhex(VECTORS["ciphered_green_book_hls_gmac_pass4"]["decoded"]["f_ctos"])
    with pytest.raises(SecurityError, match="does not authenticate"):
        verify_hls_gmac(reply, b"otherchallenge", ek=EK, ak=AK, system_title=SERVER)


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("10" + "00" * 15, "17"),
        ("30" + "00" * 16, "security control 30"),
    ],
)
def test_hls_gmac_rejects_malformed_replies(reply: str, reason: str) -> None:
    with pytest.raises(SecurityError, match=reason):
        verify_hls_gmac(bytes.fromhex(reply), b"12345678", ek=EK, ak=AK, system_title=SERVER)


# --- wire format validators ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "error", "reason"),
    [
        ("", TruncatedError, "empty"),
        ("C4", DecodeError, "not a ciphered APDU tag"),
        ("C8", TruncatedError, "length missing"),
        ("C80530000000", TruncatedError, "cut short"),
        ("C8053000000001FF", DecodeError, "1 bytes after"),
        ("C80430000000", DecodeError, "shorter than SC"),
        ("C8051000000001", DecodeError, "12-byte tag"),
        ("DB074D4D4D0000BC61", DecodeError, "system title of 7"),
        ("DB084D4D4D00", TruncatedError, "system title cut short"),
    ],
)
def test_decode_ciphered_apdu_rejects(wire: str, error: type[DecodeError], reason: str) -> None:
    with pytest.raises(error, match=reason):
        decode_ciphered_apdu(bytes.fromhex(wire))


def test_decode_keeps_unauthenticated_content_without_tag() -> None:
    parsed = decode_ciphered_apdu(bytes.fromhex("C80620000000010A"))
    assert parsed.information == b"\x0a"
    assert parsed.auth_tag == b""
    assert parsed.key_id is KeyId.UNICAST


@pytest.mark.parametrize(
    ("apdu", "reason"),
    [
        (
            CipheredApdu(CipheredTag.GLO_GET_REQUEST, AUTHENTICATED_ONLY, -1, b"", bytes(12)),
            "outside",
        ),
        (CipheredApdu(CipheredTag.GLO_GET_REQUEST, AUTHENTICATED_ONLY, 1, b""), "tag length"),
        (CipheredApdu(CipheredTag.GLO_GET_REQUEST, ENCRYPTED_ONLY, 1, b"", b"x"), "tag length"),
        (CipheredApdu(CipheredTag.GENERAL_GLO_CIPHERING, ENCRYPTED_ONLY, 1, b""), "8-byte"),
        (
            CipheredApdu(CipheredTag.GENERAL_DED_CIPHERING, ENCRYPTED_ONLY, 1, b"", b"", b"1"),
            "8-byte",
        ),
        (CipheredApdu(CipheredTag.GLO_GET_REQUEST, ENCRYPTED_ONLY, 1, b"", b"", CLIENT), "no sys"),
    ],
)
def test_encode_ciphered_apdu_rejects(apdu: CipheredApdu, reason: str) -> None:
    with pytest.raises(EncodeError, match=reason):
        encode_ciphered_apdu(apdu)


def test_ciphered_tags_follow_the_plain_tags() -> None:
    assert ciphered_tag_for(0xC0) is CipheredTag.GLO_GET_REQUEST
    assert ciphered_tag_for(0xC7, dedicated=True) is CipheredTag.DED_ACTION_RESPONSE
    assert ciphered_tag_for(0x01) is CipheredTag.GLO_INITIATE_REQUEST
    assert ciphered_tag_for(0x0E, dedicated=True) is CipheredTag.DED_CONFIRMED_SERVICE_ERROR
    assert CipheredTag.GLO_EVENT_NOTIFICATION_REQUEST.apdu_name == "glo-event-notification-request"


@pytest.mark.parametrize("plain_tag", [0xC6, 0x0F, 0xD8, 0x60])
def test_ciphered_tag_for_rejects_apdus_without_a_glo_form(plain_tag: int) -> None:
    with pytest.raises(EncodeError):
        ciphered_tag_for(plain_tag)


def test_key_id_follows_tag_and_broadcast_bit() -> None:
    broadcast = SecurityControl(authentication=True, encryption=True, broadcast_key=True)
    assert CipheredApdu(CipheredTag.GLO_GET_RESPONSE, broadcast, 1, b"").key_id is KeyId.BROADCAST
    ded = CipheredApdu(CipheredTag.GENERAL_DED_CIPHERING, AUTHENTICATED_ENCRYPTED, 1, b"")
    assert ded.key_id is KeyId.DEDICATED


# --- crypto ---------------------------------------------------------------------------------


def test_encryption_only_is_gcm_ctr_without_tag() -> None:
    wire = encipher_apdu(
        GET_REQUEST,
        key=EK,
        ak=AK,
        system_title=CLIENT,
        invocation_counter=7,
        security_control=ENCRYPTED_ONLY,
    )
    parsed = decode_ciphered_apdu(wire)
    assert parsed.auth_tag == b""
    # Cross-check with the low-level GCM API: the keystream of AES-GCM with this IV.
    encryptor = Cipher(algorithms.AES(EK), modes.GCM(CLIENT + (7).to_bytes(4, "big"))).encryptor()
    assert parsed.information == encryptor.update(GET_REQUEST)
    assert decipher_apdu(wire, key=EK, ak=AK, system_title=CLIENT) == GET_REQUEST


def test_authenticated_encryption_matches_the_low_level_gcm_api() -> None:
    iv = SERVER + (67).to_bytes(4, "big")
    encryptor = Cipher(algorithms.AES(EK), modes.GCM(iv)).encryptor()
    encryptor.authenticate_additional_data(b"\x30" + AK)
    ciphertext = encryptor.update(GET_RESPONSE) + encryptor.finalize()
    expected = bytes.fromhex("CC2330") + (67).to_bytes(4, "big") + ciphertext + encryptor.tag[:12]
    assert expected.hex().upper() == VECTORS["ciphered_glo_get_response_auth_enc"]["hex"]


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes((data[index] ^ 0x01,)) + data[index + 1 :]


@pytest.mark.parametrize("name", CIPHERED)
def test_any_altered_byte_fails_authentication(name: str) -> None:
    vector = VECTORS[name]
    wire = bytes.fromhex(vector["hex"])
    header = len(wire) - len(decode_ciphered_apdu(wire).information) - 12 - 4
    for index in range(header + 4, len(wire)):  # counter, information and tag
        with pytest.raises(SecurityError):
            decipher_apdu(
                _flip(wire, index),
                key=_key(vector["params"]),
                ak=AK,
                system_title=_title(vector["params"]),
            )


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"key": bytes(16)}, "authentication tag mismatch"),
        ({"ak": bytes(16)}, "authentication tag mismatch"),
        ({"system_title": CLIENT}, "authentication tag mismatch"),
        ({"key": bytes(15)}, "key must be 16 bytes, got 15"),
        ({"ak": bytes(32)}, "authentication key must be 16 bytes"),
        ({"system_title": bytes(7)}, "system title must be 8 bytes"),
        ({"system_title": None}, "system title is needed"),
    ],
)
def test_decipher_rejects_wrong_keys_and_titles(kwargs: dict[str, Any], reason: str) -> None:
    wire = bytes.fromhex(VECTORS["ciphered_glo_get_response_auth_enc"]["hex"])
    args: dict[str, Any] = {"key": EK, "ak": AK, "system_title": SERVER, **kwargs}
    with pytest.raises(SecurityError, match=reason) as info:
        decipher_apdu(wire, **args)
    assert EK.hex() not in str(info.value).lower()


@pytest.mark.parametrize(
    ("sc", "reason"),
    [(0x31, "suite 1"), (0xB0, "compressed"), (0x00, "neither"), (0x40, "neither")],
)
def test_security_controls_we_cannot_honour_are_rejected(sc: int, reason: str) -> None:
    apdu = CipheredApdu(CipheredTag.GLO_GET_REQUEST, SecurityControl.from_byte(sc), 1, b"")
    with pytest.raises(SecurityError, match=reason):
        decipher_apdu(apdu, key=EK, ak=AK, system_title=CLIENT)
    with pytest.raises(SecurityError, match=reason):
        encipher_apdu(
            GET_REQUEST,
            key=EK,
            ak=AK,
            system_title=CLIENT,
            invocation_counter=1,
            security_control=SecurityControl.from_byte(sc),
        )


def test_deciphered_apdu_must_match_the_ciphered_tag() -> None:
    # A glo-get-request whose plaintext is a GET *response*: authentic but inconsistent.
    wire = encipher_apdu(
        GET_RESPONSE, key=EK, ak=AK, system_title=CLIENT, invocation_counter=1, general=True
    )
    general = decode_ciphered_apdu(wire)
    forged = CipheredApdu(
        CipheredTag.GLO_GET_REQUEST,
        general.security_control,
        general.invocation_counter,
        general.information,
        general.auth_tag,
    )
    with pytest.raises(SecurityError, match="does not contain an APDU of tag C0"):
        decipher_apdu(forged, key=EK, ak=AK, system_title=CLIENT)


@pytest.mark.parametrize(
    ("kwargs", "error", "reason"),
    [
        ({"apdu": b""}, EncodeError, "empty APDU"),
        ({"apdu": b"\xc6\x01"}, EncodeError, "no glo-/ded- form"),
        ({"invocation_counter": 1 << 32}, SecurityError, "2\\^32"),
        ({"invocation_counter": -1}, SecurityError, "2\\^32"),
        ({"system_title": b"short"}, SecurityError, "system title"),
        ({"ak": b""}, SecurityError, "authentication key"),
        ({"key": b"k" * 24}, SecurityError, "key must be 16"),
    ],
)
def test_encipher_rejects(kwargs: dict[str, Any], error: type[Exception], reason: str) -> None:
    args: dict[str, Any] = {
        "apdu": GET_REQUEST,
        "key": EK,
        "ak": AK,
        "system_title": CLIENT,
        "invocation_counter": 1,
        **kwargs,
    }
    with pytest.raises(error, match=reason):
        encipher_apdu(args.pop("apdu"), **args)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"invocation_counter": 1 << 32}, "2\\^32"),
        ({"system_title": bytes(9)}, "system title"),
        ({"ak": bytes(1)}, "authentication key"),
    ],
)
def test_compute_hls_gmac_rejects(kwargs: dict[str, Any], reason: str) -> None:
    args: dict[str, Any] = {
        "ek": EK,
        "ak": AK,
        "system_title": CLIENT,
        "invocation_counter": 1,
        **kwargs,
    }
    with pytest.raises(SecurityError, match=reason):
        compute_hls_gmac(b"challenge", **args)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [({"system_title": bytes(9)}, "system title"), ({"ak": bytes(1)}, "authentication key")],
)
def test_verify_hls_gmac_rejects_bad_sizes(kwargs: dict[str, Any], reason: str) -> None:
    args: dict[str, Any] = {"ek": EK, "ak": AK, "system_title": SERVER, **kwargs}
    with pytest.raises(SecurityError, match=reason):
        verify_hls_gmac(bytes(17), b"challenge", **args)


@given(
    st.binary(min_size=1, max_size=300).map(lambda b: b"\xc4" + b),
    st.sampled_from([0x10, 0x20, 0x30]),
    st.integers(min_value=0, max_value=0xFFFF_FFFF),
    st.booleans(),
    st.booleans(),
)
def test_any_apdu_round_trips_through_ciphering(
    apdu: bytes, sc: int, counter: int, dedicated: bool, general: bool
) -> None:
    wire = encipher_apdu(
        apdu,
        key=EK,
        ak=AK,
        system_title=SERVER,
        invocation_counter=counter,
        security_control=SecurityControl.from_byte(sc),
        dedicated=dedicated,
        general=general,
    )
    parsed = decode_ciphered_apdu(wire)
    assert parsed.invocation_counter == counter
    assert encode_ciphered_apdu(parsed) == wire
    assert decipher_apdu(parsed, key=EK, ak=AK, system_title=SERVER) == apdu


# --- keys and the association's security context --------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"ek": bytes(15)}, "encryption key"),
        ({"ak": bytes(17)}, "authentication key"),
        ({"broadcast_key": bytes(8)}, "broadcast key"),
    ],
)
def test_security_keys_validate_sizes(kwargs: dict[str, Any], reason: str) -> None:
    args: dict[str, Any] = {"ek": EK, "ak": AK, **kwargs}
    with pytest.raises(SecurityError, match=reason):
        SecurityKeys(**args)


def test_reprs_never_show_keys() -> None:
    keys = SecurityKeys(ek=EK, ak=AK, broadcast_key=bytes(range(16)))
    context = SecurityContext(keys, system_title=CLIENT, dedicated_key=bytes(range(32, 48)))
    for text in (repr(keys), repr(context), str(context)):
        for secret in (EK, AK, bytes(range(16)), bytes(range(32, 48))):
            assert secret.hex() not in text.lower()
            assert secret.hex().upper() not in text
            assert repr(secret) not in text
    assert "***" in repr(keys)
    assert "4D4D4D0000000001" in repr(context)
    assert repr(SecurityKeys(ek=EK, ak=AK)).endswith("broadcast_key=None)")
    assert "peer_system_title=None" in repr(context)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"system_title": bytes(7)}, "system title"),
        ({"peer_system_title": bytes(9)}, "peer system title"),
        ({"invocation_counter": -5}, "2\\^32"),
        ({"dedicated_key": bytes(5)}, "key must be 16"),
    ],
)
def test_security_context_validates(kwargs: dict[str, Any], reason: str) -> None:
    args: dict[str, Any] = {"system_title": CLIENT, **kwargs}
    with pytest.raises(SecurityError, match=reason):
        SecurityContext(SecurityKeys(ek=EK, ak=AK), **args)


def test_context_reproduces_the_get_request_vector_and_numbers_its_apdus() -> None:
    vector = VECTORS["ciphered_glo_get_request_auth_enc"]
    client = SecurityContext(
        SecurityKeys(ek=EK, ak=AK), system_title=CLIENT, invocation_counter=0x01234568
    )
    assert client.encipher(GET_REQUEST).hex().upper() == vector["hex"]
    assert client.invocation_counter == 0x01234569
    second = decode_ciphered_apdu(client.encipher(GET_REQUEST))
    assert second.invocation_counter == 0x01234569


def test_context_deciphers_the_get_response_vector_from_the_server() -> None:
    client = SecurityContext(
        SecurityKeys(ek=EK, ak=AK), system_title=CLIENT, peer_system_title=SERVER
    )
    wire = bytes.fromhex(VECTORS["ciphered_glo_get_response_auth_enc"]["hex"])
    assert client.decipher(wire) == GET_RESPONSE


def test_context_rejects_a_replayed_or_older_counter() -> None:
    client, server = _pair()
    client.invocation_counter = 10
    first = client.encipher(GET_REQUEST)
    assert server.decipher(first) == GET_REQUEST
    with pytest.raises(SecurityError, match="replay"):
        server.decipher(first)
    client.invocation_counter = 5
    with pytest.raises(SecurityError, match="not above the last accepted 10"):
        server.decipher(client.encipher(GET_REQUEST))
    client.invocation_counter = 11
    assert server.decipher(client.encipher(GET_REQUEST)) == GET_REQUEST


def test_a_forged_apdu_does_not_move_the_replay_guard() -> None:
    client, server = _pair()
    genuine = client.encipher(GET_REQUEST)
    forged = _flip(genuine, len(genuine) - 1)
    with pytest.raises(SecurityError, match="tag mismatch"):
        server.decipher(forged)
    assert server.decipher(genuine) == GET_REQUEST


def test_counters_are_tracked_per_sender_title_and_per_key() -> None:
    client, server = _pair()
    server.set_dedicated_key(bytes(range(48, 64)))
    client.set_dedicated_key(bytes(range(48, 64)))
    unicast = client.encipher(GET_REQUEST)
    client.invocation_counter = 0  # a fresh counter under the dedicated key is fine
    dedicated = client.encipher(GET_REQUEST, dedicated=True)
    assert decode_ciphered_apdu(dedicated).tag is CipheredTag.DED_GET_REQUEST
    assert server.decipher(unicast) == GET_REQUEST
    assert server.decipher(dedicated) == GET_REQUEST
    # general-glo-ciphering from another sender title has its own counter.
    other = SecurityContext(
        SecurityKeys(ek=EK, ak=AK), system_title=bytes.fromhex("4D4D4D0000000002")
    )
    assert server.decipher(other.encipher(GET_REQUEST, general=True)) == GET_REQUEST


def test_a_new_dedicated_key_restarts_its_counters() -> None:
    client, server = _pair()
    for side in (client, server):
        side.set_dedicated_key(bytes(range(48, 64)))
    assert server.decipher(client.encipher(GET_REQUEST, dedicated=True)) == GET_REQUEST
    client.invocation_counter = 0
    for side in (client, server):
        side.set_dedicated_key(bytes(range(64, 80)))
    assert server.decipher(client.encipher(GET_REQUEST, dedicated=True)) == GET_REQUEST
    server.set_dedicated_key(None)
    with pytest.raises(SecurityError, match="no dedicated key"):
        server.decipher(client.encipher(GET_REQUEST, dedicated=True))


def test_broadcast_key_is_used_when_the_control_byte_says_so() -> None:
    client, server = _pair()
    broadcast = SecurityControl(authentication=True, encryption=True, broadcast_key=True)
    wire = client.encipher(GET_REQUEST, security_control=broadcast)
    with pytest.raises(SecurityError):
        decipher_apdu(wire, key=EK, ak=AK, system_title=CLIENT)
    assert server.decipher(wire) == GET_REQUEST
    lonely = SecurityContext(SecurityKeys(ek=EK, ak=AK), system_title=SERVER)
    with pytest.raises(SecurityError, match="no global broadcast"):
        lonely.encipher(GET_REQUEST, security_control=broadcast)


def test_context_needs_the_peer_title_for_glo_apdus() -> None:
    client = SecurityContext(SecurityKeys(ek=EK, ak=AK), system_title=CLIENT)
    wire = bytes.fromhex(VECTORS["ciphered_glo_get_response_auth_enc"]["hex"])
    with pytest.raises(SecurityError, match="not known yet"):
        client.decipher(wire)
    with pytest.raises(SecurityError, match="not known yet"):
        client.verify_challenge_reply(bytes(17), b"challenge")
    client.peer_system_title = SERVER
    assert client.decipher(decode_ciphered_apdu(wire)) == GET_RESPONSE


def test_counter_exhaustion_stops_sending() -> None:
    client, _ = _pair()
    client.invocation_counter = 0xFFFF_FFFF
    last = decode_ciphered_apdu(client.encipher(GET_REQUEST))
    assert last.invocation_counter == 0xFFFF_FFFF
    with pytest.raises(SecurityError, match="exhausted"):
        client.encipher(GET_REQUEST)
    with pytest.raises(SecurityError, match="exhausted"):
        client.reply_to_challenge(b"12345678")


def test_hls_gmac_four_pass_between_two_contexts_with_green_book_numbers() -> None:
    keys = SecurityKeys(ek=EK, ak=AK)
    client = SecurityContext(keys, system_title=CLIENT, invocation_counter=1)
    server = SecurityContext(keys, system_title=SERVER, invocation_counter=0x01234567)
    client.peer_system_title, server.peer_system_title = SERVER, CLIENT
    ctos, stoc = b"K56iVagY", b"P6wRJ21F"
    f_stoc = client.reply_to_challenge(stoc)  # pass 3
    assert (
        f_stoc.hex().upper() == VECTORS["ciphered_green_book_hls_gmac_pass3"]["decoded"]["f_stoc"]
    )
    server.verify_challenge_reply(f_stoc, stoc)
    f_ctos = server.reply_to_challenge(ctos)  # pass 4
    assert (
        f_ctos.hex().upper() == VECTORS["ciphered_green_book_hls_gmac_pass4"]["decoded"]["f_ctos"]
    )
    client.verify_challenge_reply(f_ctos, ctos)
    assert (client.invocation_counter, server.invocation_counter) == (2, 0x01234568)
    with pytest.raises(SecurityError, match="replay"):
        client.verify_challenge_reply(f_ctos, ctos)


def test_a_wrong_challenge_reply_does_not_move_the_guard() -> None:
    client, server = _pair()
    reply = server.reply_to_challenge(b"client-challenge")
    with pytest.raises(SecurityError, match="does not authenticate"):
        client.verify_challenge_reply(reply, b"another-challenge")
    client.verify_challenge_reply(reply, b"client-challenge")


def test_ciphered_tags_agree_with_the_apdu_tag_table() -> None:
    """CipheredTag is the typed subset the cipher codec decodes; it must not drift."""
    from ivy_gateway.codec.dlms.apdu.ciphered import CipheredTag
    from ivy_gateway.codec.dlms.apdu.tags import ApduTag

    for tag in CipheredTag:
        assert ApduTag[tag.name] == tag.value
