"""Which protocol a new connection speaks, from its first bytes (dlms.md §A4).

1. skip leading ``FE``; next byte ``68`` → DL/T 645 (``dlt645.looks_like_dlt645``);
2. ``00 01 00 01`` → DLMS/COSEM wrapper (IVY/DLMS);
3. a bare APDU tag with a §A3 length rule → raw DLMS (served by the same IVY/DLMS session);
4. otherwise wait for more bytes (a read may deliver just ``00``): after leading noise,
   a later strong signature decides — the wrapper magic, or a DL/T 645 header
   ``68 <6 address bytes> 68`` (dlt645.md §1) — and past ``limit`` bytes we give up.

The decision is made once per connection; the chosen stream decoder resynchronises over
any leading noise itself. Unlike the reference gateway, ``FE FE 68 …`` is DL/T 645.
"""

from __future__ import annotations

import enum
import re
from typing import Final

from .dlt645 import looks_like_dlt645
from .wrapper import RAW_APDU_TAGS

__all__ = ["SNIFF_LIMIT", "ProtocolGuess", "sniff"]

#: "give up after a few hundred bytes" (§A4 step 4).
SNIFF_LIMIT: Final = 256

_WRAPPER_MAGIC = b"\x00\x01\x00\x01"
# Only multi-byte signatures count after noise: one tag byte matches random data too often.
_SIGNATURE_AFTER_NOISE = re.compile(rb"\x00\x01\x00\x01|\x68.{6}\x68", re.DOTALL)


class ProtocolGuess(enum.Enum):
    NEED_MORE = "need_more"
    DLT645 = "dlt645"
    IVY_DLMS = "ivy_dlms"  # wrapped packets (header 00 01 00 01)
    RAW_DLMS = "raw_dlms"  # a bare APDU first; the same session handles both forms
    UNKNOWN = "unknown"

    @property
    def protocol(self) -> str | None:
        """The session to build: ``"dlt645"``, ``"ivy_dlms"``, or None (undecided/unknown)."""
        return _PROTOCOL[self]

    @property
    def is_final(self) -> bool:
        return self is not ProtocolGuess.NEED_MORE


_PROTOCOL: Final[dict[ProtocolGuess, str | None]] = {
    ProtocolGuess.NEED_MORE: None,
    ProtocolGuess.DLT645: "dlt645",
    ProtocolGuess.IVY_DLMS: "ivy_dlms",
    ProtocolGuess.RAW_DLMS: "ivy_dlms",
    ProtocolGuess.UNKNOWN: None,
}


def sniff(first_bytes: bytes, *, limit: int = SNIFF_LIMIT) -> ProtocolGuess:
    """Classify the bytes received so far; call again with more while ``NEED_MORE``.

    Only the first ``limit`` bytes are looked at; when that many arrived without a decision
    the answer is ``UNKNOWN``.
    """
    window = first_bytes[:limit]
    if not window:
        return ProtocolGuess.NEED_MORE
    dlt645 = looks_like_dlt645(window)
    if dlt645:
        return ProtocolGuess.DLT645
    if window.startswith(_WRAPPER_MAGIC):
        return ProtocolGuess.IVY_DLMS
    if dlt645 is False and window[0] in RAW_APDU_TAGS:
        return ProtocolGuess.RAW_DLMS
    signature = _SIGNATURE_AFTER_NOISE.search(window, 1)
    if signature is not None:
        return ProtocolGuess.IVY_DLMS if window[signature.start()] == 0 else ProtocolGuess.DLT645
    return ProtocolGuess.NEED_MORE if len(first_bytes) < limit else ProtocolGuess.UNKNOWN
