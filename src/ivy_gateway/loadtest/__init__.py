"""The fleet load benchmark: one gateway process, a swarm of cheap meters, honest numbers.

Composition-level (like ``cli``): it builds a ``Gateway`` exactly as ``serve`` does, in a
child process of its own, and dials it from one or more *swarm* child processes::

    parent (run_load)          ── stdin/stdout JSON lines ──  gateway child  (Gateway + poll timer)
      │ reads /proc/<pid>/status VmRSS of the gateway child        ▲
      └─ swarm child(ren): N DL/T 645 meters on one event loop ──TCP (127.0.0.1 only)

Why three processes: the gateway's RSS must hold only gateway-side sockets and state, and
each process has its own open-file limit (20,000 here), so 10,000 meters fit on each side.

A swarm meter is an ``asyncio.Protocol`` with a ``FrameDecoder``: it announces its address
(``93``, as a 4G module does), then answers every read with the reply a three-phase
``Dlt645Meter`` gives, computed once per request kind and cached per connection. Values are
therefore canned; the gateway's path (decode, map, store, publish) is the same as for live
values, and the client stays cheap enough to share two cores with the gateway.

What is measured (see docs/performance.md for the definitions):

* held meters: the gateway's ``metersOnline`` (identified, claimed, polled);
* RSS per connection: (gateway VmRSS when all are held − VmRSS before the first dial) / held;
* readings/s: the gateway's ``readingsTotal`` growth over the window (readings that entered
  the telemetry fan-out to store and MQTT); rows in the SQLite file are counted afterwards;
* poll latency: in the gateway process, the wall time of one ``MeterLink.read`` of a poll
  group (all its quantities, one request/reply each) — p50/p99/max over the window.
"""

from .children import MeterSwarm, meter_address
from .engine import LoadPlan, LoadReport, format_report, run_bench, run_load

__all__ = [
    "LoadPlan",
    "LoadReport",
    "MeterSwarm",
    "format_report",
    "meter_address",
    "run_bench",
    "run_load",
]
