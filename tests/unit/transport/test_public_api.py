"""The names sessions, simulators and app.py import from ``ivy_gateway.transport``."""

from __future__ import annotations

import ivy_gateway.transport as transport
from ivy_gateway.transport import fakes


def test_public_api_is_pinned() -> None:
    assert sorted(transport.__all__) == [
        "ByteStream",
        "DropReason",
        "IpConnectionCap",
        "IpRateLimit",
        "OnConnection",
        "OnRefused",
        "PeerLimiter",
        "ServerLimits",
        "ServerStats",
        "SocketStream",
        "StreamClosed",
        "StreamServer",
        "install_event_loop_policy",
    ]
    assert sorted(fakes.__all__) == ["LoopbackPair", "MemoryStream", "ScriptedStream"]
    assert all(hasattr(transport, name) for name in transport.__all__)


def test_drop_reasons_name_the_stats_counters() -> None:
    stats = transport.ServerStats()
    fields = {
        "total_cap": "refused_total_cap",
        "per_ip": "refused_per_ip",
        "rate_limited": "refused_rate_limited",
        "idle_timeout": "idle_timeouts",
    }
    assert {reason.value for reason in transport.DropReason} == set(fields)
    assert all(getattr(stats, name) == 0 for name in fields.values())
