from __future__ import annotations

import asyncio

import pytest

from ivy_gateway.adapters.mqtt.outbox import Outbox, OutMessage


def _m(i: int) -> OutMessage:
    return OutMessage("t", str(i).encode())


async def test_outbox_is_fifo() -> None:
    box = Outbox(10)
    for i in range(3):
        box.put(_m(i))
    assert [(await box.get()).payload for _ in range(3)] == [b"0", b"1", b"2"]


async def test_full_outbox_drops_the_oldest_and_counts_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    box = Outbox(3)
    for i in range(5):
        box.put(_m(i))
    assert box.dropped == 2
    assert [box.get_nowait() for _ in range(3)] == [_m(2), _m(3), _m(4)]
    assert box.get_nowait() is None
    assert "dropped the" in caplog.text


async def test_put_front_restores_original_order_before_newer_messages() -> None:
    box = Outbox(10)
    box.put(_m(3))
    box.put_front([_m(1), _m(2)])
    assert [box.get_nowait() for _ in range(3)] == [_m(1), _m(2), _m(3)]


async def test_get_waits_for_a_message() -> None:
    box = Outbox(2)
    waiter = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    assert not waiter.done()
    box.put(_m(7))
    assert await asyncio.wait_for(waiter, 1) == _m(7)


def test_outbox_needs_room_for_one() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Outbox(0)
