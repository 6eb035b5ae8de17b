"""``describe_acse_apdu`` / ``describe_ciphered_apdu`` reproduce the vectors' ``decoded``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ivy_gateway.codec.dlms.apdu.acse import (
    Aare,
    Aarq,
    AcseServiceProviderDiagnostic,
    ApplicationContext,
    AssociationResult,
    encode_aare,
    encode_aarq,
)
from ivy_gateway.codec.dlms.apdu.initiate import Conformance, InitiateRequest, InitiateResponse
from ivy_gateway.codec.dlms.apdu.release import Rlrq, encode_rlrq
from ivy_gateway.codec.dlms.describe_acse import describe_acse_apdu, describe_ciphered_apdu
from ivy_gateway.codec.errors import SecurityError

VECTORS = {
    v["name"]: v
    for v in json.loads(
        (Path(__file__).parents[3] / "vectors" / "dlms.json").read_text(encoding="utf-8")
    )["vectors"]
}
ACSE = sorted(n for n in VECTORS if n.split("_")[0] in {"aarq", "aare", "rlrq", "rlre"})
CIPHERED = sorted(n for n in VECTORS if n.startswith("ciphered_") and "hls" not in n)

# The vectors are not uniform about optional keys: a few leave out fields that the others
# of their kind show (the SN AARQ omits the raw InitiateRequest, the ciphered AARE omits
# security control and counter, only the Green Book vector shows the GCM tag). The
# description is uniform, so for those vectors it has exactly these keys more.
EXTRA_KEYS: dict[str, set[str]] = {
    "aarq_sn_no_auth": {"initiate_request"},
    "aare_accepted_hls_gmac_ciphered": {"security_control", "invocation_counter"},
    "ciphered_glo_get_request_auth_enc": {"tag"},
    "ciphered_glo_get_response_auth_enc": {"tag"},
    "ciphered_glo_action_request_auth_only": {"tag"},
    "ciphered_general_glo_ciphering_data_notification": {"tag"},
    "ciphered_ded_get_request_dedicated_key": {"tag"},
}


def _bytes(params: dict[str, Any], *names: str) -> bytes | None:
    for name in names:
        if name in params:
            return bytes.fromhex(params[name])
    return None


def _check(name: str, described: dict[str, Any]) -> None:
    decoded = VECTORS[name]["decoded"]
    extra = EXTRA_KEYS.get(name, set())
    assert set(described) - set(decoded) == extra
    assert {k: v for k, v in described.items() if k not in extra} == decoded
    json.dumps(described)  # JSON-able


@pytest.mark.parametrize("name", ACSE)
def test_acse_vector_description_matches_decoded(name: str) -> None:
    params = VECTORS[name].get("params", {})
    described = describe_acse_apdu(
        bytes.fromhex(VECTORS[name]["hex"]), ek=_bytes(params, "ek"), ak=_bytes(params, "ak")
    )
    _check(name, described)


@pytest.mark.parametrize("name", CIPHERED)
def test_ciphered_vector_description_matches_decoded(name: str) -> None:
    params = VECTORS[name]["params"]
    described = describe_ciphered_apdu(
        bytes.fromhex(VECTORS[name]["hex"]),
        ek=_bytes(params, "ek", "dedicated_key"),
        ak=_bytes(params, "ak"),
        system_title=_bytes(params, "system_title"),
    )
    _check(name, described)


def test_ciphered_user_information_without_keys_shows_the_envelope_only() -> None:
    described = describe_acse_apdu(bytes.fromhex(VECTORS["aarq_ln_cipher_hls_gmac"]["hex"]))
    assert described["user_information_tag"] == "21"
    assert described["invocation_counter"] == 0x01234567
    assert "plaintext_user_information" not in described


def test_explicit_system_title_overrides_the_ap_title() -> None:
    vector = VECTORS["aare_accepted_hls_gmac_ciphered"]
    keys = {
        "ek": bytes.fromhex(vector["params"]["ek"]),
        "ak": bytes.fromhex(vector["params"]["ak"]),
    }
    with pytest.raises(SecurityError):
        describe_acse_apdu(bytes.fromhex(vector["hex"]), system_title=bytes(8), **keys)


def test_ciphered_apdu_without_keys_shows_the_information() -> None:
    vector = VECTORS["ciphered_glo_get_request_auth_enc"]
    described = describe_ciphered_apdu(
        bytes.fromhex(vector["hex"]), ek=None, ak=None, system_title=None
    )
    assert described == {
        "apdu": "glo-get-request",
        "security_control": "30",
        "invocation_counter": 0x01234568,
        "information": vector["hex"][14:-24],
        "tag": vector["hex"][-24:],
    }


def test_optional_fields_are_described_when_present() -> None:
    aarq = Aarq(
        ApplicationContext.SN_CIPHER,
        InitiateRequest(Conformance.READ, 128, response_allowed=False, quality_of_service=2),
        called_ap_title=b"\x01\x02",
    )
    assert describe_acse_apdu(encode_aarq(aarq)) == {
        "apdu": "AARQ",
        "application_context": "SN_CIPHER",
        "mechanism": None,
        "called_ap_title": "0102",
        "initiate_request": "01" + "00" + "0100" + "0102" + "06" + "5F1F0400100000" + "0080",
        "quality_of_service": 2,
        "response_allowed": False,
        "dlms_version": 6,
        "conformance": "100000",
        "max_pdu": 128,
    }
    aare = Aare(
        ApplicationContext.LN,
        AssociationResult.REJECTED_TRANSIENT,
        AcseServiceProviderDiagnostic.NO_REASON_GIVEN,
        user_information=InitiateResponse(Conformance.GET, 64, quality_of_service=-1),
    )
    described = describe_acse_apdu(encode_aare(aare))
    assert described["diagnostic_source"] == "acse-service-provider"
    assert described["quality_of_service"] == -1
    assert describe_acse_apdu(encode_rlrq(Rlrq(reason=None))) == {"apdu": "RLRQ"}


def test_encryption_only_apdu_has_no_tag() -> None:
    described = describe_ciphered_apdu(
        bytes.fromhex("C806200000000155"), ek=None, ak=None, system_title=None
    )
    assert described == {
        "apdu": "glo-get-request",
        "security_control": "20",
        "invocation_counter": 1,
        "information": "55",
    }
