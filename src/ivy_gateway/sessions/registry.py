"""Meter id → the live session holding it, for this process.

A meter that reconnects (a 4G modem that lost its radio link often dials again before the
old TCP connection times out) replaces its old session: ``claim`` returns the session it
displaced so the caller closes that socket. ``release`` removes a session only while it is
still the current one, so the old session's clean-up cannot take the new one offline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

from ivy_gateway.domain.meter import MeterId

__all__ = ["SessionRegistry"]

S = TypeVar("S")


class SessionRegistry(Generic[S]):
    __slots__ = ("_sessions",)

    def __init__(self) -> None:
        self._sessions: dict[MeterId, S] = {}

    def claim(self, meter: MeterId, session: S) -> S | None:
        """Make ``session`` the one for ``meter``; return the session it replaced, if any."""
        previous = self._sessions.get(meter)
        self._sessions[meter] = session
        return previous if previous is not session else None

    def release(self, meter: MeterId, session: S) -> bool:
        """Forget ``session`` if it is still ``meter``'s current one; True if it was."""
        if self._sessions.get(meter) is session:
            del self._sessions[meter]
            return True
        return False

    def get(self, meter: MeterId) -> S | None:
        return self._sessions.get(meter)

    def meters(self) -> Sequence[MeterId]:
        return list(self._sessions)

    def __len__(self) -> int:
        return len(self._sessions)
