"""``ClusterCommandRunner``: a command that arrives at any instance runs on the meter's owner.

::

    run(command) ─► journal.begin (first delivery of this id?) ── repeat ─► the first's result
                      │ first
                      ▼
                    ledger.owner_of(meter) ── this instance / nobody ─► local CommandService
                      │ another instance                 (no local session → meter_offline)
                      ▼
                    forwarder.forward(lease, command) ─► the owner's result | timeout | offline

Redis down (``ClusterUnavailable``): no journal, no ledger — the command runs here if the
meter is connected here, else it is answered ``meter_offline``. Every path returns exactly
one ``CommandResult``; nothing but cancellation escapes ``run``.
"""

from __future__ import annotations

import logging

from ivy_gateway.domain.cluster import (
    ClusterUnavailable,
    CommandForwarder,
    CommandJournal,
    OwnershipLedger,
)
from ivy_gateway.domain.commands import Command, CommandResult, ErrorCode
from ivy_gateway.domain.ports import CommandRunner, MeterDirectory

__all__ = ["ClusterCommandRunner"]

log = logging.getLogger(__name__)


class ClusterCommandRunner:
    """``CommandRunner`` for a cluster; wraps the local ``CommandService``."""

    def __init__(
        self,
        local: CommandRunner,
        directory: MeterDirectory,
        ledger: OwnershipLedger,
        forwarder: CommandForwarder,
        journal: CommandJournal | None = None,
        *,
        repeat_wait_margin_s: float = 5.0,
    ) -> None:
        self._local = local
        self._directory = directory
        self._ledger = ledger
        self._forwarder = forwarder
        self._journal = journal
        self._repeat_wait_margin_s = repeat_wait_margin_s
        self.ran_here = 0
        self.forwarded = 0
        self.repeats = 0

    async def run(self, command: Command) -> CommandResult:
        first = True
        if self._journal is not None:
            try:
                first = await self._journal.begin(command)
            except ClusterUnavailable:
                first = True  # degraded: no cluster-wide dedupe, but still one run here
        if not first:
            return await self._answer_repeat(command)
        result = await self._route(command)
        if self._journal is not None:
            try:
                await self._journal.finish(command, result)
            except ClusterUnavailable:
                log.warning("command %s: result not journaled (Redis down)", command.id)
        return result

    async def _route(self, command: Command) -> CommandResult:
        try:
            lease = await self._ledger.owner_of(command.meter)
        except ClusterUnavailable:
            lease = None  # only what is connected here can be reached
        if lease is None or lease.owner == self._ledger.gateway_id:
            self.ran_here += 1
            return await self._local.run(command)
        if self._directory.get(command.meter) is not None:
            # Connected here, but the lease says elsewhere: this socket is the stale one and
            # is being evicted; the owner has the live connection.
            log.info("command %s: meter also connected here; the owner runs it", command.id)
        self.forwarded += 1
        return await self._forwarder.forward(lease, command)

    async def _answer_repeat(self, command: Command) -> CommandResult:
        """The same id was taken before (an MQTT redelivery, a client retry): no second run."""
        self.repeats += 1
        assert self._journal is not None
        try:
            first = await self._journal.outcome(
                command, command.timeout_s + self._repeat_wait_margin_s
            )
        except ClusterUnavailable:
            first = None
        if first is not None:
            return first
        return CommandResult.failed(
            command.id,
            ErrorCode.TIMEOUT,
            "a command with this id was already taken and its outcome is not known",
        )
