"""Commands over Redis: the wire format, the forwarder's pending replies, the journal.

::

    forwarder (any instance)                       owner (holds the meter's lease)
    PUBLISH {ns}:node:{owner}  {"t":"cmd", rid, from, token, command}
       │ 0 receivers → owner gone → meter_offline
       ▼                                           runs it once on its local CommandService
    future[rid] ◄── PUBLISH {ns}:node:{from} {"t":"reply", rid, result}
       │ nothing within command timeout + margin → timeout (late replies are dropped, counted)

Pub/sub delivers at most once, so a request is never run twice by the transport; a user's
repeated request (same id, e.g. an MQTT redelivery) is caught by the journal:
``SET {ns}:cmd:{meter}:{id} pending NX PX`` — the repeat is answered with the first
delivery's result instead of running the command again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ivy_gateway.domain.cluster import ClusterUnavailable, Lease
from ivy_gateway.domain.commands import Command, CommandMethod, CommandResult, ErrorCode
from ivy_gateway.domain.meter import MeterId
from ivy_gateway.domain.ports import CommandRunner

__all__ = [
    "CommandRelay",
    "RedisJournal",
    "decode_command",
    "decode_result",
    "encode_command",
    "encode_result",
]

_PENDING = "pending"


def encode_command(command: Command) -> dict[str, Any]:
    return {
        "id": command.id,
        "meter": command.meter.value,
        "method": command.method.value,
        "params": dict(command.params),
        "timeoutS": command.timeout_s,
        "requestedBy": command.requested_by,
    }


def decode_command(data: dict[str, Any]) -> Command:
    """ValueError/KeyError/TypeError for a malformed message (the caller drops it)."""
    return Command(
        id=str(data["id"]),
        meter=MeterId(str(data["meter"])),
        method=CommandMethod(data["method"]),
        params=dict(data.get("params") or {}),
        timeout_s=float(data["timeoutS"]),
        requested_by=str(data.get("requestedBy", "unknown")),
    )


def encode_result(result: CommandResult) -> dict[str, Any]:
    return {
        "id": result.id,
        "success": result.success,
        "result": None if result.result is None else dict(result.result),
        "error": result.error,
        "errorCode": None if result.error_code is None else result.error_code.value,
    }


def decode_result(data: dict[str, Any]) -> CommandResult:
    code = data.get("errorCode")
    return CommandResult(
        id=str(data["id"]),
        success=bool(data["success"]),
        result=data.get("result"),
        error=data.get("error"),
        error_code=ErrorCode(code) if code else None,
    )


def dumps(data: dict[str, Any]) -> str:
    # Results hold plain JSON already; ``default=str`` keeps an odd value from losing a reply.
    return json.dumps(data, separators=(",", ":"), default=str)


class RedisJournal:
    """``CommandJournal`` on Redis: one key per (meter, command id), kept ``ttl_s``."""

    def __init__(self, client: Redis, namespace: str, gateway_id: str, ttl_s: float) -> None:
        self._client = client
        self._ns = namespace
        self._gateway_id = gateway_id
        self._ttl_ms = int(ttl_s * 1000)

    def _key(self, command: Command) -> str:
        return f"{self._ns}:cmd:{command.meter.value}:{command.id}"

    async def begin(self, command: Command) -> bool:
        try:
            taken = await self._client.set(
                self._key(command), f"{_PENDING}|{self._gateway_id}", nx=True, px=self._ttl_ms
            )
        except (RedisError, OSError) as exc:
            raise ClusterUnavailable(f"journal: {exc}") from None
        return bool(taken)

    async def finish(self, command: Command, result: CommandResult) -> None:
        try:
            await self._client.set(
                self._key(command), dumps(encode_result(result)), px=self._ttl_ms
            )
        except (RedisError, OSError) as exc:
            raise ClusterUnavailable(f"journal: {exc}") from None

    async def outcome(self, command: Command, wait_s: float) -> CommandResult | None:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                raw = await self._client.get(self._key(command))
            except (RedisError, OSError) as exc:
                raise ClusterUnavailable(f"journal: {exc}") from None
            if raw is None:
                return None  # expired: the first delivery is too old to say
            text = raw.decode() if isinstance(raw, bytes) else str(raw)
            if not text.startswith(_PENDING):
                try:
                    return decode_result(json.loads(text))
                except (ValueError, KeyError, TypeError):
                    return None
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.1)


class CommandRelay:
    """Both ends of a forwarded command: ``forward`` (asking) and ``serve`` (the owner)."""

    def __init__(
        self,
        gateway_id: str,
        *,
        send: Callable[[str, dict[str, Any]], Awaitable[int]],
        owner_of: Callable[[MeterId], Awaitable[Lease | None]],
        holds: Callable[[MeterId], bool],
        local_runner: CommandRunner,
        forward_timeout_s: float,
    ) -> None:
        self._gateway_id = gateway_id
        self._send = send
        self._owner_of = owner_of
        self._holds = holds
        self._local_runner = local_runner
        self._forward_timeout_s = forward_timeout_s
        self._pending: dict[str, asyncio.Future[CommandResult]] = {}
        self._seq = 0
        self.counts = dict.fromkeys(
            ("commandsForwarded", "forwardTimeouts", "forwardsServed", "lateReplies"), 0
        )

    def resolve(self, data: dict[str, Any]) -> None:
        """A reply arrived: it completes its forward, or is counted late and dropped."""
        future = self._pending.get(str(data["rid"]))
        if future is None or future.done():
            self.counts["lateReplies"] += 1
        else:
            future.set_result(decode_result(data["result"]))

    def cancel_pending(self) -> None:
        for future in self._pending.values():
            future.cancel()

    async def forward(self, lease: Lease, command: Command) -> CommandResult:
        result = await self._forward_once(lease, command)
        if result is not None:
            return result
        # The owner no longer holds the meter: ask Redis once more, follow one move.
        try:
            now = await self._owner_of(command.meter)
        except ClusterUnavailable:
            now = None
        if now is not None and now.owner == self._gateway_id:
            return await self._local_runner.run(command)
        if now is not None and now != lease:
            result = await self._forward_once(now, command)
            if result is not None:
                return result
        return _offline(command, "no gateway instance holds the meter")

    async def _forward_once(self, lease: Lease, command: Command) -> CommandResult | None:
        self._seq += 1
        rid = f"{self._gateway_id}:{self._seq}"
        future: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        message = {
            "t": "cmd",
            "rid": rid,
            "from": self._gateway_id,
            "token": lease.token,
            "command": encode_command(command),
        }
        try:
            try:
                listeners = await self._send(lease.owner, message)
            except ClusterUnavailable:
                return _offline(command, "the meter's gateway instance cannot be reached")
            if listeners == 0:
                return _offline(command, f"gateway instance {lease.owner} is gone")
            self.counts["commandsForwarded"] += 1
            try:
                result = await asyncio.wait_for(future, command.timeout_s + self._forward_timeout_s)
            except TimeoutError:
                self.counts["forwardTimeouts"] += 1
                return CommandResult.failed(
                    command.id,
                    ErrorCode.TIMEOUT,
                    f"no answer from gateway instance {lease.owner} in time",
                )
        finally:
            self._pending.pop(rid, None)
        return None if result.error_code is _MOVED else result

    async def serve(self, data: dict[str, Any]) -> None:
        rid, sender = str(data["rid"]), str(data["from"])
        command = decode_command(data["command"])
        if not self._holds(command.meter):
            result = CommandResult.failed(command.id, _MOVED, "moved")
        else:
            self.counts["forwardsServed"] += 1
            result = await self._local_runner.run(command)
        with contextlib.suppress(ClusterUnavailable):
            await self._send(sender, {"t": "reply", "rid": rid, "result": encode_result(result)})


#: Internal marker of a reply "I do not hold that meter" (never reaches a user).
_MOVED = ErrorCode.METER_OFFLINE


def _offline(command: Command, why: str) -> CommandResult:
    return CommandResult.failed(command.id, ErrorCode.METER_OFFLINE, why)
