"""What the core needs from a cluster of gateway instances (ARCHITECTURE.md "Scaling").

A meter is owned by exactly one instance at a time: the one holding its *lease*. A lease
carries a *fencing token* that only grows, so a stale owner (a socket the meter abandoned
on another instance) can always be told apart from the current one.

::

    meter dials instance B ──► OwnershipGate.claimed(meter, announce)
                                 take the lease (token 7) ─► tell the old owner A ─► announce online
    A hears "meter moved, token 7" ─► evicts its session silently (no offline status)
    command at any instance ──► ClusterCommandRunner: lease → local | Forwarder → owner | offline

The implementations live in ``adapters/cluster`` (Redis); the core sees only these Protocols.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from .commands import Command, CommandResult
from .errors import GatewayError
from .meter import MeterId

__all__ = [
    "ClusterMembership",
    "ClusterUnavailable",
    "CommandForwarder",
    "CommandJournal",
    "Lease",
    "OwnershipGate",
    "OwnershipLedger",
]


class ClusterUnavailable(GatewayError):
    """The shared state (Redis) cannot be reached: callers fall back to local decisions."""


@dataclass(frozen=True, slots=True)
class Lease:
    """``meter`` is owned by instance ``owner`` under fencing token ``token``."""

    meter: MeterId
    owner: str
    token: int


class OwnershipGate(Protocol):
    """Called by the session bookkeeping when a meter's current session starts and ends.

    Both take ``announce``: the status change to publish once ownership is settled. Neither
    blocks; the implementation calls ``announce`` later (at most once), from the event loop.
    """

    def claimed(self, meter: MeterId, announce: Callable[[], None]) -> None:
        """The meter connected here: take its lease (stealing it), then ``announce()`` online."""
        ...

    def released(self, meter: MeterId, announce: Callable[[], None]) -> None:
        """Its session ended: give the lease back; ``announce()`` offline only if it was ours."""
        ...


class OwnershipLedger(Protocol):
    """Who owns a meter, cluster-wide."""

    @property
    def gateway_id(self) -> str: ...

    async def owner_of(self, meter: MeterId) -> Lease | None:
        """The current lease, None when nobody holds one; ``ClusterUnavailable`` if unknown."""
        ...


class CommandForwarder(Protocol):
    async def forward(self, lease: Lease, command: Command) -> CommandResult:
        """Run ``command`` on the instance of ``lease``; always returns exactly one result.

        A forward that gets no answer within the command's timeout (plus a margin) returns
        a ``timeout`` result; an owner that is gone returns ``meter_offline``.
        """
        ...


class CommandJournal(Protocol):
    """Cluster-wide "this command id was already taken", so a command runs at most once."""

    async def begin(self, command: Command) -> bool:
        """True for the first delivery of ``command.id``; False for a repeat."""
        ...

    async def finish(self, command: Command, result: CommandResult) -> None:
        """Keep the result for a while, so a repeat is answered with it."""
        ...

    async def outcome(self, command: Command, wait_s: float) -> CommandResult | None:
        """The first delivery's result, waiting up to ``wait_s``; None if still unknown."""
        ...


class ClusterMembership(Protocol):
    @property
    def gateway_id(self) -> str: ...

    def members(self) -> Sequence[str]:
        """Live instances (own id included), as of the last heartbeat; never blocks."""
        ...
