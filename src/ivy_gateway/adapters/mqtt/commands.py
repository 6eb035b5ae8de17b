"""Command intake: ``{p}/meters/+/command/request`` → parse → run → ``command/response``.

::

    transport ──submit(topic, payload, user)──► parse (services) ──► one task per command
     (embedded: broker hook;                     │ invalid: answered at once  │ ≤ max_concurrency
      external: subscription, QoS 1)             ▼                            ▼ run at once
                                           command/response ◄──────── CommandRunner.run()

``submit`` never blocks the transport's receive path: a slow meter (a 30 s relay command)
holds one task, not the intake. Every request with a usable topic gets exactly one response:
malformed JSON, a missing ``id``, an unknown method or bad params → ``invalid_command``;
more than ``max_pending`` commands waiting → ``busy``; a runner that raises → ``internal``.
A topic that names no valid meter cannot be answered (there is no response topic for it)
and is only counted and logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Protocol

from ivy_gateway.domain.commands import Command, CommandResult, ErrorCode
from ivy_gateway.domain.meter import MeterId
from ivy_gateway.domain.ports import CommandRunner
from ivy_gateway.services.commands import InvalidCommand

from .outbox import Transport
from .topics import Topics

__all__ = ["CommandIntake", "CommandParser", "ResponsePublisher"]

log = logging.getLogger(__name__)


class CommandParser(Protocol):
    """``CommandService.parse_command``: raises ``InvalidCommand`` for a bad request."""

    def parse_command(self, meter_id: str, payload: bytes, requested_by: str = ...) -> Command: ...


class ResponsePublisher(Protocol):
    def publish_command_response(self, meter: MeterId, result: CommandResult) -> None: ...


def _request_id(payload: bytes) -> str:
    """The request's ``id`` if one can be read, else "" (for answers given before parsing)."""
    try:
        data = json.loads(payload)
    except ValueError:
        return ""
    raw = data.get("id") if isinstance(data, dict) else None
    return str(raw) if isinstance(raw, str | int) and not isinstance(raw, bool) else ""


class CommandIntake:
    def __init__(
        self,
        parser: CommandParser,
        runner: CommandRunner,
        publisher: ResponsePublisher,
        topics: Topics,
        *,
        max_concurrency: int = 64,
        max_pending: int = 1_000,
    ) -> None:
        self._parser = parser
        self._runner = runner
        self._publisher = publisher
        self._topics = topics
        self._slots = asyncio.Semaphore(max_concurrency)
        self._max_pending = max_pending
        self._tasks: set[asyncio.Task[None]] = set()
        self.received = 0
        self.rejected_topics = 0
        self.busy = 0

    def attach(self, transport: Transport, *, shared_group: str | None = None) -> None:
        """Receive the command requests arriving through ``transport``.

        ``shared_group``: subscribe as ``$share/<group>/…`` so that with several gateway
        instances on one broker each request reaches exactly one of them.
        """
        topic_filter = self._topics.command_request_filter
        if shared_group is not None:
            topic_filter = f"$share/{shared_group}/{topic_filter}"
        transport.set_inbound(topic_filter, self.submit)

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def submit(self, topic: str, payload: bytes, requested_by: str) -> None:
        """Take one request; never blocks and never raises."""
        try:
            meter = self._topics.parse_command_request(topic)
        except ValueError:
            self.rejected_topics += 1
            log.warning("MQTT: ignored a command on %r: no valid meter id in the topic", topic)
            return
        self.received += 1
        try:
            command = self._parser.parse_command(meter.value, payload, requested_by)
        except InvalidCommand as exc:
            self._respond(meter, exc.to_result())
            return
        except Exception as exc:
            log.exception("command parser failed on a request for %s", meter)
            self._respond(
                meter,
                CommandResult.failed(
                    _request_id(payload),
                    ErrorCode.INTERNAL,
                    f"internal error ({type(exc).__name__})",
                ),
            )
            return
        if len(self._tasks) >= self._max_pending:
            self.busy += 1
            self._respond(
                meter,
                CommandResult.failed(command.id, ErrorCode.BUSY, "too many commands waiting"),
            )
            return
        task = asyncio.get_running_loop().create_task(self._run(meter, command))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, meter: MeterId, command: Command) -> None:
        async with self._slots:
            try:
                result = await self._runner.run(command)
            except Exception as exc:
                log.exception("command %s (%s) on %s failed", command.id, command.method, meter)
                result = CommandResult.failed(
                    command.id, ErrorCode.INTERNAL, f"internal error ({type(exc).__name__})"
                )
        self._respond(meter, result)

    def _respond(self, meter: MeterId, result: CommandResult) -> None:
        try:
            self._publisher.publish_command_response(meter, result)
        except Exception:
            log.exception("could not publish the response to command %r", result.id)

    async def run(self) -> None:
        """Wait until cancelled, then cancel the commands still running."""
        try:
            await asyncio.Event().wait()
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
