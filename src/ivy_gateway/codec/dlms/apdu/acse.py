"""ACSE APDUs of DLMS/COSEM: AARQ and AARE (ISO 8650 / Green Book 9.4; dlms.md D1, D2).

BER-encoded SEQUENCEs whose components carry context tags, in tag order::

    AARQ 60 len  A1 application-context-name   06 07 60 85 74 05 08 01 cc
                 A2 called-AP-title            04 len title            (optional)
                 A6 calling-AP-title           04 08 system title      (ciphering, HLS)
                 8A sender-acse-requirements   07 80  (bit 0 = authentication)
                 8B mechanism-name             60 85 74 05 08 02 mm
                 AC calling-authentication-value  80 len password | CtoS
                 BE user-information           04 len InitiateRequest | glo-initiate-request
    AARE 61 len  A1 application-context-name
                 A2 result                     02 01 rr
                 A3 result-source-diagnostic   A1 03 02 01 dd (user) | A2 03 02 01 dd (provider)
                 A4 responding-AP-title        04 08 system title
                 88 responder-acse-requirements 07 80
                 89 mechanism-name
                 AA responding-authentication-value  80 len StoC
                 BE user-information           04 len InitiateResponse | 28 ... | 0E ...

The other ACSE components (protocol-version, AE qualifiers, invocation identifiers,
implementation-information) have no meaning in DLMS/COSEM and are skipped when decoding.
Ciphered user-information stays ciphered here (a ``CipheredApdu``): deciphering needs the
association's ``SecurityContext``. RLRQ/RLRE live in ``release.py``; ``decode_acse_apdu``
takes any of the four.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

from ...errors import DecodeError, EncodeError, TruncatedError
from ..ber import Tag, TagClass, Tlv, decode_tlv, encode_tlv
from .acse_ber import (
    CHARSTRING,
    INTEGER,
    OCTET_STRING,
    OID,
    USER_INFORMATION,
    RequestInformation,
    ResponseInformation,
    context_tag,
    decode_components,
    decode_enum,
    decode_integer,
    decode_request_information,
    decode_response_information,
    encode_user_information,
    encode_wrapped,
    fail,
    inner_value,
)
from .ciphered import SYSTEM_TITLE_SIZE, CipheredApdu
from .release import Rlre, Rlrq, decode_rlre, decode_rlrq

__all__ = [
    "Aare",
    "Aarq",
    "AcseServiceProviderDiagnostic",
    "AcseServiceUserDiagnostic",
    "ApplicationContext",
    "AssociationResult",
    "Diagnostic",
    "Mechanism",
    "build_aarq",
    "decode_aare",
    "decode_aarq",
    "decode_acse_apdu",
    "encode_aare",
    "encode_aarq",
]


class ApplicationContext(IntEnum):
    """Last arc of application-context-name 2.16.756.5.8.1.x (Green Book 9.4.2.2.2)."""

    LN = 1
    SN = 2
    LN_CIPHER = 3
    SN_CIPHER = 4

    @property
    def ciphered(self) -> bool:
        return self in (ApplicationContext.LN_CIPHER, ApplicationContext.SN_CIPHER)


class Mechanism(IntEnum):
    """Last arc of mechanism-name 2.16.756.5.8.2.x (Green Book 9.4.2.2.3)."""

    LOWEST = 0
    LLS = 1
    HLS = 2  # manufacturer specific
    HLS_MD5 = 3
    HLS_SHA1 = 4
    HLS_GMAC = 5
    HLS_SHA256 = 6
    HLS_ECDSA = 7


class AssociationResult(IntEnum):
    ACCEPTED = 0
    REJECTED_PERMANENT = 1
    REJECTED_TRANSIENT = 2


class AcseServiceUserDiagnostic(IntEnum):
    """result-source-diagnostic, acse-service-user [1] (ISO 8650; dlms.md D2)."""

    NULL = 0
    NO_REASON_GIVEN = 1
    APPLICATION_CONTEXT_NAME_NOT_SUPPORTED = 2
    CALLING_AP_TITLE_NOT_RECOGNIZED = 3
    CALLING_AP_INVOCATION_IDENTIFIER_NOT_RECOGNIZED = 4
    CALLING_AE_QUALIFIER_NOT_RECOGNIZED = 5
    CALLING_AE_INVOCATION_IDENTIFIER_NOT_RECOGNIZED = 6
    CALLED_AP_TITLE_NOT_RECOGNIZED = 7
    CALLED_AP_INVOCATION_IDENTIFIER_NOT_RECOGNIZED = 8
    CALLED_AE_QUALIFIER_NOT_RECOGNIZED = 9
    CALLED_AE_INVOCATION_IDENTIFIER_NOT_RECOGNIZED = 10
    AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED = 11
    AUTHENTICATION_MECHANISM_NAME_REQUIRED = 12
    AUTHENTICATION_FAILURE = 13
    #: on an *accepted* HLS association: "now finish pass 3 and 4"
    AUTHENTICATION_REQUIRED = 14


class AcseServiceProviderDiagnostic(IntEnum):
    """result-source-diagnostic, acse-service-provider [2]."""

    NULL = 0
    NO_REASON_GIVEN = 1
    NO_COMMON_ACSE_VERSION = 2


Diagnostic = AcseServiceUserDiagnostic | AcseServiceProviderDiagnostic


@dataclass(frozen=True, slots=True)
class Aarq:
    application_context: ApplicationContext
    user_information: RequestInformation | None = None
    calling_ap_title: bytes | None = None
    called_ap_title: bytes | None = None
    #: sender-acse-requirements with the authentication bit (sent with any mechanism)
    authentication_required: bool = False
    mechanism: Mechanism | None = None
    #: LLS: the password; HLS: the client challenge CtoS. Kept out of the repr (a secret).
    calling_authentication_value: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Aare:
    application_context: ApplicationContext
    result: AssociationResult
    diagnostic: Diagnostic = AcseServiceUserDiagnostic.NULL
    responding_ap_title: bytes | None = None
    authentication_required: bool = False
    mechanism: Mechanism | None = None
    #: HLS: the server challenge StoC
    responding_authentication_value: bytes | None = None
    user_information: ResponseInformation | None = None

    @property
    def accepted(self) -> bool:
        return self.result is AssociationResult.ACCEPTED


_AARQ = Tag(TagClass.APPLICATION, True, 0)
_AARE = Tag(TagClass.APPLICATION, True, 1)
_APPLICATION_CONTEXT = context_tag(1)
_CALLED_AP_TITLE = context_tag(2)
_CALLING_AP_TITLE = context_tag(6)
_SENDER_ACSE_REQUIREMENTS = context_tag(10, False)
_AARQ_MECHANISM = context_tag(11, False)
_CALLING_AUTHENTICATION_VALUE = context_tag(12)
_RESULT = context_tag(2)
_RESULT_SOURCE_DIAGNOSTIC = context_tag(3)
_RESPONDING_AP_TITLE = context_tag(4)
_RESPONDER_ACSE_REQUIREMENTS = context_tag(8, False)
_AARE_MECHANISM = context_tag(9, False)
_RESPONDING_AUTHENTICATION_VALUE = context_tag(10)
_DIAGNOSTIC_SOURCES: dict[int, type[Diagnostic]] = {
    1: AcseServiceUserDiagnostic,
    2: AcseServiceProviderDiagnostic,
}

# {joint-iso-ccitt(2) country(16) country-name(756) identified-organization(5) DLMS-UA(8)}
_CONTEXT_PREFIX = bytes.fromhex("608574050801")  # ... application-context-name(1)
_MECHANISM_PREFIX = bytes.fromhex("608574050802")  # ... authentication-mechanism-name(2)
_AUTHENTICATION_BITS = b"\x07\x80"  # BIT STRING, 7 unused bits, bit 0 (authentication) set

_AARQ_KNOWN = frozenset(
    {
        _APPLICATION_CONTEXT,
        _CALLED_AP_TITLE,
        _CALLING_AP_TITLE,
        _SENDER_ACSE_REQUIREMENTS,
        _AARQ_MECHANISM,
        _CALLING_AUTHENTICATION_VALUE,
        USER_INFORMATION,
    }
)
_AARE_KNOWN = frozenset(
    {
        _APPLICATION_CONTEXT,
        _RESULT,
        _RESULT_SOURCE_DIAGNOSTIC,
        _RESPONDING_AP_TITLE,
        _RESPONDER_ACSE_REQUIREMENTS,
        _AARE_MECHANISM,
        _RESPONDING_AUTHENTICATION_VALUE,
        USER_INFORMATION,
    }
)
# ISO 8650 components DLMS does not use (protocol-version, AE qualifiers, invocation ids,
# implementation-information): skipped when decoding.
_AARQ_SKIPPED = frozenset({0, 3, 4, 5, 7, 8, 9, 29})
_AARE_SKIPPED = frozenset({0, 5, 6, 7, 29})


# --- decoding ---------------------------------------------------------------------------


def _dlms_name(tlv: Tlv, value: bytes, prefix: bytes, what: str) -> int:
    """The last arc of a DLMS UA object identifier (contents octets, no 06 tag)."""
    if len(value) != len(prefix) + 1 or not value.startswith(prefix):
        raise fail(f"{what} is not a DLMS UA name ({value.hex().upper()})", tlv)
    return value[-1]


def _acse_requirements(tlv: Tlv) -> bool:
    # ACSE-requirements BIT STRING { authentication(0) }: unused-bit count, then the bits.
    if not tlv.value or tlv.value[0] > 7 or (len(tlv.value) == 1 and tlv.value[0]):
        raise fail("malformed ACSE-requirements bit string", tlv)
    return len(tlv.value) > 1 and bool(tlv.value[1] & 0x80)


def _context(found: dict[Tag, Tlv], name: str) -> ApplicationContext:
    tlv = found.get(_APPLICATION_CONTEXT)
    if tlv is None:
        raise DecodeError(f"{name} lacks application-context-name", offset=0)
    value = inner_value(tlv, OID, "application-context-name")
    arc = _dlms_name(tlv, value, _CONTEXT_PREFIX, "application-context-name")
    return decode_enum(ApplicationContext, arc, "application context", tlv)


def _mechanism(tlv: Tlv | None) -> Mechanism | None:
    if tlv is None:
        return None
    arc = _dlms_name(tlv, tlv.value, _MECHANISM_PREFIX, "mechanism-name")
    return decode_enum(Mechanism, arc, "mechanism", tlv)


def _requirements(tlv: Tlv | None) -> bool:
    return tlv is not None and _acse_requirements(tlv)


def _optional(found: dict[Tag, Tlv], tag: Tag, inner: Tag, what: str) -> bytes | None:
    tlv = found.get(tag)
    return None if tlv is None else inner_value(tlv, inner, what)


def _build_aarq(found: dict[Tag, Tlv]) -> Aarq:
    info = found.get(USER_INFORMATION)
    return Aarq(
        application_context=_context(found, "AARQ"),
        user_information=None if info is None else decode_request_information(info),
        calling_ap_title=_optional(found, _CALLING_AP_TITLE, OCTET_STRING, "calling-AP-title"),
        called_ap_title=_optional(found, _CALLED_AP_TITLE, OCTET_STRING, "called-AP-title"),
        authentication_required=_requirements(found.get(_SENDER_ACSE_REQUIREMENTS)),
        mechanism=_mechanism(found.get(_AARQ_MECHANISM)),
        calling_authentication_value=_optional(
            found, _CALLING_AUTHENTICATION_VALUE, CHARSTRING, "calling-authentication-value"
        ),
    )


def _diagnostic(tlv: Tlv) -> Diagnostic:
    # result-source-diagnostic CHOICE { acse-service-user [1], acse-service-provider [2] }
    choice, end = decode_tlv(tlv.value)
    source = _DIAGNOSTIC_SOURCES.get(choice.tag.number)
    if source is None or choice.tag != context_tag(choice.tag.number) or end != len(tlv.value):
        raise fail("result-source-diagnostic is neither acse-service-user nor -provider", tlv)
    value = inner_value(Tlv(choice.tag, choice.value, tlv.offset), INTEGER, "diagnostic")
    return decode_enum(source, decode_integer(tlv, value, "diagnostic"), "diagnostic", tlv)


def _build_aare(found: dict[Tag, Tlv]) -> Aare:
    result_tlv = found.get(_RESULT)
    diagnostic_tlv = found.get(_RESULT_SOURCE_DIAGNOSTIC)
    if result_tlv is None or diagnostic_tlv is None:
        raise DecodeError("AARE lacks result or result-source-diagnostic", offset=0)
    result = decode_integer(result_tlv, inner_value(result_tlv, INTEGER, "result"), "result")
    info = found.get(USER_INFORMATION)
    return Aare(
        application_context=_context(found, "AARE"),
        result=decode_enum(AssociationResult, result, "association result", result_tlv),
        diagnostic=_diagnostic(diagnostic_tlv),
        responding_ap_title=_optional(
            found, _RESPONDING_AP_TITLE, OCTET_STRING, "responding-AP-title"
        ),
        authentication_required=_requirements(found.get(_RESPONDER_ACSE_REQUIREMENTS)),
        mechanism=_mechanism(found.get(_AARE_MECHANISM)),
        responding_authentication_value=_optional(
            found, _RESPONDING_AUTHENTICATION_VALUE, CHARSTRING, "responding-authentication-value"
        ),
        user_information=None if info is None else decode_response_information(info),
    )


def decode_aarq(data: bytes) -> Aarq:
    """Decode exactly one AARQ."""
    return decode_components(data, _AARQ, "AARQ", _AARQ_KNOWN, _AARQ_SKIPPED, _build_aarq)


def decode_aare(data: bytes) -> Aare:
    """Decode exactly one AARE."""
    return decode_components(data, _AARE, "AARE", _AARE_KNOWN, _AARE_SKIPPED, _build_aare)


_DECODERS: dict[int, Callable[[bytes], Aarq | Aare | Rlrq | Rlre]] = {
    0x60: decode_aarq,
    0x61: decode_aare,
    0x62: decode_rlrq,
    0x63: decode_rlre,
}


def decode_acse_apdu(data: bytes) -> Aarq | Aare | Rlrq | Rlre:
    """Decode exactly one AARQ, AARE, RLRQ or RLRE, chosen by its first byte."""
    if not data:
        raise TruncatedError("ACSE APDU is empty", offset=0)
    decoder = _DECODERS.get(data[0])
    if decoder is None:
        raise DecodeError(f"0x{data[0]:02X} is not an ACSE APDU tag (60..63)", offset=0)
    return decoder(data)


# --- encoding ---------------------------------------------------------------------------


def _encode_names(
    context: ApplicationContext, mechanism_tag: Tag, mechanism: Mechanism | None
) -> tuple[bytes, bytes]:
    return (
        encode_wrapped(_APPLICATION_CONTEXT, OID, _CONTEXT_PREFIX + bytes((context,))),
        b""
        if mechanism is None
        else encode_tlv(mechanism_tag, _MECHANISM_PREFIX + bytes((mechanism,))),
    )


def encode_aarq(aarq: Aarq) -> bytes:
    context, mechanism = _encode_names(aarq.application_context, _AARQ_MECHANISM, aarq.mechanism)
    parts = [context]
    if aarq.called_ap_title is not None:
        parts.append(encode_wrapped(_CALLED_AP_TITLE, OCTET_STRING, aarq.called_ap_title))
    if aarq.calling_ap_title is not None:
        parts.append(encode_wrapped(_CALLING_AP_TITLE, OCTET_STRING, aarq.calling_ap_title))
    if aarq.authentication_required:
        parts.append(encode_tlv(_SENDER_ACSE_REQUIREMENTS, _AUTHENTICATION_BITS))
    parts.append(mechanism)
    if aarq.calling_authentication_value is not None:
        value = aarq.calling_authentication_value
        parts.append(encode_wrapped(_CALLING_AUTHENTICATION_VALUE, CHARSTRING, value))
    if aarq.user_information is not None:
        parts.append(encode_user_information(aarq.user_information))
    return encode_tlv(_AARQ, b"".join(parts))


def encode_aare(aare: Aare) -> bytes:
    context, mechanism = _encode_names(aare.application_context, _AARE_MECHANISM, aare.mechanism)
    source = 1 if isinstance(aare.diagnostic, AcseServiceUserDiagnostic) else 2
    # Results and diagnostics are all below 128: their INTEGER content is one octet.
    diagnostic = encode_wrapped(context_tag(source), INTEGER, bytes((aare.diagnostic,)))
    parts = [
        context,
        encode_wrapped(_RESULT, INTEGER, bytes((aare.result,))),
        encode_tlv(_RESULT_SOURCE_DIAGNOSTIC, diagnostic),
    ]
    if aare.responding_ap_title is not None:
        parts.append(encode_wrapped(_RESPONDING_AP_TITLE, OCTET_STRING, aare.responding_ap_title))
    if aare.authentication_required:
        parts.append(encode_tlv(_RESPONDER_ACSE_REQUIREMENTS, _AUTHENTICATION_BITS))
    parts.append(mechanism)
    if aare.responding_authentication_value is not None:
        value = aare.responding_authentication_value
        parts.append(encode_wrapped(_RESPONDING_AUTHENTICATION_VALUE, CHARSTRING, value))
    if aare.user_information is not None:
        parts.append(encode_user_information(aare.user_information))
    return encode_tlv(_AARE, b"".join(parts))


def build_aarq(
    initiate: RequestInformation,
    *,
    application_context: ApplicationContext = ApplicationContext.LN,
    mechanism: Mechanism | None = None,
    authentication_value: bytes | None = None,
    calling_ap_title: bytes | None = None,
) -> Aarq:
    """An AARQ as a DLMS client sends it, checked against Green Book 9.4.2.2 / 9.2.7.4.

    ``authentication_value`` is the LLS password or the HLS challenge CtoS (8..64 bytes).
    """
    authenticated = mechanism is not None and mechanism is not Mechanism.LOWEST
    if authenticated != (authentication_value is not None):
        raise EncodeError("an authentication value goes with LLS/HLS mechanisms, and only them")
    if mechanism is Mechanism.LLS and not authentication_value:
        raise EncodeError("LLS needs a non-empty password")
    if (
        mechanism is not None
        and mechanism >= Mechanism.HLS
        and authentication_value is not None
        and not 8 <= len(authentication_value) <= 64
    ):
        raise EncodeError("an HLS challenge must be 8..64 bytes")
    needs_title = application_context.ciphered or mechanism is Mechanism.HLS_GMAC
    if needs_title and (calling_ap_title is None or len(calling_ap_title) != SYSTEM_TITLE_SIZE):
        raise EncodeError("ciphering and HLS-GMAC need the 8-byte client system title")
    if application_context.ciphered != isinstance(initiate, CipheredApdu):
        raise EncodeError("ciphered contexts carry a ciphered InitiateRequest, others a plain one")
    return Aarq(
        application_context=application_context,
        user_information=initiate,
        calling_ap_title=calling_ap_title,
        authentication_required=authenticated,
        mechanism=mechanism,
        calling_authentication_value=authentication_value,
    )
