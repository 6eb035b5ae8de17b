from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from ivy_gateway.domain.meter import ConnectionInfo, MeterId
from ivy_gateway.services.capture import Capture, CaptureRecord, capture_files, read_capture

METER = MeterId("000000001234")
OTHER = MeterId("000000005678")
CONN = ConnectionInfo(7, "10.0.0.2", 40000)


class FakeClock:
    def __init__(self) -> None:
        self.ms = 1_764_201_600_000

    def now_ms(self) -> int:
        self.ms += 1
        return self.ms

    def monotonic(self) -> float:
        return self.ms / 1000


async def eventually(condition: Callable[[], bool], timeout_s: float = 1.0) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            if condition():
                return
            await asyncio.sleep(0.002)


async def test_only_enabled_meters_are_captured(tmp_path: Path) -> None:
    capture = Capture(tmp_path, FakeClock())
    capture.enable(METER)
    capture.enable(OTHER)
    capture.disable(OTHER)
    assert capture.enabled() == [METER]
    assert capture.is_enabled(METER)
    assert not capture.is_enabled(OTHER)
    capture.record(METER, "rx", b"\x68\x12", CONN)
    capture.record(OTHER, "rx", b"\x68\x34", CONN)
    capture.record(METER, "tx", b"\x16")
    await capture.flush()
    records = list(read_capture(capture.path_of(METER)))
    assert records == [
        CaptureRecord(1_764_201_600_001, METER, "rx", 7, b"\x68\x12"),
        CaptureRecord(1_764_201_600_002, METER, "tx", None, b"\x16"),
    ]
    assert not capture.path_of(OTHER).exists()
    assert capture.written == 2


async def test_records_taken_before_disable_are_still_written(tmp_path: Path) -> None:
    capture = Capture(tmp_path, FakeClock())
    capture.enable(METER)
    capture.record(METER, "rx", b"\x01")
    capture.disable(METER)
    capture.record(METER, "rx", b"\x02")
    await capture.flush()
    assert [r.data for r in read_capture(capture.path_of(METER))] == [b"\x01"]


async def test_lines_are_compact_json_with_the_documented_fields(tmp_path: Path) -> None:
    capture = Capture(tmp_path, FakeClock())
    capture.enable(METER)
    capture.record(METER, "tx", b"\xfe\xfe\x68", CONN)
    await capture.flush()
    line = capture.path_of(METER).read_text(encoding="utf-8")
    assert json.loads(line) == {
        "ts_ms": 1_764_201_600_001,
        "meter": "000000001234",
        "connection": 7,
        "direction": "tx",
        "hex": "fefe68",
    }


async def test_a_full_file_is_rotated_and_old_backups_fall_off(tmp_path: Path) -> None:
    capture = Capture(tmp_path, FakeClock(), max_file_bytes=300, backups=2)
    capture.enable(METER)
    for n in range(12):
        capture.record(METER, "rx", bytes([n]) * 8)
        await capture.flush()
    files = capture_files(tmp_path, METER)
    assert [f.name for f in files] == [
        "000000001234.jsonl.2",
        "000000001234.jsonl.1",
        "000000001234.jsonl",
    ]
    assert all(f.stat().st_size <= 300 for f in files)
    data = [r.data[0] for f in files for r in read_capture(f)]
    assert data == list(range(data[0], 12))  # in order, only the oldest fell off
    assert data[0] > 0


async def test_rotation_without_backups_starts_the_file_afresh(tmp_path: Path) -> None:
    capture = Capture(tmp_path, FakeClock(), max_file_bytes=200, backups=0)
    capture.enable(METER)
    for n in range(5):
        capture.record(METER, "rx", bytes([n]) * 8)
    await capture.flush()
    assert [f.name for f in capture_files(tmp_path, METER)] == ["000000001234.jsonl"]
    assert [r.data[0] for r in read_capture(capture.path_of(METER))][-1] == 4


async def test_a_flooding_meter_is_bounded_and_the_drops_are_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    capture = Capture(tmp_path, FakeClock(), max_pending=4)
    capture.enable(METER)
    with caplog.at_level(logging.WARNING):
        for n in range(10):
            capture.record(METER, "rx", bytes([n]))
    assert capture.dropped == 6
    assert len(caplog.records) == 1
    await capture.flush()
    assert [r.data for r in read_capture(capture.path_of(METER))] == [b"\0", b"\1", b"\2", b"\3"]


async def test_run_writes_when_half_full_and_flushes_on_stop(tmp_path: Path) -> None:
    capture = Capture(tmp_path, FakeClock(), max_pending=4, flush_interval_s=60)
    capture.enable(METER)
    runner = asyncio.create_task(capture.run())
    await asyncio.sleep(0)
    capture.record(METER, "rx", b"\x01")
    capture.record(METER, "rx", b"\x02")
    await eventually(lambda: capture.written == 2)
    capture.record(METER, "tx", b"\x03")
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert [r.data for r in read_capture(capture.path_of(METER))] == [b"\1", b"\2", b"\3"]


async def test_run_flushes_on_the_interval(tmp_path: Path) -> None:
    capture = Capture(tmp_path, FakeClock(), flush_interval_s=0.005)
    capture.enable(METER)
    runner = asyncio.create_task(capture.run())
    capture.record(METER, "rx", b"\x01")
    await eventually(lambda: capture.written == 1)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner


def test_capture_files_of_a_meter_never_captured_is_empty(tmp_path: Path) -> None:
    (tmp_path / "000000001234.jsonl.old").write_text("", encoding="utf-8")
    assert capture_files(tmp_path, METER) == []


def test_the_reader_skips_blank_lines_and_names_a_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    good = '{"ts_ms": 1, "meter": "000000001234", "direction": "rx", "hex": "68"}'
    path.write_text(f"{good}\n\n{good[:20]}\n", encoding="utf-8")
    records = read_capture(path)
    assert next(records).data == b"\x68"
    with pytest.raises(ValueError, match=r"c.jsonl:3: not a capture record"):
        next(records)


@pytest.mark.parametrize(
    "line",
    [
        '{"ts_ms": 1, "meter": "000000001234", "direction": "up", "hex": "68"}',
        '{"ts_ms": 1, "meter": "000000001234", "direction": "rx", "hex": "6"}',
        '{"ts_ms": 1, "meter": "1234", "direction": "rx", "hex": "68"}',
        '{"ts_ms": 1, "meter": "000000001234", "direction": "rx"}',
        '{"ts_ms": 1, "meter": "000000001234", "direction": "rx", "hex": "68", "connection": "a"}',
        '{"ts_ms": null, "meter": "000000001234", "direction": "rx", "hex": "68"}',
    ],
)
def test_the_reader_rejects_records_it_cannot_replay(tmp_path: Path, line: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.jsonl:1"):
        list(read_capture(str(path)))


def test_limits_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="positive"):
        Capture(tmp_path, FakeClock(), backups=-1)


async def test_flushing_with_nothing_buffered_writes_nothing(tmp_path: Path) -> None:
    capture = Capture(tmp_path / "captures", FakeClock())
    await capture.flush()
    assert not (tmp_path / "captures").exists()
