from __future__ import annotations

import pytest

from ivy_gateway.domain.errors import ConfigError
from ivy_gateway.transport import IpConnectionCap, IpRateLimit, PeerLimiter, ServerLimits


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_connection_cap_refuses_beyond_max_and_frees_on_release() -> None:
    cap = IpConnectionCap(2)
    assert cap.allow("127.0.0.1")
    assert cap.allow("127.0.0.1")
    assert not cap.allow("127.0.0.1")
    assert cap.allow("127.0.0.2")  # other IPs have their own budget
    cap.release("127.0.0.1")
    assert cap.count("127.0.0.1") == 1
    assert cap.allow("127.0.0.1")


def test_connection_cap_forgets_ips_with_no_connections() -> None:
    cap = IpConnectionCap(1)
    cap.allow("127.0.0.1")
    cap.release("127.0.0.1")
    cap.release("127.0.0.1")  # an extra release never goes negative
    assert cap.count("127.0.0.1") == 0
    assert cap._open == {}


def test_rate_limit_blocks_for_block_time_then_starts_a_new_window() -> None:
    clock = FakeClock()
    rate = IpRateLimit(3, window_s=10.0, block_s=30.0, clock=clock)
    assert [rate.allow("127.0.0.1") for _ in range(4)] == [True, True, True, False]
    assert rate.blocked("127.0.0.1")
    assert rate.allow("127.0.0.2")
    clock.now += 29.9
    assert not rate.allow("127.0.0.1")  # still blocked, and the refusal does not extend it
    clock.now += 0.1
    assert not rate.blocked("127.0.0.1")
    assert [rate.allow("127.0.0.1") for _ in range(4)] == [True, True, True, False]


def test_rate_limit_window_resets_after_window_s() -> None:
    clock = FakeClock()
    rate = IpRateLimit(2, window_s=1.0, block_s=5.0, clock=clock)
    assert rate.allow("127.0.0.1")
    assert rate.allow("127.0.0.1")
    clock.now += 1.0
    assert rate.allow("127.0.0.1")
    assert rate.allow("127.0.0.1")
    assert not rate.allow("127.0.0.1")


def test_rate_limit_prunes_ips_not_seen_for_a_window() -> None:
    clock = FakeClock()
    rate = IpRateLimit(1, window_s=1.0, block_s=5.0, clock=clock)
    for i in range(100):
        rate.allow(f"10.0.0.{i}")
    rate.allow("127.0.0.1")
    rate.allow("127.0.0.1")  # blocked until +5 s
    clock.now += 2.0
    rate.allow("127.0.0.2")
    assert len(rate) == 2  # the blocked IP and the new one


def test_rate_limit_release_is_a_no_op() -> None:
    rate = IpRateLimit(1, window_s=10.0, block_s=10.0, clock=FakeClock())
    assert rate.allow("127.0.0.1")
    rate.release("127.0.0.1")
    assert not rate.allow("127.0.0.1")


def test_both_limiters_satisfy_the_protocol() -> None:
    limiters: list[PeerLimiter] = [IpConnectionCap(1), IpRateLimit(1, 1.0, 1.0)]
    assert all(limiter.allow("127.0.0.1") for limiter in limiters)


@pytest.mark.parametrize(
    "field",
    ["max_connections", "max_connections_per_ip", "idle_timeout_s", "write_high_water_bytes"],
)
def test_server_limits_reject_non_positive_values(field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        ServerLimits(**{field: 0})


def test_server_limits_accept_none_for_optional_limits() -> None:
    limits = ServerLimits(max_connections_per_ip=None, max_new_per_ip=None, idle_timeout_s=None)
    assert limits.idle_timeout_s is None


def test_limiters_reject_bad_construction() -> None:
    with pytest.raises(ValueError, match="positive"):
        IpConnectionCap(0)
    with pytest.raises(ValueError, match="positive"):
        IpRateLimit(1, 0.0, 1.0)
