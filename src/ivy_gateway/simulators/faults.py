"""Protocol-neutral fault injection for a simulated meter's replies.

A meter hands every encoded reply to its ``ReplyChannel`` instead of writing it to the
stream itself; the channel applies the configured ``Faults``:

=====================  ==============================================================
fault                  effect on each reply, in this order
=====================  ==============================================================
``drop_probability``   the reply is not sent at all (the gateway must time out, retry)
``delay_s``            the reply is sent this long after it was ready (a slow meter)
``garbage_probability``  ``garbage_bytes`` random bytes are written before the reply
``disconnect_after``   after this many replies the connection closes: the next reply is
                       not sent, or (``disconnect_mid_reply``) only its first half is
``split_chunks``       the reply is written in this many pieces, ``split_pause_s`` apart
=====================  ==============================================================

Everything random comes from one ``random.Random(seed)`` per channel, so a run with the
same seed and the same requests misbehaves the same way. Garbage is drawn from
``garbage_alphabet`` (printable ASCII by default), which holds no DL/T 645 start (``68``)
or preamble (``FE``) byte: the gateway must skip it, not mistake it for a frame start.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from ivy_gateway.transport import ByteStream, StreamClosed

__all__ = ["NO_FAULTS", "Faults", "ReplyChannel"]

#: Printable ASCII without ``68``/``FE``/``00``: noise no supported protocol starts with.
_DEFAULT_ALPHABET = bytes(range(0x20, 0x60))


@dataclass(frozen=True, slots=True)
class Faults:
    """How a meter misbehaves; the default misbehaves not at all."""

    delay_s: float = 0.0
    drop_probability: float = 0.0
    garbage_probability: float = 0.0
    garbage_bytes: int = 8
    garbage_alphabet: bytes = _DEFAULT_ALPHABET
    disconnect_after: int | None = None
    disconnect_mid_reply: bool = False
    split_chunks: int = 1
    split_pause_s: float = 0.001
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("drop_probability", "garbage_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within 0..1")
        if self.delay_s < 0 or self.split_pause_s < 0:
            raise ValueError("delays must not be negative")
        if self.split_chunks < 1 or self.garbage_bytes < 1 or not self.garbage_alphabet:
            raise ValueError("split_chunks and garbage_bytes must be positive")
        if self.disconnect_after is not None and self.disconnect_after < 0:
            raise ValueError("disconnect_after must not be negative")


NO_FAULTS = Faults()


class ReplyChannel:
    """Writes a meter's replies to ``stream`` with ``faults`` applied; counts what it did."""

    __slots__ = (
        "_faults",
        "_rng",
        "_stream",
        "closed",
        "garbage_sent",
        "replies_dropped",
        "replies_sent",
    )

    def __init__(self, stream: ByteStream, faults: Faults = NO_FAULTS) -> None:
        self._stream = stream
        self._faults = faults
        self._rng = random.Random(faults.seed)
        #: True once the channel closed the stream (``disconnect_after``) or it was gone.
        self.closed = False
        self.replies_sent = 0
        self.replies_dropped = 0
        self.garbage_sent = 0

    async def send(self, reply: bytes) -> None:
        """Send one reply (or not, as the faults say). Never raises ``StreamClosed``."""
        faults = self._faults
        if self.closed:
            return
        if faults.drop_probability and self._rng.random() < faults.drop_probability:
            self.replies_dropped += 1
            return
        if faults.delay_s:
            await asyncio.sleep(faults.delay_s)
        try:
            if faults.disconnect_after is not None and self.replies_sent >= faults.disconnect_after:
                if faults.disconnect_mid_reply:
                    await self._stream.write(reply[: len(reply) // 2])
                self._disconnect()
                return
            if faults.garbage_probability and self._rng.random() < faults.garbage_probability:
                garbage = bytes(self._rng.choices(faults.garbage_alphabet, k=faults.garbage_bytes))
                self.garbage_sent += len(garbage)
                await self._stream.write(garbage)
            await self._write_split(reply)
        except StreamClosed:
            self.closed = True
            return
        self.replies_sent += 1

    async def _write_split(self, reply: bytes) -> None:
        pieces = min(self._faults.split_chunks, len(reply))
        if pieces <= 1:
            await self._stream.write(reply)
            return
        step = -(-len(reply) // pieces)  # ceiling: exactly ``pieces`` writes or fewer
        for start in range(0, len(reply), step):
            if start:
                await asyncio.sleep(self._faults.split_pause_s)
            await self._stream.write(reply[start : start + step])

    def _disconnect(self) -> None:
        self.closed = True
        self._stream.close()
