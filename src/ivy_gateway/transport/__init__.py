"""Bytes and sockets, not protocols: the TCP listener and the ``ByteStream`` sessions use.

Imports only ``ivy_gateway.domain`` and the standard library (uvloop when installed).
"""

from .limits import IpConnectionCap, IpRateLimit, PeerLimiter, ServerLimits
from .server import (
    DropReason,
    OnConnection,
    OnRefused,
    ServerStats,
    StreamServer,
    install_event_loop_policy,
)
from .stream import ByteStream, SocketStream, StreamClosed

__all__ = [
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
