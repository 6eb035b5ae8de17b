"""IVY EM114070 vendor behaviour: the heartbeat packet and the documented firmware quirks.

``describe`` (JSON views for the CLI) is imported from its module on demand; it depends on
``codec.wrapper``, which itself depends on ``heartbeat``.
"""

from .heartbeat import (
    HEARTBEAT_SIZE,
    PLACEHOLDER_ADDRESS,
    Heartbeat,
    decode_heartbeat,
    encode_heartbeat,
    is_heartbeat,
)

__all__ = [
    "HEARTBEAT_SIZE",
    "PLACEHOLDER_ADDRESS",
    "Heartbeat",
    "decode_heartbeat",
    "encode_heartbeat",
    "is_heartbeat",
]
