"""Restart recovery: the meter registry and last values come back from the store.

Right after a restart, before any meter has reconnected, the API and the dashboard should
still list every known meter (offline) with its last values, as they were before the
stop or crash. ``restore_from_store`` reads them from the store's ``meters`` and
``last_values`` tables (O(meters), never a scan of history) into ``Telemetry``'s per-meter
state. Run it after the store is open and before meters are accepted; a meter that
reconnects meanwhile is not harmed: live state always wins over restored state.
"""

from __future__ import annotations

import logging
from typing import Protocol

from ivy_gateway.domain.store import MeterRecord, StoreError

from .telemetry import Telemetry

__all__ = ["MeterRegistry", "restore_from_store"]

log = logging.getLogger(__name__)


class MeterRegistry(Protocol):
    """The one query recovery needs (every ``ReadingStore`` has it)."""

    async def list_meters(self) -> list[MeterRecord]: ...


async def restore_from_store(store: MeterRegistry, telemetry: Telemetry) -> int:
    """Load every stored meter and its last values into ``telemetry``; how many meters.

    A store that fails here does not stop the gateway: recovery is a convenience for the
    first minutes after a restart, and meters repopulate the state as they reconnect.
    """
    try:
        records = await store.list_meters()
    except StoreError as exc:
        log.error("restart recovery skipped, the store could not list meters: %s", exc)
        return 0
    for record in records:
        telemetry.restore(
            record.meter, record.protocol, record.model, record.values, record.last_seen_ms
        )
    log.info(
        "restart recovery: %d meters and %d last values restored from the store",
        len(records),
        sum(len(r.values) for r in records),
    )
    return len(records)
