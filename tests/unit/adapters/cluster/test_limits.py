"""Shared per-IP limits decide locally between syncs (no Redis needed for these)."""

from __future__ import annotations

from ivy_gateway.adapters.cluster import SharedIpCap, SharedIpRate


def test_shared_cap_counts_local_connections_and_gives_slots_back() -> None:
    cap = SharedIpCap("t", "a", 2, ttl_s=6)
    assert cap.allow("10.0.0.1")
    assert cap.allow("10.0.0.1")
    assert not cap.allow("10.0.0.1")
    assert cap.allow("10.0.0.2")
    cap.release("10.0.0.1")
    assert cap.allow("10.0.0.1")
    assert cap.count("10.0.0.1") == 2


def test_shared_cap_rejects_invalid_limit() -> None:
    try:
        SharedIpCap("t", "a", 0, ttl_s=6)
    except ValueError:
        return
    raise AssertionError("a zero limit must be refused")


def test_shared_rate_blocks_the_attempt_past_the_limit_for_block_s() -> None:
    now = [1000.0]
    rate = SharedIpRate("t", 3, 10.0, 60.0, clock=lambda: now[0])
    assert all(rate.allow("1.2.3.4") for _ in range(3))
    assert not rate.allow("1.2.3.4")
    assert rate.blocked("1.2.3.4")
    now[0] += 61
    assert rate.allow("1.2.3.4")
