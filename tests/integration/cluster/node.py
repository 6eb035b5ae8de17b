"""One clustered gateway process for the cluster tests: ``python node.py CONFIG.toml``.

When ``app.py`` builds the cluster itself (WIRING_REQUEST_cluster.md applied: ``Gateway``
has a ``cluster`` attribute and settings know ``cluster.redis_url``), this is just
``ivy-gateway serve --config CONFIG``. Until then it composes the same pieces around an
unmodified ``Gateway`` — exactly what the wiring request asks app.py to do — reading the
Redis URL and namespace from ``IVY_TEST_REDIS_URL`` / ``IVY_TEST_CLUSTER_NS``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from ivy_gateway.adapters.cluster import RedisCluster
from ivy_gateway.adapters.mqtt.topics import Topics
from ivy_gateway.app import Gateway
from ivy_gateway.cli import main as cli_main
from ivy_gateway.domain.commands import Command, CommandResult
from ivy_gateway.domain.meter import MeterId
from ivy_gateway.observability import configure_logging
from ivy_gateway.services.coordinator import ClusterCommandRunner
from ivy_gateway.settings import ClusterSettings, load_settings


class _Local:
    """The gateway's own CommandService.run, kept before the coordinator replaces it."""

    def __init__(self, run: Callable[[Command], object]) -> None:
        self._run = run

    async def run(self, command: Command) -> CommandResult:
        result = await self._run(command)  # type: ignore[misc]
        assert isinstance(result, CommandResult)
        return result


async def _compose(config: Path) -> None:
    settings = load_settings(config, {})
    gateway = Gateway(settings)
    gateway_id = gateway.gateway_id
    context, registry = gateway.context, gateway.context.registry

    def evict(meter: MeterId) -> None:
        session = registry.get(meter)
        if session is not None:
            registry.release(meter, session)
            session.close("the meter reconnected to another gateway instance")
            gateway.poller.unregister(meter)

    local = _Local(gateway.commands.run)
    cluster = RedisCluster(
        os.environ["IVY_TEST_REDIS_URL"],
        gateway_id,
        local_runner=local,
        on_takeover=evict,
        namespace=os.environ["IVY_TEST_CLUSTER_NS"],
        lease_ttl_s=float(os.environ.get("IVY_TEST_LEASE_TTL_S", "10")),
        heartbeat_s=1.0,
    )
    runner = ClusterCommandRunner(local, registry, cluster, cluster, cluster.journal)
    gateway.commands.run = runner.run  # type: ignore[method-assign]
    # MQTT shared subscription: each request reaches one instance.
    Topics.command_request_filter = property(  # type: ignore[method-assign,assignment]
        lambda self: f"$share/ivy/{self.prefix}/meters/+/command/request"
    )
    claim, release = context.claim, context.release

    def gated_claim(session: object) -> None:
        meter = session.meter  # type: ignore[attr-defined]
        displaced = registry.claim(meter, session)  # type: ignore[arg-type]
        if displaced is not None:
            displaced.close("replaced by a newer connection of the same meter")

        def announce() -> None:
            if registry.get(meter) is session:
                claim(session)  # type: ignore[arg-type]  # registers again (no-op) + online

        cluster.claimed(meter, announce)

    def gated_release(session: object) -> None:
        meter = session.meter  # type: ignore[attr-defined]
        if registry.get(meter) is session:
            cluster.released(meter, lambda: release(session))  # type: ignore[arg-type]

    context.claim = gated_claim  # type: ignore[method-assign]
    context.release = gated_release  # type: ignore[method-assign]

    await cluster.start()
    try:
        async with gateway:
            print(f"node {gateway_id} ready on {gateway.ports['meters'].port}", flush=True)
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, gateway.request_stop)
            await gateway.wait_stopped()
    finally:
        await cluster.stop()


def main() -> None:
    config = Path(sys.argv[1])
    if "redis_url" in ClusterSettings.model_fields and hasattr(Gateway, "_hand_over"):
        os.environ["IVY_CLUSTER__REDIS_URL"] = os.environ["IVY_TEST_REDIS_URL"]
        os.environ["IVY_CLUSTER__NAMESPACE"] = os.environ["IVY_TEST_CLUSTER_NS"]
        os.environ["IVY_CLUSTER__LEASE_TTL_S"] = os.environ.get("IVY_TEST_LEASE_TTL_S", "10")
        os.environ["IVY_CLUSTER__HEARTBEAT_S"] = "1"
        sys.argv = ["ivy-gateway", "serve", "--config", str(config)]
        cli_main()
        return
    configure_logging("WARNING", {}, json_format=False)
    asyncio.run(_compose(config))


if __name__ == "__main__":
    main()
