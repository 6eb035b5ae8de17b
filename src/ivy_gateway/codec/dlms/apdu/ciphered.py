"""Ciphered xDLMS APDUs: the wire format only, no cryptography (Green Book 9.2.7.2.4, 9.5).

::

    glo-/ded-xxx     tag | BER length | SC | IC(4) | information | T(12)
    general-glo/ded-ciphering
                     tag | 08 | system title(8) | BER length | SC | IC(4) | information | T(12)

    SC  security control: bits 0-3 suite id, 4 authentication, 5 encryption,
        6 broadcast key, 7 compression
    IC  invocation counter of the sender, big-endian
    T   first 12 octets of the GCM tag; absent when SC has no authentication bit

Deciphering and enciphering live in ``ivy_gateway.codec.dlms.security``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from ...errors import DecodeError, EncodeError, TruncatedError
from ..ber import decode_length, encode_length

__all__ = [
    "AUTHENTICATED_ENCRYPTED",
    "AUTHENTICATED_ONLY",
    "ENCRYPTED_ONLY",
    "MAX_INVOCATION_COUNTER",
    "PLAIN_TAGS",
    "SYSTEM_TITLE_SIZE",
    "TAG_SIZE",
    "CipheredApdu",
    "CipheredTag",
    "Fields",
    "KeyId",
    "SecurityControl",
    "ciphered_tag_for",
    "decode_ciphered_apdu",
    "encode_ciphered_apdu",
    "key_id_of",
    "split_ciphered_apdu",
]

SYSTEM_TITLE_SIZE = 8
TAG_SIZE = 12  # DLMS truncates the GCM tag to 96 bits
MAX_INVOCATION_COUNTER = 0xFFFF_FFFF


@dataclass(frozen=True, slots=True)
class SecurityControl:
    """The security control byte (Green Book 9.2.7.2.4.2)."""

    suite_id: int = 0
    authentication: bool = False
    encryption: bool = False
    broadcast_key: bool = False
    compression: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.suite_id <= 15:
            raise EncodeError(f"security suite id {self.suite_id} outside 0..15")

    @classmethod
    def from_byte(cls, value: int) -> SecurityControl:
        return cls(
            suite_id=value & 0x0F,
            authentication=bool(value & 0x10),
            encryption=bool(value & 0x20),
            broadcast_key=bool(value & 0x40),
            compression=bool(value & 0x80),
        )

    def to_byte(self) -> int:
        return (
            self.suite_id
            | (0x10 if self.authentication else 0)
            | (0x20 if self.encryption else 0)
            | (0x40 if self.broadcast_key else 0)
            | (0x80 if self.compression else 0)
        )


_SECURITY_CONTROLS = tuple(SecurityControl.from_byte(value) for value in range(256))
AUTHENTICATED_ENCRYPTED = SecurityControl(authentication=True, encryption=True)
AUTHENTICATED_ONLY = SecurityControl(authentication=True)
ENCRYPTED_ONLY = SecurityControl(encryption=True)


class CipheredTag(IntEnum):
    """Tags of ciphered APDUs (Green Book 9.5, xDLMS-APDU CHOICE; dlms.md Part B)."""

    GLO_INITIATE_REQUEST = 0x21
    GLO_INITIATE_RESPONSE = 0x28
    GLO_CONFIRMED_SERVICE_ERROR = 0x2E
    DED_INITIATE_REQUEST = 0x41
    DED_INITIATE_RESPONSE = 0x48
    DED_CONFIRMED_SERVICE_ERROR = 0x4E
    GLO_GET_REQUEST = 0xC8
    GLO_SET_REQUEST = 0xC9
    GLO_EVENT_NOTIFICATION_REQUEST = 0xCA
    GLO_ACTION_REQUEST = 0xCB
    GLO_GET_RESPONSE = 0xCC
    GLO_SET_RESPONSE = 0xCD
    GLO_ACTION_RESPONSE = 0xCF
    DED_GET_REQUEST = 0xD0
    DED_SET_REQUEST = 0xD1
    DED_EVENT_NOTIFICATION_REQUEST = 0xD2
    DED_ACTION_REQUEST = 0xD3
    DED_GET_RESPONSE = 0xD4
    DED_SET_RESPONSE = 0xD5
    DED_ACTION_RESPONSE = 0xD7
    GENERAL_GLO_CIPHERING = 0xDB
    GENERAL_DED_CIPHERING = 0xDC

    @property
    def is_general(self) -> bool:
        """general-glo/ded-ciphering carry the sender's system title themselves."""
        return self >= CipheredTag.GENERAL_GLO_CIPHERING

    @property
    def apdu_name(self) -> str:
        """The ASN.1 name, e.g. ``glo-get-request``."""
        return self.name.lower().replace("_", "-")


# plain tag -> (glo tag, ded tag): InitiateRequest 01, InitiateResponse 08,
# ConfirmedServiceError 0E, GET/SET/EventNotification/ACTION requests and responses C0..C7.
_SERVICE_TAGS: dict[int, tuple[CipheredTag, CipheredTag]] = {
    0x01: (CipheredTag.GLO_INITIATE_REQUEST, CipheredTag.DED_INITIATE_REQUEST),
    0x08: (CipheredTag.GLO_INITIATE_RESPONSE, CipheredTag.DED_INITIATE_RESPONSE),
    0x0E: (CipheredTag.GLO_CONFIRMED_SERVICE_ERROR, CipheredTag.DED_CONFIRMED_SERVICE_ERROR),
    0xC0: (CipheredTag.GLO_GET_REQUEST, CipheredTag.DED_GET_REQUEST),
    0xC1: (CipheredTag.GLO_SET_REQUEST, CipheredTag.DED_SET_REQUEST),
    0xC2: (CipheredTag.GLO_EVENT_NOTIFICATION_REQUEST, CipheredTag.DED_EVENT_NOTIFICATION_REQUEST),
    0xC3: (CipheredTag.GLO_ACTION_REQUEST, CipheredTag.DED_ACTION_REQUEST),
    0xC4: (CipheredTag.GLO_GET_RESPONSE, CipheredTag.DED_GET_RESPONSE),
    0xC5: (CipheredTag.GLO_SET_RESPONSE, CipheredTag.DED_SET_RESPONSE),
    0xC7: (CipheredTag.GLO_ACTION_RESPONSE, CipheredTag.DED_ACTION_RESPONSE),
}
#: ciphered tag -> the plain tag its plaintext must start with (not for general-*-ciphering)
PLAIN_TAGS: dict[int, int] = {
    ciphered.value: plain for plain, pair in _SERVICE_TAGS.items() for ciphered in pair
}
_DEDICATED_TAGS = frozenset(pair[1].value for pair in _SERVICE_TAGS.values()) | {
    CipheredTag.GENERAL_DED_CIPHERING.value
}
_TAGS_BY_VALUE: dict[int, CipheredTag] = {t.value: t for t in CipheredTag}


class KeyId(IntEnum):
    """Which key protects an APDU; invocation counters are tracked per sender and per key."""

    UNICAST = 0  #: global unicast encryption key (EK)
    BROADCAST = 1  #: global broadcast encryption key
    DEDICATED = 2  #: the dedicated key of the association

    @property
    def description(self) -> str:
        return _KEY_DESCRIPTIONS[self]


_KEY_DESCRIPTIONS = {
    KeyId.UNICAST: "global unicast encryption key",
    KeyId.BROADCAST: "global broadcast encryption key",
    KeyId.DEDICATED: "dedicated key",
}


# Plain ints for the hot path: reading an enum member's ``.value`` is a Python-level call.
_UNICAST, _BROADCAST, _DEDICATED = (int(k) for k in KeyId)
_FIRST_GENERAL_TAG = int(CipheredTag.GENERAL_GLO_CIPHERING)


def key_id_of(tag: int, security_control: int) -> int:
    """The ``KeyId`` (as a plain int, for the hot path) protecting an APDU."""
    if tag in _DEDICATED_TAGS:
        return _DEDICATED
    return _BROADCAST if security_control & 0x40 else _UNICAST


@dataclass(frozen=True, slots=True)
class CipheredApdu:
    """A parsed, still protected APDU. ``information`` is the ciphertext (or, with
    authentication only, the plaintext); ``auth_tag`` is empty when not authenticated;
    ``system_title`` is carried only by general-glo/ded-ciphering."""

    tag: CipheredTag
    security_control: SecurityControl
    invocation_counter: int
    information: bytes
    auth_tag: bytes = b""
    system_title: bytes | None = None

    @property
    def key_id(self) -> KeyId:
        return KeyId(key_id_of(self.tag.value, self.security_control.to_byte()))


def ciphered_tag_for(plain_tag: int, *, dedicated: bool = False) -> CipheredTag:
    """The glo- (or ded-) tag that carries an APDU starting with ``plain_tag``."""
    pair = _SERVICE_TAGS.get(plain_tag)
    if pair is None:
        raise EncodeError(f"APDU tag {plain_tag:02X} has no glo-/ded- form (use general ciphering)")
    return pair[1] if dedicated else pair[0]


#: (tag, SC, IC, information, auth tag, system title or None) of a ciphered APDU
Fields = tuple[int, int, int, bytes, bytes, bytes | None]


def split_ciphered_apdu(data: bytes) -> Fields:
    """Split a whole ciphered APDU into its fields, with plain ints and bytes only.

    ``decode_ciphered_apdu`` wraps this into a ``CipheredApdu``; ``SecurityContext`` uses it
    directly, because building the typed objects cost more than the AES work
    (benchmarks/bench_dlms_security.py).
    """
    if not data:
        raise TruncatedError("ciphered APDU is empty", offset=0)
    tag = data[0]
    if tag not in _TAGS_BY_VALUE:
        raise DecodeError(f"0x{tag:02X} is not a ciphered APDU tag", offset=0)
    pos = 1
    system_title = None
    if tag >= _FIRST_GENERAL_TAG:
        # system-title OCTET STRING (A-XDR): suite 0 titles are always 8 bytes.
        title_length, pos = decode_length(data, pos)
        if title_length != SYSTEM_TITLE_SIZE:
            raise DecodeError(f"system title of {title_length} bytes, expected 8", offset=1)
        if pos + SYSTEM_TITLE_SIZE > len(data):
            raise TruncatedError("system title cut short", offset=pos)
        system_title = bytes(data[pos : pos + SYSTEM_TITLE_SIZE])
        pos += SYSTEM_TITLE_SIZE
    if len(data) > pos and data[pos] < 0x80:  # short-form length, by far the common case
        length, pos = data[pos], pos + 1
    else:
        length, pos = decode_length(data, pos)
    end = pos + length
    if end > len(data):
        raise TruncatedError(f"ciphered content of {length} bytes cut short", offset=pos)
    if end < len(data):
        raise DecodeError(f"{len(data) - end} bytes after the ciphered APDU", offset=end)
    if length < 5:
        raise DecodeError("ciphered content shorter than SC and invocation counter", offset=pos)
    sc = data[pos]
    invocation_counter = int.from_bytes(data[pos + 1 : pos + 5], "big")
    if not sc & 0x10:
        return tag, sc, invocation_counter, bytes(data[pos + 5 : end]), b"", system_title
    if length < 5 + TAG_SIZE:
        raise DecodeError("authenticated content shorter than its 12-byte tag", offset=pos)
    information = bytes(data[pos + 5 : end - TAG_SIZE])
    return tag, sc, invocation_counter, information, bytes(data[end - TAG_SIZE : end]), system_title


def decode_ciphered_apdu(data: bytes) -> CipheredApdu:
    """Parse a whole glo-/ded-/general-ciphered APDU (no keys needed, nothing verified)."""
    tag, sc, invocation_counter, information, auth_tag, system_title = split_ciphered_apdu(data)
    return CipheredApdu(
        _TAGS_BY_VALUE[tag],
        _SECURITY_CONTROLS[sc],
        invocation_counter,
        information,
        auth_tag,
        system_title,
    )


def encode_ciphered_apdu(apdu: CipheredApdu) -> bytes:
    """The wire form of ``apdu`` (the inverse of ``decode_ciphered_apdu``)."""
    if not 0 <= apdu.invocation_counter <= MAX_INVOCATION_COUNTER:
        raise EncodeError(f"invocation counter {apdu.invocation_counter} outside 0..2^32-1")
    if len(apdu.auth_tag) != (TAG_SIZE if apdu.security_control.authentication else 0):
        raise EncodeError("authentication tag length does not match the security control")
    content = b"".join(
        (
            bytes((apdu.security_control.to_byte(),)),
            apdu.invocation_counter.to_bytes(4, "big"),
            apdu.information,
            apdu.auth_tag,
        )
    )
    head = bytes((apdu.tag,))
    if apdu.tag.is_general:
        if apdu.system_title is None or len(apdu.system_title) != SYSTEM_TITLE_SIZE:
            raise EncodeError("general ciphering needs an 8-byte system title")
        head += bytes((SYSTEM_TITLE_SIZE,)) + apdu.system_title
    elif apdu.system_title is not None:
        raise EncodeError(f"{apdu.tag.apdu_name} carries no system title")
    return head + encode_length(len(content)) + content
