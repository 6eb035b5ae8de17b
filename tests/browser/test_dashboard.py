"""The dashboard in headless Chromium against a running gateway with a simulated fleet.

Issue "Live dashboard and operability", done means: the fleet view lists the meters, a
value changes live, a history chart renders, a relay command issued from the page (with
its confirmation step) changes the simulator's relay. Screenshots: test-artifacts/browser/.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ivy_gateway.simulators.dlt645_meter import Dlt645Meter

from .conftest import RunningFleet, running_fleet

if TYPE_CHECKING:  # without playwright the ``browser`` fixture skips (fails with CI=true)
    from playwright.async_api import Browser, ConsoleMessage, Page

pytestmark = [pytest.mark.slow]

TIMEOUT_MS = 20_000


async def open_page(browser: Browser, url: str, problems: list[str]) -> Page:
    page = await browser.new_page(viewport={"width": 1300, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console: {message.text}")

    page.on("console", console)
    await page.goto(url)
    return page


async def wait_until(page: Page, expression: str, arg: object = None) -> None:
    """``wait_for_function`` polling on a timer: headless pages may not run animation frames."""
    await page.wait_for_function(expression, arg=arg, polling=200)


def relay_is_open(meter: Dlt645Meter) -> bool:
    """The simulator's relay, read fresh (the page changes it while the test waits)."""
    return meter.relay_open


def relay_meter(running: RunningFleet) -> Dlt645Meter:
    meter = running.fleet.meters[0]
    assert isinstance(meter, Dlt645Meter)
    return meter


async def check_fleet_lists_every_meter(page: Page, running: RunningFleet, shots: Path) -> None:
    addresses = [running.fleet.address_of(m) for m in running.fleet.meters]
    for address in addresses:
        await page.wait_for_selector(f'tr[data-meter-id="{address}"]')
    await page.screenshot(path=str(shots / "fleet-first.png"), full_page=True)
    await wait_until(
        page,
        "n => document.querySelector('[data-testid=count-online]').textContent === String(n)",
        arg=len(addresses),
    )
    assert await page.locator("tr[data-meter-id]").count() == len(addresses)
    protocols = await page.locator("tr[data-meter-id] td:nth-child(2)").all_inner_texts()
    assert set(protocols) == {"dlt645", "dlms"}
    await page.screenshot(path=str(shots / "fleet.png"), full_page=True)

    # Search and filter narrow the list without asking the server.
    await page.fill("[data-testid=fleet-search]", addresses[0])
    visible = page.locator("tr[data-meter-id]:visible")
    await wait_until(
        page, "() => document.querySelectorAll('tr[data-meter-id]:not([hidden])').length === 1"
    )
    assert await visible.first.get_attribute("data-meter-id") == addresses[0]
    await page.fill("[data-testid=fleet-search]", "")
    await page.select_option("[data-testid=fleet-protocol]", "dlms")
    assert await page.locator("tr[data-meter-id]:not([hidden])").count() == 2
    await page.select_option("[data-testid=fleet-protocol]", "all")


async def check_a_value_changes_live(page: Page, meter_id: str, shots: Path) -> None:
    await page.evaluate("() => { window.__sameDocument = true; }")
    cell = f'tr[data-meter-id="{meter_id}"] td[data-quantity^="voltage"]'
    await wait_until(
        page,
        "sel => { const c = document.querySelector(sel); return c && c.textContent !== '—'; }",
        arg=cell,
    )
    before = await page.inner_text(cell)
    await wait_until(
        page, "([sel, old]) => document.querySelector(sel).textContent !== old", arg=[cell, before]
    )
    after = await page.inner_text(cell)
    assert after != before
    assert await page.evaluate("() => window.__sameDocument === true"), "the page reloaded"
    await page.screenshot(path=str(shots / "fleet-live.png"), full_page=True)


async def check_history_chart(page: Page, meter_id: str, shots: Path) -> None:
    await page.click(f'tr[data-meter-id="{meter_id}"] a')
    await page.wait_for_selector("[data-testid=live-values] td[data-quantity]")
    await page.select_option("[data-testid=history-range]", label="15m")  # raw readings
    for _ in range(40):  # readings reach the store in batches: ask again until 3 points
        points = await page.locator("svg[data-testid=history-chart]").get_attribute("data-points")
        if points is not None and int(points) >= 3:
            break
        await page.wait_for_timeout(500)
        await page.click("text=Refresh")
    chart = page.locator("svg[data-testid=history-chart]")
    assert int(await chart.get_attribute("data-points") or 0) >= 3
    assert await chart.locator("path.series").count() == 1
    assert (await chart.locator("path.series").get_attribute("d") or "").count("L") >= 2
    await page.screenshot(path=str(shots / "meter-history.png"), full_page=True)


async def check_relay_with_confirmation(page: Page, meter: Dlt645Meter, shots: Path) -> None:
    assert not relay_is_open(meter)
    await page.click("[data-testid=relay-open]")
    dialog = page.locator("[data-testid=relay-dialog]")
    await dialog.wait_for(state="visible")
    await page.click("[data-testid=relay-cancel]")  # cancelled: nothing is sent
    await dialog.wait_for(state="hidden")
    assert await page.locator("li[data-method=relay_control]").count() == 0
    assert not relay_is_open(meter)

    await page.click("[data-testid=relay-open]")
    await dialog.wait_for(state="visible")
    await page.screenshot(path=str(shots / "relay-confirm.png"))
    assert not relay_is_open(meter)  # the confirmation step comes before the command
    await page.click("[data-testid=relay-confirm]")
    await page.wait_for_selector("li[data-method=relay_control][data-state=succeeded]")
    assert relay_is_open(meter)
    assert await page.inner_text("[data-testid=relay-state]") == "open"
    await page.screenshot(path=str(shots / "relay-done.png"), full_page=True)


async def check_read_register(page: Page) -> None:
    await page.select_option("[data-testid=command-method]", "read_register")
    await page.fill("[data-testid=command-register]", "voltage_l1")
    await page.click("[data-testid=command-send]")
    entry = page.locator("li[data-method=read_register][data-state=succeeded]")
    await entry.wait_for()
    assert '"register": "voltage_l1"' in await entry.locator("pre").inner_text()


async def test_dashboard_against_a_simulated_fleet(
    browser: Browser, tmp_path: Path, artifacts: Path
) -> None:
    problems: list[str] = []
    async with running_fleet(tmp_path) as running:
        page = await open_page(browser, running.base_url + "/", problems)
        meter = relay_meter(running)
        meter_id = running.fleet.address_of(meter)
        await check_fleet_lists_every_meter(page, running, artifacts)
        await check_a_value_changes_live(page, meter_id, artifacts)
        await check_history_chart(page, meter_id, artifacts)
        await check_read_register(page)
        await check_relay_with_confirmation(page, meter, artifacts)

        await page.goto(running.base_url + "/#/gateway")
        await wait_until(
            page, "() => document.querySelector('[data-testid=gw-connections]').textContent === '4'"
        )
        await page.screenshot(path=str(artifacts / "gateway.png"), full_page=True)
        await page.close()
    assert problems == []


async def test_dashboard_asks_for_the_token_when_commands_are_protected(
    browser: Browser, tmp_path: Path, artifacts: Path
) -> None:
    token = "dashboard-test-token-6c1f0e"
    digest = hashlib.sha256(token.encode()).hexdigest()
    problems: list[str] = []
    async with running_fleet(tmp_path, tokens={"ops": f"sha256:{digest}"}) as running:
        meter = relay_meter(running)
        meter_id = running.fleet.address_of(meter)
        page = await open_page(browser, f"{running.base_url}/#/meter/{meter_id}", problems)
        messages: list[str] = []
        page.on("console", lambda message: messages.append(message.text))
        await page.wait_for_selector("[data-testid=live-values] td[data-quantity]")

        await page.click("[data-testid=relay-open]")
        await page.click("[data-testid=relay-confirm]")
        await page.locator("[data-testid=token-dialog]").wait_for(state="visible")
        await page.wait_for_selector("li[data-method=relay_control][data-state=failed]")
        assert not relay_is_open(meter)
        await page.fill("[data-testid=token-input]", token)
        await page.screenshot(path=str(artifacts / "token-dialog.png"))
        await page.click("[data-testid=token-save]")

        await page.click("[data-testid=relay-open]")
        await page.click("[data-testid=relay-confirm]")
        await page.wait_for_selector("li[data-method=relay_control][data-state=succeeded]")
        assert relay_is_open(meter)
        stored = await page.evaluate(
            "() => [sessionStorage.getItem('ivy-gateway.token'), localStorage.length,"
            " document.cookie, location.href]"
        )
        assert stored[0] == token
        assert stored[1:3] == [0, ""]
        assert token not in stored[3]
        assert not any(token in text for text in messages)
        await page.close()
    # The refused command is the only expected console error (the browser logs the 401).
    assert all("401" in problem for problem in problems), problems
