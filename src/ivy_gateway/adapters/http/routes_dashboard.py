"""The dashboard: ``/`` serves ``dashboard/index.html``, ``/dashboard/<file>`` its assets.

The page is plain ES modules, CSS and one HTML file, read once when the API is created
(no build step, nothing fetched from a CDN). Only the files that exist in the package
folder are served; any other name is the API's ordinary 404. The page holds no secret and
reads the API like any client, so it is open even when ``protect_reads`` is set: the page
then asks for a token and keeps it in ``sessionStorage``.

Every response carries a strict Content-Security-Policy (same origin only, no inline
script or style), so even a bug that inserted meter data as HTML could not run it.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from starlette.responses import Response

from .errors import ApiError

__all__ = ["DASHBOARD_HEADERS", "dashboard_routes"]

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}

DASHBOARD_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Small files, changed only by an upgrade: revalidate so an upgrade shows at once.
    "Cache-Control": "no-cache",
}


def _load_assets() -> dict[str, tuple[bytes, str]]:
    folder = resources.files(__package__).joinpath("dashboard")
    assets: dict[str, tuple[bytes, str]] = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in _CONTENT_TYPES:
            assets[entry.name] = (entry.read_bytes(), _CONTENT_TYPES[suffix])
    return assets


def dashboard_routes() -> APIRouter:
    """``GET /`` and ``GET /dashboard/{name}``, left out of the OpenAPI document."""
    assets = _load_assets()
    router = APIRouter(include_in_schema=False)

    def serve(name: str) -> Response:
        found = assets.get(name)
        if found is None:
            raise ApiError(404, "not_found", f"no dashboard file {name!r}")
        body, media_type = found
        return Response(body, 200, media_type=media_type, headers=DASHBOARD_HEADERS)

    @router.get("/")
    async def index() -> Response:
        return serve("index.html")

    @router.get("/dashboard/{name}")
    async def asset(name: str) -> Response:
        return serve(name)

    return router
