"""The error byte (ERR) of an abnormal reply (reference §6).

An abnormal reply (control bit 6 set, e.g. ``D1``) carries one data byte whose bits name
what went wrong; several may be set together (``05`` = other + password). The DI of the
failed request is not echoed, so the session pairs the reply with its request by order.
"""

from __future__ import annotations

from enum import IntFlag

__all__ = ["ErrorFlags"]


class ErrorFlags(IntFlag):
    """Bits of the ERR byte, as numbered by the standard (bit 0 = mask 0x01)."""

    OTHER = 0x01
    NO_REQUESTED_DATA = 0x02  #: unknown or unsupported DI
    PASSWORD_OR_UNAUTHORIZED = 0x04
    BAUD_RATE_NOT_CHANGEABLE = 0x08
    ANNUAL_TIME_ZONES_EXCEEDED = 0x10
    DAILY_TIME_PERIODS_EXCEEDED = 0x20
    TARIFFS_EXCEEDED = 0x40
    RESERVED = 0x80

    def names(self) -> list[str]:
        """The set bits as lower-case names, lowest bit first (``["other", ...]``)."""
        return [(flag.name or "").lower() for flag in ErrorFlags if flag in self]
