from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from ivy_gateway.domain.meter import MeterId, ProtocolKind
from ivy_gateway.domain.quantities import Reading, ReadingSource
from ivy_gateway.domain.store import MeterRecord, StoreUnavailable
from ivy_gateway.services.recovery import restore_from_store
from ivy_gateway.services.telemetry import Telemetry

METER = MeterId("000000001234")
OTHER = MeterId("000000005678")


class FakeClock:
    def now_ms(self) -> int:
        return 0

    def monotonic(self) -> float:
        return 0.0


class StoredMeters:
    def __init__(self, records: list[MeterRecord]) -> None:
        self.records = records

    async def list_meters(self) -> list[MeterRecord]:
        return self.records


class DownStore:
    async def list_meters(self) -> list[MeterRecord]:
        raise StoreUnavailable("PostgreSQL at 127.0.0.1:5432/ivy unavailable")


async def test_restart_recovery_brings_back_meters_offline_with_their_last_values() -> None:
    voltage = Reading(METER, "voltage_l1", Decimal("230.50"), "V", 900, ReadingSource.POLL, "x")
    records = [
        MeterRecord(
            METER,
            ProtocolKind.DLT645,
            "DDS666",
            100,
            950,
            "10.0.0.2",
            True,
            {"voltage_l1": voltage},
        ),
        MeterRecord(OTHER, ProtocolKind.DLMS, None, 100, 200, None, False),
    ]
    telemetry = Telemetry(FakeClock())
    assert await restore_from_store(StoredMeters(records), telemetry) == 2
    snapshots = telemetry.snapshots()
    assert [s.meter for s in snapshots] == [METER, OTHER]
    # The store says "online" (the gateway crashed before saying otherwise): not believed.
    assert not any(s.online for s in snapshots)
    assert snapshots[0].values == {"voltage_l1": voltage}
    assert str(snapshots[0].values["voltage_l1"].value) == "230.50"
    assert (snapshots[0].model, snapshots[0].last_seen_ms) == ("DDS666", 950)
    assert snapshots[1].protocol is ProtocolKind.DLMS


async def test_an_unavailable_store_skips_recovery_with_an_error_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    telemetry = Telemetry(FakeClock())
    with caplog.at_level(logging.ERROR):
        assert await restore_from_store(DownStore(), telemetry) == 0
    assert telemetry.snapshots() == []
    assert "recovery skipped" in caplog.text
