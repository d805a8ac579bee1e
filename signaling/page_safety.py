"""What keeps browsers from being turned against the server or its users: headers on
every answer (a page's address, which may hold a token, leaks to no other site in a
`Referer`; no content sniffing; no framing by other sites), and under `serve --dev`,
which checks no tokens, a `Host` check: a page on another site that points its
own name at 127.0.0.1 (DNS rebinding) is refused."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from media_server.metrics import REQUESTS_REFUSED
from signaling.errors import json_error

HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
}
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})


async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)


def protect(app: web.Application) -> None:
    app.on_response_prepare.append(add_headers)


def _host_name(host: str) -> str:
    if host.startswith("["):  # [::1]:8080
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


@web.middleware
async def loopback_host_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    if _host_name(request.host.lower()) not in LOOPBACK_NAMES:
        REQUESTS_REFUSED.labels("host").inc()
        return json_error(403, "host_forbidden", "a development server answers to "
                          "localhost, 127.0.0.1 and [::1] only")
    return await handler(request)
