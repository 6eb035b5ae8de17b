"""Deciphering a glo-get-response (SC 30, AES-GCM-128): ours vs dlms-cosem and gurux-dlms.

All contenders get the bytes of vector ``ciphered_glo_get_response_auth_enc`` and return
the plain GET.response:

* ivy, association path: ``SecurityContext.decipher`` (parse, replay guard, tag check) on a
  stream of fresh APDUs with rising counters, since a replayed counter is refused;
* ivy, one-shot: ``decipher_apdu`` (parse + new key schedule per call, no replay guard);
* the alternative not taken: one cached ``algorithms.AES(key)`` and a new low-level
  ``Cipher``/``GCM`` decryptor per APDU (ECOSYSTEM §4 item 13), on our parser;
* dlms-cosem: header sliced by hand + ``dlms_cosem.security.decrypt`` (a new
  ``Cipher(AES(key), GCM(...))`` per call; no parsing of its own is timed);
* gurux-dlms: ``GXDLMSChippering.decryptAesGcm`` (pure Python; prints to stdout per APDU,
  which is sent to /dev/null).

The association path caches the key schedule per key (``AESGCM``) and decrypts with two GCM
encryptions because ``AESGCM.decrypt`` refuses 12-byte tags; see ``security._KeyCipher``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from harness import Row, rate
from ivy_gateway.codec.dlms.security import (
    SecurityContext,
    SecurityKeys,
    decipher_apdu,
)

EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
CLIENT = bytes.fromhex("4D4D4D0000000001")
SERVER = bytes.fromhex("4D4D4D0000BC614E")
VECTOR = bytes.fromhex("CC233000000043A22499810AAA90B0E60CE0329AE124627256BAC96FFE17649BB3C03AD598")
PLAIN = bytes.fromhex("C401C100090C07EA011E05042213008000FF")
_STREAM = 20_000


class _Association:
    """Deciphers pre-made responses with rising counters; a new context per lap."""

    def __init__(self) -> None:
        server = SecurityContext(SecurityKeys(ek=EK, ak=AK), system_title=SERVER)
        self._apdus = [server.encipher(PLAIN) for _ in range(_STREAM)]
        self._index = _STREAM

    def __call__(self) -> bytes:
        if self._index == _STREAM:
            self._client = SecurityContext(
                SecurityKeys(ek=EK, ak=AK), system_title=CLIENT, peer_system_title=SERVER
            )
            self._index = 0
        apdu = self._apdus[self._index]
        self._index += 1
        return self._client.decipher(apdu)


def _ours_one_shot() -> bytes:
    return decipher_apdu(VECTOR, key=EK, ak=AK, system_title=SERVER)


def _low_level_cached_aes() -> Callable[[], bytes]:
    """The alternative we measured against: one cached ``algorithms.AES(key)``, a new
    ``Cipher(..., GCM(iv, tag, min_tag_length=12))`` decryptor per APDU."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    from ivy_gateway.codec.dlms.apdu.ciphered import split_ciphered_apdu

    aes = algorithms.AES(EK)

    def run() -> bytes:
        _, sc, counter, information, tag, _ = split_ciphered_apdu(VECTOR)
        iv = SERVER + counter.to_bytes(4, "big")
        decryptor = Cipher(aes, modes.GCM(iv, tag, min_tag_length=12)).decryptor()
        decryptor.authenticate_additional_data(bytes((sc,)) + AK)
        return decryptor.update(information) + decryptor.finalize()

    return run


def _dlms_cosem() -> Callable[[], bytes]:
    from dlms_cosem import security

    def run() -> bytes:
        # glo-xxx: tag, length (short form here), SC, IC(4), ciphertext || tag
        sc = security.SecurityControlField.from_bytes(VECTOR[2:3])
        counter = int.from_bytes(VECTOR[3:7], "big")
        plain: bytes = security.decrypt(sc, SERVER, counter, EK, VECTOR[7:], AK)
        return plain

    return run


def _gurux() -> Callable[[], bytes]:
    from gurux_dlms import GXByteBuffer
    from gurux_dlms.AesGcmParameter import AesGcmParameter
    from gurux_dlms.GXDLMSChippering import GXDLMSChippering
    from gurux_dlms.GXDLMSSettings import GXDLMSSettings

    settings = GXDLMSSettings(False, None)

    def run() -> bytes:
        parameter = AesGcmParameter(0, SERVER, EK, AK)
        parameter.settings = settings
        return bytes(GXDLMSChippering.decryptAesGcm(settings, parameter, GXByteBuffer(VECTOR)))

    return run


def results() -> list[Row]:
    area = "dlms glo-get-response decipher"
    association = _Association()
    low_level = _low_level_cached_aes()
    cosem = _dlms_cosem()
    gurux = _gurux()
    with open(os.devnull, "w", encoding="utf-8") as sink, contextlib.redirect_stdout(sink):
        for contender in (association, _ours_one_shot, low_level, cosem, gurux):
            assert contender() == PLAIN
        ours = rate(association)
        one_shot = rate(_ours_one_shot)
        low_level_rate = rate(low_level)
        cosem_rate = rate(cosem)
        gurux_rate = rate(gurux, min_time_s=0.3, repeat=2)
    verdict = "ok" if ours >= cosem_rate else "SLOWER THAN dlms-cosem"
    return [
        Row(area, "ivy SecurityContext.decipher", ours, "APDUs/s", "≥ dlms-cosem"),
        Row(area, "ivy decipher_apdu (one-shot)", one_shot, "APDUs/s"),
        Row(area, "alt: cached AES + Cipher/GCM each", low_level_rate, "APDUs/s", note="not used"),
        Row(area, "dlms-cosem security.decrypt", cosem_rate, "APDUs/s"),
        Row(area, "gurux-dlms decryptAesGcm", gurux_rate, "APDUs/s"),
        Row(area, "ivy context / dlms-cosem", ours / cosem_rate, "×", "≥1", verdict),
        Row(area, "ivy context / gurux-dlms", ours / gurux_rate, "×"),
    ]
