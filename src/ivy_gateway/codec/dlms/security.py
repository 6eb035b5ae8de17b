"""DLMS/COSEM security suite 0: AES-GCM-128 protection and HLS-GMAC (Green Book 9.2).

Cryptography (Green Book 9.2.3.3.7; dlms.md G2), IV = sender system title(8) || IC(4)::

    SC 0x30  C, T = AES-GCM(key, IV, plaintext, AAD = SC || AK); T = first 12 tag bytes
    SC 0x10  T = GMAC(key, IV, AAD = SC || AK || plaintext); information = plaintext
    SC 0x20  C = AES-GCM keystream XOR plaintext; no T

    HLS-GMAC f(challenge) = 10 || IC || GMAC(EK, title || IC, 10 || AK || challenge)

The wire format of ciphered APDUs is in ``apdu/ciphered.py`` and re-exported here.
``SecurityContext`` is what an association uses: it caches the key schedules, numbers what
it sends and rejects replays. The module functions are one-shot conveniences.

Every failure of keys, counters or tags is a ``SecurityError`` (a ``DecodeError``); no
message or repr contains key material.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import EncodeError, SecurityError
from .apdu.ciphered import (
    AUTHENTICATED_ENCRYPTED,
    AUTHENTICATED_ONLY,
    ENCRYPTED_ONLY,
    MAX_INVOCATION_COUNTER,
    PLAIN_TAGS,
    SYSTEM_TITLE_SIZE,
    TAG_SIZE,
    CipheredApdu,
    CipheredTag,
    Fields,
    KeyId,
    SecurityControl,
    ciphered_tag_for,
    decode_ciphered_apdu,
    encode_ciphered_apdu,
    key_id_of,
    split_ciphered_apdu,
)

__all__ = [
    "AUTHENTICATED_ENCRYPTED",
    "AUTHENTICATED_ONLY",
    "ENCRYPTED_ONLY",
    "HLS_GMAC_SECURITY_CONTROL",
    "KEY_SIZE",
    "CipheredApdu",
    "CipheredTag",
    "KeyId",
    "SecurityContext",
    "SecurityControl",
    "SecurityKeys",
    "compute_hls_gmac",
    "decipher_apdu",
    "decode_ciphered_apdu",
    "encipher_apdu",
    "encode_ciphered_apdu",
    "verify_hls_gmac",
]

KEY_SIZE = 16  # suite 0 = AES-128 (Green Book 9.2.3.7)
_GCM_TAG_SIZE = 16
#: f(StoC)/f(CtoS) always use "authentication only" (Green Book 9.2.7.4, HLS mechanism 5).
HLS_GMAC_SECURITY_CONTROL = AUTHENTICATED_ONLY


def _check_size(what: str, value: bytes, size: int) -> None:
    # Only the length goes into the message: the value may be a key.
    if len(value) != size:
        raise SecurityError(f"{what} must be {size} bytes, got {len(value)}")


def _check_counter(invocation_counter: int) -> None:
    if not 0 <= invocation_counter <= MAX_INVOCATION_COUNTER:
        raise SecurityError(f"invocation counter {invocation_counter} outside 0..2^32-1")


class _KeyCipher:
    """AES-GCM under one key, with the key schedule set up once.

    ``AESGCM`` keeps its initialised cipher context between calls; its two calls per APDU
    measured ~4x faster than one new ``Cipher(AES(key), GCM(iv, tag, min_tag_length=12))``
    decryptor per APDU, even with the ``AES(key)`` object cached (ECOSYSTEM §4 item 13;
    benchmarks/bench_dlms_security.py has the end-to-end figures). ``AESGCM.decrypt`` refuses
    12-byte tags, hence the two encryptions: GCM's keystream depends only on key and IV, so
    "encrypting" C yields P, and encrypting P again yields C with the full tag of (AAD, C),
    whose first 12 bytes are compared in constant time before P is released.
    """

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        _check_size("key", key, KEY_SIZE)
        self._aead = AESGCM(key)

    def seal(self, sc: int, iv: bytes, ak: bytes, plaintext: bytes) -> tuple[bytes, bytes]:
        """Return ``(information, tag)`` for ``plaintext`` under security control ``sc``."""
        if sc & 0x30 == 0x30:
            out = self._aead.encrypt(iv, plaintext, bytes((sc,)) + ak)
            return out[:-_GCM_TAG_SIZE], out[-_GCM_TAG_SIZE : -_GCM_TAG_SIZE + TAG_SIZE]
        if sc & 0x10:
            return plaintext, self._aead.encrypt(iv, b"", bytes((sc,)) + ak + plaintext)[:TAG_SIZE]
        return self._aead.encrypt(iv, plaintext, None)[:-_GCM_TAG_SIZE], b""

    def open(self, sc: int, iv: bytes, ak: bytes, information: bytes, tag: bytes) -> bytes:
        """Return the plaintext, or raise ``SecurityError`` when the tag does not match."""
        aead = self._aead
        if sc & 0x30 == 0x30:
            plaintext = aead.encrypt(iv, information, None)[:-_GCM_TAG_SIZE]
            expected = aead.encrypt(iv, plaintext, bytes((sc,)) + ak)[-_GCM_TAG_SIZE:][:TAG_SIZE]
        elif sc & 0x10:
            plaintext = information
            expected = aead.encrypt(iv, b"", bytes((sc,)) + ak + plaintext)[:TAG_SIZE]
        else:
            return aead.encrypt(iv, information, None)[:-_GCM_TAG_SIZE]
        if not hmac.compare_digest(expected, tag):
            raise SecurityError(
                "authentication tag mismatch (wrong key or system title, or altered data)"
            )
        return plaintext


def _checked_security_control(sc: int) -> int:
    if sc & 0x0F:
        raise SecurityError(f"security suite {sc & 0x0F} is not supported (only suite 0)")
    if sc & 0x80:
        raise SecurityError("compressed APDUs are not supported")
    if not sc & 0x30:
        raise SecurityError("security control asks for neither authentication nor encryption")
    return sc


def _seal_apdu(
    cipher: _KeyCipher,
    apdu: bytes,
    *,
    ak: bytes,
    system_title: bytes,
    invocation_counter: int,
    security_control: SecurityControl,
    dedicated: bool,
    general: bool,
) -> bytes:
    _check_size("authentication key", ak, KEY_SIZE)
    _check_size("system title", system_title, SYSTEM_TITLE_SIZE)
    _check_counter(invocation_counter)
    sc = _checked_security_control(security_control.to_byte())
    if general:
        tag = CipheredTag.GENERAL_DED_CIPHERING if dedicated else CipheredTag.GENERAL_GLO_CIPHERING
    elif apdu:
        tag = ciphered_tag_for(apdu[0], dedicated=dedicated)
    else:
        raise EncodeError("cannot cipher an empty APDU")
    iv = system_title + invocation_counter.to_bytes(4, "big")
    information, auth_tag = cipher.seal(sc, iv, ak, apdu)
    return encode_ciphered_apdu(
        CipheredApdu(
            tag,
            security_control,
            invocation_counter,
            information,
            auth_tag,
            system_title if general else None,
        )
    )


def _open(cipher: _KeyCipher, fields: Fields, title: bytes, ak: bytes) -> bytes:
    """Verify and decipher split APDU fields; sizes of ``ak`` and ``title`` already checked."""
    tag, sc, invocation_counter, information, auth_tag, _ = fields
    if sc & 0x8F or not sc & 0x30:  # not suite 0, compressed, or no protection at all
        _checked_security_control(sc)
    plaintext = cipher.open(
        sc, title + invocation_counter.to_bytes(4, "big"), ak, information, auth_tag
    )
    expected = PLAIN_TAGS.get(tag)
    if expected is not None and (not plaintext or plaintext[0] != expected):
        name = CipheredTag(tag).apdu_name
        raise SecurityError(f"{name} does not contain an APDU of tag {expected:02X}")
    return plaintext


def _fields(data: bytes | CipheredApdu) -> Fields:
    if not isinstance(data, CipheredApdu):
        return split_ciphered_apdu(data)
    return (
        data.tag.value,
        data.security_control.to_byte(),
        data.invocation_counter,
        data.information,
        data.auth_tag,
        data.system_title,
    )


def encipher_apdu(
    apdu: bytes,
    *,
    key: bytes,
    ak: bytes,
    system_title: bytes,
    invocation_counter: int,
    security_control: SecurityControl = AUTHENTICATED_ENCRYPTED,
    dedicated: bool = False,
    general: bool = False,
) -> bytes:
    """Protect a plain xDLMS APDU (one-shot; ``SecurityContext`` caches the key schedule).

    ``key`` is the EK (or the dedicated/broadcast key), ``system_title`` the sender's.
    """
    return _seal_apdu(
        _KeyCipher(key),
        apdu,
        ak=ak,
        system_title=system_title,
        invocation_counter=invocation_counter,
        security_control=security_control,
        dedicated=dedicated,
        general=general,
    )


def decipher_apdu(
    data: bytes | CipheredApdu, *, key: bytes, ak: bytes, system_title: bytes | None = None
) -> bytes:
    """Verify and decipher a protected APDU; no replay check (see ``SecurityContext``).

    ``system_title`` is the *sender's*; general-ciphering APDUs carry their own.
    """
    fields = _fields(data)
    title = fields[5] or system_title
    if title is None:
        raise SecurityError("the sender's system title is needed to decipher this APDU")
    _check_size("authentication key", ak, KEY_SIZE)
    _check_size("system title", title, SYSTEM_TITLE_SIZE)
    return _open(_KeyCipher(key), fields, title, ak)


def _hls_gmac(cipher: _KeyCipher, challenge: bytes, ak: bytes, iv: bytes) -> bytes:
    sc = HLS_GMAC_SECURITY_CONTROL.to_byte()
    return bytes((sc,)) + iv[8:] + cipher.seal(sc, iv, ak, challenge)[1]


def compute_hls_gmac(
    challenge: bytes, *, ek: bytes, ak: bytes, system_title: bytes, invocation_counter: int
) -> bytes:
    """f(challenge) = SC(0x10) || IC || GMAC(EK, title || IC, 0x10 || AK || challenge)[:12].

    The client answers StoC with its own title (pass 3); the server answers CtoS (pass 4).
    """
    _check_size("authentication key", ak, KEY_SIZE)
    _check_size("system title", system_title, SYSTEM_TITLE_SIZE)
    _check_counter(invocation_counter)
    iv = system_title + invocation_counter.to_bytes(4, "big")
    return _hls_gmac(_KeyCipher(ek), challenge, ak, iv)


def _parse_hls_reply(reply: bytes) -> int:
    if len(reply) != 1 + 4 + TAG_SIZE:
        raise SecurityError(f"HLS-GMAC reply of {len(reply)} bytes, expected 17")
    if reply[0] != HLS_GMAC_SECURITY_CONTROL.to_byte():
        raise SecurityError(f"HLS-GMAC reply has security control {reply[0]:02X}, expected 10")
    return int.from_bytes(reply[1:5], "big")


def _check_hls_reply(
    cipher: _KeyCipher, reply: bytes, challenge: bytes, ak: bytes, iv: bytes
) -> None:
    if not hmac.compare_digest(_hls_gmac(cipher, challenge, ak, iv), reply):
        raise SecurityError("HLS-GMAC reply does not authenticate the peer")


def verify_hls_gmac(
    reply: bytes, challenge: bytes, *, ek: bytes, ak: bytes, system_title: bytes
) -> int:
    """Check the peer's f(challenge) (``system_title`` is the peer's); return its counter."""
    _check_size("authentication key", ak, KEY_SIZE)
    _check_size("system title", system_title, SYSTEM_TITLE_SIZE)
    invocation_counter = _parse_hls_reply(reply)
    iv = system_title + reply[1:5]
    _check_hls_reply(_KeyCipher(ek), reply, challenge, ak, iv)
    return invocation_counter


@dataclass(frozen=True, slots=True, repr=False)
class SecurityKeys:
    """The long-term keys of one client/server pair (suite 0: 16 bytes each)."""

    ek: bytes  #: global unicast encryption key
    ak: bytes  #: authentication key
    broadcast_key: bytes | None = None  #: global broadcast encryption key

    def __post_init__(self) -> None:
        _check_size("encryption key", self.ek, KEY_SIZE)
        _check_size("authentication key", self.ak, KEY_SIZE)
        if self.broadcast_key is not None:
            _check_size("broadcast key", self.broadcast_key, KEY_SIZE)

    def __repr__(self) -> str:
        broadcast = "None" if self.broadcast_key is None else "***"
        return f"SecurityKeys(ek=***, ak=***, broadcast_key={broadcast})"


class _ReplayGuard:
    """Highest invocation counter accepted per (sender system title, key) (Green Book
    9.2.3.5: a receiver accepts only counters above the last one it accepted). Keys are
    plain ints (``KeyId`` values): hashing an enum member is a Python call on the hot path."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last: dict[tuple[bytes, int], int] = {}

    def check(self, title: bytes, key_id: int, invocation_counter: int) -> None:
        last = self.last.get((title, key_id))
        if last is not None and invocation_counter <= last:
            raise SecurityError(
                f"invocation counter {invocation_counter} from {title.hex().upper()} "
                f"({KeyId(key_id).description}) not above the last accepted {last}: replay"
            )

    def accept(self, title: bytes, key_id: int, invocation_counter: int) -> None:
        self.last[(title, key_id)] = invocation_counter

    def forget(self, key_id: int) -> None:
        self.last = {k: v for k, v in self.last.items() if k[1] != key_id}


class SecurityContext:
    """One side's security state for an association: keys, own system title and next
    invocation counter, the peer's system title and a replay guard.

    Key schedules are set up once per key. The replay guard moves only on success: a forged
    or corrupted APDU never advances it.
    """

    __slots__ = (
        "_ciphers",
        "_guard",
        "_keys",
        "_peer_system_title",
        "invocation_counter",
        "system_title",
    )

    def __init__(
        self,
        keys: SecurityKeys,
        *,
        system_title: bytes,
        invocation_counter: int = 0,
        peer_system_title: bytes | None = None,
        dedicated_key: bytes | None = None,
    ) -> None:
        _check_size("system title", system_title, SYSTEM_TITLE_SIZE)
        _check_counter(invocation_counter)
        self._keys = keys
        # indexed by KeyId: unicast, broadcast, dedicated
        self._ciphers: list[_KeyCipher | None] = [
            _KeyCipher(keys.ek),
            None if keys.broadcast_key is None else _KeyCipher(keys.broadcast_key),
            None,
        ]
        self._guard = _ReplayGuard()
        self.system_title = system_title
        #: the counter the next protected APDU (or HLS reply) we send will carry
        self.invocation_counter = invocation_counter
        self.peer_system_title = peer_system_title
        if dedicated_key is not None:
            self.set_dedicated_key(dedicated_key)

    @property
    def peer_system_title(self) -> bytes | None:
        """The other side's title (AARQ calling-AP-title / AARE responding-AP-title)."""
        return self._peer_system_title

    @peer_system_title.setter
    def peer_system_title(self, title: bytes | None) -> None:
        if title is not None:
            _check_size("peer system title", title, SYSTEM_TITLE_SIZE)
        self._peer_system_title = title

    def __repr__(self) -> str:
        peer = None if self.peer_system_title is None else self.peer_system_title.hex().upper()
        dedicated = "None" if self._ciphers[KeyId.DEDICATED] is None else "***"
        return (
            f"SecurityContext(keys={self._keys!r}, system_title={self.system_title.hex().upper()}, "
            f"invocation_counter={self.invocation_counter}, peer_system_title={peer}, "
            f"dedicated_key={dedicated})"
        )

    def set_dedicated_key(self, key: bytes | None) -> None:
        """Install (or with ``None`` drop) the dedicated key of the current association;
        counters seen under the previous dedicated key are forgotten."""
        self._ciphers[KeyId.DEDICATED] = None if key is None else _KeyCipher(key)
        self._guard.forget(KeyId.DEDICATED.value)

    def _cipher(self, key_id: int) -> _KeyCipher:
        cipher = self._ciphers[key_id]
        if cipher is None:
            raise SecurityError(f"no {KeyId(key_id).description} is configured")
        return cipher

    def _next_counter(self) -> int:
        counter = self.invocation_counter
        if counter > MAX_INVOCATION_COUNTER:
            raise SecurityError("invocation counter exhausted: new keys are needed")
        self.invocation_counter = counter + 1
        return counter

    def encipher(
        self,
        apdu: bytes,
        *,
        security_control: SecurityControl = AUTHENTICATED_ENCRYPTED,
        dedicated: bool = False,
        general: bool = False,
    ) -> bytes:
        """Protect ``apdu`` with our system title and the next invocation counter."""
        if dedicated:
            key_id = KeyId.DEDICATED
        else:
            key_id = KeyId.BROADCAST if security_control.broadcast_key else KeyId.UNICAST
        cipher = self._cipher(key_id)
        # The counter is spent even if sealing fails: reusing an IV under GCM is fatal,
        # skipping a counter value is harmless.
        counter = self._next_counter()
        return _seal_apdu(
            cipher,
            apdu,
            ak=self._keys.ak,
            system_title=self.system_title,
            invocation_counter=counter,
            security_control=security_control,
            dedicated=dedicated,
            general=general,
        )

    def decipher(self, data: bytes | CipheredApdu) -> bytes:
        """Verify, replay-check and decipher an APDU from the peer; return the plain APDU."""
        fields = _fields(data)
        title = fields[5] or self._peer_system_title
        if title is None:
            raise SecurityError("the peer's system title is not known yet")
        key_id = key_id_of(fields[0], fields[1])
        cipher = self._cipher(key_id)
        self._guard.check(title, key_id, fields[2])
        plaintext = _open(cipher, fields, title, self._keys.ak)
        self._guard.accept(title, key_id, fields[2])
        return plaintext

    def reply_to_challenge(self, challenge: bytes) -> bytes:
        """HLS-GMAC f(challenge) with our title and next counter (client: f(StoC), pass 3)."""
        iv = self.system_title + self._next_counter().to_bytes(4, "big")
        return _hls_gmac(self._unicast, challenge, self._keys.ak, iv)

    def verify_challenge_reply(self, reply: bytes, challenge: bytes) -> None:
        """Check the peer's f(challenge) (client: f(CtoS), pass 4), replay-checked."""
        title = self._peer_system_title
        if title is None:
            raise SecurityError("the peer's system title is not known yet")
        counter = _parse_hls_reply(reply)
        self._guard.check(title, KeyId.UNICAST.value, counter)
        _check_hls_reply(self._unicast, reply, challenge, self._keys.ak, title + reply[1:5])
        self._guard.accept(title, KeyId.UNICAST.value, counter)

    @property
    def _unicast(self) -> _KeyCipher:
        return self._cipher(KeyId.UNICAST.value)
