"""A fleet of simulated meters dialling one gateway, as ``ivy-gateway simulate`` runs it.

Each meter keeps its connection up the way a 4G modem does: it dials, serves the gateway's
requests, and when the connection drops it dials again after a back-off with jitter. Dials
are paced (``dial_rate_per_s``) so a large fleet does not arrive as one SYN flood, which a
gateway's per-IP rate limit would rightly refuse.

Addresses are deterministic so tests and the demo can configure the gateway for them:
DL/T 645 ``00000001nnnn`` (single-phase when n is odd), EM114070 ``31150111nnnn``,
ciphered DLMS ``41000000nnnn``. The ciphered meters share ``DEMO_KEYS`` — the Green Book's
published example keys, good for a demo and never for a real meter.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ivy_gateway.codec.dlms.security import SecurityKeys

from .dlms_meter import DlmsMeter
from .dlt645_meter import Dlt645Meter
from .em114070_meter import Em114070Meter
from .faults import NO_FAULTS, Faults

__all__ = [
    "DEMO_KEYS",
    "DEMO_SERVER_TITLE",
    "Fleet",
    "FleetPlan",
    "dlms_address",
    "dlt645_address",
    "em114070_address",
    "gateway_settings_for",
]

#: The gateway's own (client) system title in the demo.
DEMO_CLIENT_TITLE = "4D4D4D0000000001"

#: Example keys of the DLMS Green Book (public): for simulators and demos only.
DEMO_KEYS = SecurityKeys(
    ek=bytes.fromhex("000102030405060708090A0B0C0D0E0F"),
    ak=bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"),
)
DEMO_SERVER_TITLE = bytes.fromhex("4D4D4D0000BC614E")

Meter = Dlt645Meter | Em114070Meter | DlmsMeter


def dlt645_address(n: int) -> str:
    return f"00000001{n:04d}"


def em114070_address(n: int) -> str:
    return f"31150111{n:04d}"


def dlms_address(n: int) -> str:
    return f"41000000{n:04d}"


@dataclass(frozen=True, slots=True)
class FleetPlan:
    dlt645: int = 0
    em114070: int = 0
    dlms: int = 0
    seed: int = 1
    faults: Faults = NO_FAULTS
    dial_rate_per_s: float = 200.0
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 30.0
    time_scale: float = 1.0
    dlt645_announce: bool = True
    em114070_disconnect_control: bool = True
    keys: SecurityKeys = field(default=DEMO_KEYS, repr=False)

    def __post_init__(self) -> None:
        if not all(0 <= n <= 9999 for n in (self.dlt645, self.em114070, self.dlms)):
            raise ValueError("meter counts are 0..9999 per kind")
        if self.dial_rate_per_s <= 0:
            raise ValueError("dial_rate_per_s must be positive")

    @property
    def size(self) -> int:
        return self.dlt645 + self.em114070 + self.dlms


class Fleet:
    """Builds the plan's meters; ``run(host, port)`` keeps them all dialled in until cancelled."""

    def __init__(self, plan: FleetPlan) -> None:
        self.plan = plan
        rng = random.Random(plan.seed)
        self.meters: list[Meter] = []
        for n in range(1, plan.dlt645 + 1):
            self.meters.append(
                Dlt645Meter(
                    dlt645_address(n),
                    phases=1 if n % 2 else 3,
                    seed=rng.randrange(1 << 30),
                    announce=plan.dlt645_announce,
                    faults=plan.faults,
                    time_scale=plan.time_scale,
                )
            )
        for n in range(1, plan.em114070 + 1):
            self.meters.append(
                Em114070Meter(
                    em114070_address(n),
                    seed=rng.randrange(1 << 30),
                    faults=plan.faults,
                    disconnect_control=plan.em114070_disconnect_control,
                    time_scale=plan.time_scale,
                )
            )
        for n in range(1, plan.dlms + 1):
            self.meters.append(
                DlmsMeter(
                    dlms_address(n),
                    keys=plan.keys,
                    system_title=DEMO_SERVER_TITLE[:4] + n.to_bytes(4, "big"),
                    seed=rng.randrange(1 << 30),
                    faults=plan.faults,
                    time_scale=plan.time_scale,
                )
            )
        self._rng = rng
        self.dials = 0
        self.failed_dials = 0
        self.connected = 0

    def address_of(self, meter: Meter) -> str:
        return str(meter.address)

    async def run(
        self, host: str, port: int, *, on_progress: Callable[[Fleet], None] | None = None
    ) -> None:
        """Dial every meter (paced), keep them connected; returns only when cancelled."""
        interval = 1.0 / self.plan.dial_rate_per_s
        async with asyncio.TaskGroup() as tasks:
            for index, meter in enumerate(self.meters):
                tasks.create_task(self._keep_dialled(meter, host, port), name=f"meter-{index}")
                await asyncio.sleep(interval)
                if on_progress is not None and (index + 1) % 100 == 0:
                    on_progress(self)
            if on_progress is not None:
                on_progress(self)

    async def _keep_dialled(self, meter: Meter, host: str, port: int) -> None:
        backoff = self.plan.reconnect_min_s
        while True:
            self.dials += 1
            try:
                self.connected += 1
                try:
                    await meter.connect(host, port)
                finally:
                    self.connected -= 1
                backoff = self.plan.reconnect_min_s  # it was up: start over gently
            except OSError:
                self.failed_dials += 1
                backoff = min(backoff * 2, self.plan.reconnect_max_s)
            await asyncio.sleep(backoff * self._rng.uniform(0.5, 1.0))


def gateway_settings_for(plan: FleetPlan) -> dict[str, Any]:
    """Settings a gateway needs for this fleet: the ciphered meters' model and keys.

    Plain data in the shape of the settings file (``profiles.meters``), so simulators need
    not import the gateway's settings.
    """
    meters = {
        dlms_address(n): {
            "model": "dlms-three-phase",
            "dlms_ek": plan.keys.ek.hex(),
            "dlms_ak": plan.keys.ak.hex(),
            "dlms_system_title": DEMO_CLIENT_TITLE,
        }
        for n in range(1, plan.dlms + 1)
    }
    return {"profiles": {"meters": meters}}
