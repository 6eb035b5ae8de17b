"""Cluster mode on Redis: meter leases, command forwarding, shared per-IP limits.

Wiring (``app``)::

    cluster = RedisCluster(url, gateway_id, local_runner=commands, on_takeover=evict)
    await cluster.start()
    context.ownership = cluster                      # OwnershipGate
    runner = ClusterCommandRunner(commands, registry, cluster, cluster, cluster)
    StreamServer(..., ip_cap=cluster.shared_ip_cap(n), rate_limit=cluster.shared_ip_rate(...))
    ...
    await cluster.stop()
"""

from .forwarding import RedisJournal
from .limits import SharedIpCap, SharedIpRate
from .redis import RedisCluster

__all__ = ["RedisCluster", "RedisJournal", "SharedIpCap", "SharedIpRate"]
