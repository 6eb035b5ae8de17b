"""Rows both adapters write: merging per meter, newest value per quantity, fingerprints."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from ivy_gateway.adapters.storage.migrations import load_migrations, split_statements
from ivy_gateway.adapters.storage.rows import dump_json, plan_writes
from ivy_gateway.domain.events import EventKind, MeterEvent, MeterStatus, ReadingsBatch, Severity
from ivy_gateway.domain.meter import ConnectionInfo, MeterId, ProtocolKind
from ivy_gateway.domain.quantities import Reading, ReadingSource

M1 = MeterId("000000001234")


def reading(value: str, ts_ms: int) -> Reading:
    return Reading(M1, "voltage_l1", Decimal(value), "V", ts_ms, ReadingSource.POLL, "02010100")


def test_plan_merges_one_meter_row_from_status_and_readings() -> None:
    conn = ConnectionInfo(3, "10.1.2.3", 5000)
    plan = plan_writes(
        [
            ReadingsBatch(M1, ProtocolKind.DLMS, ReadingSource.PUSH, 300, [reading("1", 300)]),
            MeterStatus(M1, True, ProtocolKind.DLMS, "em114070", conn, 100),
            MeterStatus(M1, False, ProtocolKind.DLMS, "em114070", None, 200),
        ]
    )

    assert plan.meters == [("000000001234", "dlms", "em114070", 100, 300, "10.1.2.3", False, 200)]


def test_plan_keeps_the_newest_reading_per_quantity_with_its_exact_decimal() -> None:
    plan = plan_writes(
        [
            ReadingsBatch(
                M1,
                ProtocolKind.DLT645,
                ReadingSource.POLL,
                20,
                [reading("230.50", 20), reading("1", 10)],
            )
        ]
    )

    assert len(plan.readings) == 2
    assert plan.last_values == [
        ("000000001234", "voltage_l1", 20, "poll", 230.5, "V", "02010100", "230.50")
    ]


def test_equal_events_get_equal_fingerprints_and_different_ones_differ() -> None:
    def event(data: dict[str, object], meter: MeterId | None = M1) -> MeterEvent:
        return MeterEvent(EventKind.OVERVOLTAGE, Severity.WARNING, 5, meter, data)

    rows = plan_writes(
        [event({"a": 1, "b": 2}), event({"b": 2, "a": 1}), event({"a": 2}), event({}, None)]
    ).events

    fingerprints = [r[5] for r in rows]
    assert fingerprints[0] == fingerprints[1]
    assert len(set(fingerprints)) == 3
    assert rows[3][0] is None


def test_dump_json_is_canonical_and_accepts_domain_values() -> None:
    text = dump_json(
        {"z": Decimal("1.5"), "a": dt.datetime(2025, 1, 2, 3, 4, 5), "k": ProtocolKind.DLMS}
    )

    assert text == '{"a":"2025-01-02T03:04:05","k":"dlms","z":1.5}'
    assert dump_json(None) is None


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_migrations_are_numbered_and_start_with_the_initial_schema(dialect: str) -> None:
    migrations = load_migrations(dialect)  # type: ignore[arg-type]

    assert migrations[0].name == "0001_initial"
    assert [m.name for m in migrations] == sorted(m.name for m in migrations)


def test_split_statements_keeps_whole_statements_and_drops_comments() -> None:
    script = "-- a comment; with a semicolon\nCREATE TABLE a (x TEXT DEFAULT ';');\n\nSELECT 1;\n"

    assert split_statements(script) == ["CREATE TABLE a (x TEXT DEFAULT ';');", "SELECT 1;"]


def test_split_statements_rejects_an_unterminated_statement() -> None:
    with pytest.raises(ValueError, match="unterminated"):
        split_statements("SELECT 1;\nSELECT 2")
