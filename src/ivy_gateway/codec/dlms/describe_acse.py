"""JSON-able descriptions of ACSE and ciphered APDUs, for ``ivy-gateway decode`` and tests.

Keys and value formats are those of the ``decoded`` objects in ``tests/vectors/dlms.json``:
byte strings as uppercase hex, integers as numbers, enumerations by their spec number
(application contexts by name: ``LN``, ``SN``, ``LN_CIPHER``, ``SN_CIPHER``). A key is present
only when the APDU carries the field, except the AARQ's ``mechanism`` (``None`` = none).

Ciphered content is deciphered only when keys are given (``ek`` = the key that protects the
APDU: global unicast, broadcast or dedicated). No replay check is made: this describes, it
does not accept. A wrong key raises ``SecurityError``.
"""

from __future__ import annotations

from typing import Any

from .apdu.acse import Aare, Aarq, AcseServiceUserDiagnostic, decode_acse_apdu
from .apdu.ciphered import CipheredApdu, decode_ciphered_apdu
from .apdu.exception import ConfirmedServiceError
from .apdu.initiate import (
    InitiateRequest,
    InitiateResponse,
    encode_initiate_request,
    encode_initiate_response,
)
from .security import decipher_apdu

__all__ = ["describe_acse_apdu", "describe_ciphered_apdu"]


def _hex(data: bytes) -> str:
    return data.hex().upper()


def _conformance_hex(conformance: int) -> str:
    return _hex(conformance.to_bytes(3, "big"))


def _describe_initiate(info: InitiateRequest | InitiateResponse) -> dict[str, Any]:
    out: dict[str, Any]
    if isinstance(info, InitiateRequest):
        out = {"initiate_request": _hex(encode_initiate_request(info))}
    else:
        out = {"initiate_response": _hex(encode_initiate_response(info))}
    if info.quality_of_service is not None:
        out["quality_of_service"] = info.quality_of_service
    if isinstance(info, InitiateRequest) and not info.response_allowed:
        out["response_allowed"] = False
    out["dlms_version"] = info.dlms_version
    out["conformance"] = _conformance_hex(info.conformance)
    out["max_pdu"] = info.max_receive_pdu_size
    if isinstance(info, InitiateResponse):
        out["vaa_name"] = info.vaa_name
    return out


def _describe_user_information(
    info: InitiateRequest | InitiateResponse | CipheredApdu | ConfirmedServiceError,
    *,
    ek: bytes | None,
    ak: bytes | None,
    system_title: bytes | None,
) -> dict[str, Any]:
    if isinstance(info, InitiateRequest | InitiateResponse):
        return _describe_initiate(info)
    if isinstance(info, ConfirmedServiceError):
        return {"user_information": _hex(info.to_bytes())}
    out: dict[str, Any] = {
        "user_information_tag": f"{info.tag:02X}",
        "security_control": f"{info.security_control.to_byte():02X}",
        "invocation_counter": info.invocation_counter,
    }
    if ek is not None and ak is not None:
        plaintext = decipher_apdu(info, key=ek, ak=ak, system_title=system_title)
        out["plaintext_user_information"] = _hex(plaintext)
    return out


def describe_acse_apdu(
    data: bytes,
    *,
    ek: bytes | None = None,
    ak: bytes | None = None,
    system_title: bytes | None = None,
) -> dict[str, Any]:
    """Describe an AARQ, AARE, RLRQ or RLRE.

    Ciphered user-information is deciphered with ``ek``/``ak`` when both are given, using
    ``system_title`` or else the AP title the APDU itself carries (the sender's).
    """
    apdu = decode_acse_apdu(data)
    out: dict[str, Any] = {"apdu": type(apdu).__name__.upper()}
    title = system_title
    if isinstance(apdu, Aarq):
        out["application_context"] = apdu.application_context.name
        out["mechanism"] = None if apdu.mechanism is None else int(apdu.mechanism)
        if apdu.called_ap_title is not None:
            out["called_ap_title"] = _hex(apdu.called_ap_title)
        if apdu.calling_ap_title is not None:
            out["calling_ap_title"] = _hex(apdu.calling_ap_title)
            title = title or apdu.calling_ap_title
        if apdu.calling_authentication_value is not None:
            out["auth_value"] = _hex(apdu.calling_authentication_value)
    elif isinstance(apdu, Aare):
        out["application_context"] = apdu.application_context.name
        out["result"] = int(apdu.result)
        is_user = isinstance(apdu.diagnostic, AcseServiceUserDiagnostic)
        out["diagnostic_source"] = "acse-service-user" if is_user else "acse-service-provider"
        out["diagnostic"] = int(apdu.diagnostic)
        if apdu.responding_ap_title is not None:
            out["responding_ap_title"] = _hex(apdu.responding_ap_title)
            title = title or apdu.responding_ap_title
        if apdu.mechanism is not None:
            out["mechanism"] = int(apdu.mechanism)
        if apdu.responding_authentication_value is not None:
            out["auth_value"] = _hex(apdu.responding_authentication_value)
    elif apdu.reason is not None:
        out["reason"] = int(apdu.reason)
    if apdu.user_information is not None:
        out |= _describe_user_information(apdu.user_information, ek=ek, ak=ak, system_title=title)
    return out


def describe_ciphered_apdu(
    data: bytes, *, ek: bytes | None, ak: bytes | None, system_title: bytes | None
) -> dict[str, Any]:
    """Describe a glo-/ded-/general-ciphered APDU; decipher it when ``ek`` and ``ak`` are
    given (``system_title`` = the sender's; general ciphering carries its own)."""
    apdu = decode_ciphered_apdu(data)
    out: dict[str, Any] = {"apdu": apdu.tag.apdu_name}
    if apdu.system_title is not None:
        out["system_title"] = _hex(apdu.system_title)
    out["security_control"] = f"{apdu.security_control.to_byte():02X}"
    out["invocation_counter"] = apdu.invocation_counter
    if ek is not None and ak is not None:
        out["plaintext"] = _hex(decipher_apdu(apdu, key=ek, ak=ak, system_title=system_title))
    else:
        out["information"] = _hex(apdu.information)
    if apdu.auth_tag:
        out["tag"] = _hex(apdu.auth_tag)
    return out
