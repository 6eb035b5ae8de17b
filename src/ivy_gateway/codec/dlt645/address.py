"""The 6-byte address field (reference §2).

```
wire:   A0 A1 A2 A3 A4 A5        A0 = two least significant digits
text:   A5 A4 A3 A2 A1 A0        as printed on the meter, high digit first
        34 12 00 00 00 00   <->  "000000001234"
```

Each byte is either two BCD digits or ``AA`` (wildcard). All ``99`` is broadcast, all
``AA`` the full wildcard, and low real digits under high ``AA`` bytes the abbreviated
wildcard (``AAAAAAAA1234``). The address is never offset by 0x33.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BROADCAST", "WILDCARD", "Address"]

_WILDCARD_BYTE = 0xAA
#: Bytes allowed in an address: two BCD digits, or the wildcard ``AA``.
_VALID = bytes(b for b in range(256) if (b >> 4 < 10 and b & 0x0F < 10) or b == _WILDCARD_BYTE)


@dataclass(frozen=True, slots=True)
class Address:
    """A meter address as its 6 wire bytes (A0 first)."""

    wire: bytes

    def __post_init__(self) -> None:
        # ValueError, not DecodeError: the frame decoder re-raises it with the byte offset.
        if len(self.wire) != 6:
            raise ValueError(f"an address is 6 bytes, not {len(self.wire)}")
        if self.wire.translate(None, _VALID):
            raise ValueError(f"address bytes {self.wire.hex().upper()} are not BCD or AA")

    @classmethod
    def parse(cls, text: str) -> Address:
        """From the printed form: up to 12 digits (zero-padded on the left), ``AA`` pairs allowed.

        ``Address.parse("1234")`` is ``000000001234``; ``Address.parse("AAAAAAAA1234")`` is
        the abbreviated wildcard for meters ending in 1234.
        """
        padded = text.upper().rjust(12, "0")
        if len(padded) != 12 or padded.strip("0123456789A"):
            raise ValueError(f"{text!r} is not an address of at most 12 digits")
        return cls(bytes.fromhex(padded)[::-1])

    def __str__(self) -> str:
        return self.wire[::-1].hex().upper()

    @property
    def is_broadcast(self) -> bool:
        return self.wire == _BROADCAST_WIRE

    @property
    def is_wildcard(self) -> bool:
        """True for the full wildcard and for abbreviated ones (any ``AA`` byte)."""
        return _WILDCARD_BYTE in self.wire

    def matches(self, meter: Address) -> bool:
        """Whether a meter with address ``meter`` must answer a frame sent to this address."""
        return self.is_broadcast or all(
            a in (b, _WILDCARD_BYTE) for a, b in zip(self.wire, meter.wire, strict=True)
        )


_BROADCAST_WIRE = b"\x99" * 6

#: ``999999999999``: broadcast time set and freeze; meters never answer it.
BROADCAST = Address(_BROADCAST_WIRE)
#: ``AAAAAAAAAAAA``: any meter; used for read-address / write-address on a 1:1 link.
WILDCARD = Address(b"\xaa" * 6)
