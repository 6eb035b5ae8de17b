"""The dashboard is served by the gateway itself: ``/`` and its assets, strict headers."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from ivy_gateway.adapters.http.routes_dashboard import DASHBOARD_HEADERS

Client = Callable[..., httpx.AsyncClient]
DASHBOARD = Path(__file__).resolve().parents[4] / "src/ivy_gateway/adapters/http/dashboard"


async def test_the_page_is_served_at_the_root_with_a_strict_policy(make_client: Client) -> None:
    response = await make_client().get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module" src="/dashboard/app.js">' in response.text


@pytest.mark.parametrize(
    ("name", "media_type"),
    [("app.js", "text/javascript"), ("app.css", "text/css"), ("chart.js", "text/javascript")],
)
async def test_assets_are_served_with_their_type(
    make_client: Client, name: str, media_type: str
) -> None:
    response = await make_client().get(f"/dashboard/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)
    assert response.headers["cache-control"] == DASHBOARD_HEADERS["Cache-Control"]


async def test_other_names_are_the_apis_404(make_client: Client) -> None:
    client = make_client()
    for path in ("/dashboard/missing.js", "/dashboard/..%2Fapi.py", "/dashboard/"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"


async def test_the_dashboard_stays_out_of_the_openapi_document(make_client: Client) -> None:
    paths = (await make_client().get("/api/v1/openapi.json")).json()["paths"]
    assert "/" not in paths
    assert not any(p.startswith("/dashboard") for p in paths)


def test_every_module_the_page_imports_is_shipped() -> None:
    """No CDN, no build step: every import is a relative file in the package folder."""
    for script in DASHBOARD.glob("*.js"):
        for target in re.findall(r'from "([^"]+)"', script.read_text()):
            assert target.startswith("./"), f"{script.name} imports {target}"
            assert (DASHBOARD / target[2:]).is_file(), f"{script.name} imports {target}"
        assert "innerHTML" not in script.read_text(), f"{script.name} uses innerHTML"
        assert "http://" not in script.read_text().replace("http://www.w3.org/2000/svg", "")
