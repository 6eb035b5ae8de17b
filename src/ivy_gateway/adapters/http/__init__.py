"""The HTTP API (CONTRACT.md "HTTP API"): REST + OpenAPI, probes, metrics, SSE live feed.

Wiring (``app.py``)::

    feed = LiveFeed(gateway_id)
    telemetry.add_sink("live", feed)
    app = create_api(ApiDeps(store=store, parser=commands, runner=commands, ...))
    http = HttpServer(app, host, port)
    port = await http.start()          # HttpPortInUse when taken
    ...
    await http.stop()                  # ends live streams, lets requests finish

See docs/http.md for the endpoints, the error format and the status mapping.
"""

from .api import ApiRuntime, create_api
from .auth import TokenVerifier, generate_token, hash_token
from .deps import ApiDeps, ApiOptions, ApiStore, GatewayInfo, LiveState, ReadinessCheck
from .errors import ApiError
from .live import LiveFeed, LiveMessage, Subscription, TooManySubscribers
from .routes_commands import STATUS_BY_ERROR_CODE
from .routes_system import counters_metrics, store_check
from .server import HttpPortInUse, HttpServer, serve_http

__all__ = [
    "STATUS_BY_ERROR_CODE",
    "ApiDeps",
    "ApiError",
    "ApiOptions",
    "ApiRuntime",
    "ApiStore",
    "GatewayInfo",
    "HttpPortInUse",
    "HttpServer",
    "LiveFeed",
    "LiveMessage",
    "LiveState",
    "ReadinessCheck",
    "Subscription",
    "TokenVerifier",
    "TooManySubscribers",
    "counters_metrics",
    "create_api",
    "generate_token",
    "hash_token",
    "serve_http",
    "store_check",
]
