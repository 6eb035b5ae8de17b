"""Browser tests: headless Debian Chromium (``/usr/bin/chromium``) driven by Playwright.

Playwright's own browser download (``playwright install``) is never used: it fails on
machines without internet access, and the system Chromium is what CI installs
(``apt-get install chromium``). Without Chromium the tests skip with the reason; with
``CI=true`` that skip is a failure, so CI never passes without having run them.

Screenshots go to ``test-artifacts/browser/`` (git-ignored) for people to look at.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from ivy_gateway.app import Gateway
from ivy_gateway.settings import load_settings
from ivy_gateway.simulators.fleet import Fleet, FleetPlan, gateway_settings_for

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"

#: The flags this machine needs (no GPU, no sandbox as root, no background traffic to a
#: network that refuses it); a fresh profile per launch comes from Playwright.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def skip_or_fail(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a skipped browser test is a failure)")
    pytest.skip(reason)


def chromium_path() -> str | None:
    wanted = os.environ.get("IVY_TEST_CHROMIUM", "/usr/bin/chromium")
    return wanted if os.access(wanted, os.X_OK) else shutil.which("chromium")


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Any]:
    path = chromium_path()
    if path is None:
        skip_or_fail(
            "BROWSER TESTS NOT RUN: no Chromium at /usr/bin/chromium "
            "(apt-get install chromium, or set IVY_TEST_CHROMIUM)"
        )
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        skip_or_fail(
            "BROWSER TESTS NOT RUN: the playwright package is missing (pip install -e '.[dev]')"
        )
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@dataclass
class RunningFleet:
    gateway: Gateway
    fleet: Fleet
    base_url: str


@contextlib.asynccontextmanager
async def running_fleet(tmp_path: Path, **http: Any) -> AsyncIterator[RunningFleet]:
    """A gateway on loopback with 2 DL/T 645, 1 EM114070 and 1 DLMS simulated meters."""
    plan = FleetPlan(dlt645=2, em114070=1, dlms=1, seed=7)
    settings = load_settings(
        None,
        {
            **gateway_settings_for(plan),
            "meters": {"host": "127.0.0.1", "port": 0},
            "mqtt": {"host": "127.0.0.1", "port": 0, "ws_port": 0},
            "http": {"host": "127.0.0.1", "port": 0, **http},
            "storage": {"url": f"sqlite:///{tmp_path / 'browser.db'}", "batch_interval_s": 0.1},
            "polling": {"interval_scale": 0.02, "timeout_s": 2.0},  # 60 s groups → 1.2 s
        },
    )
    fleet = Fleet(plan)
    async with Gateway(settings) as gateway:
        task = asyncio.create_task(fleet.run("127.0.0.1", gateway.ports["meters"].port))
        try:
            yield RunningFleet(gateway, fleet, f"http://127.0.0.1:{gateway.ports['http'].port}")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
