"""Origins: a browser page may call the API from this server's own origin or from one
in `ALLOWED_ORIGINS` (`*` allows any); others are refused with 403, so a page
elsewhere cannot use a visitor's browser against us. Requests without an `Origin`
(WHIP encoders, servers, curl) are judged by their token alone."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from media_server.metrics import REQUESTS_REFUSED
from signaling.errors import json_error

API_PREFIXES = ("/api/", "/whip/", "/whep/")
MAX_AGE_S = 600


def _own_origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def cors_middleware(allowed: tuple[str, ...]) -> web.middleware:  # type: ignore[valid-type]
    allowed_set = frozenset(allowed)

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is None or not request.path.startswith(API_PREFIXES):
            return await handler(request)
        if origin != _own_origin(request) and origin not in allowed_set and "*" not in allowed_set:
            REQUESTS_REFUSED.labels("origin").inc()
            return json_error(403, "origin_forbidden",
                              f"pages from {origin} may not use this server")
        if request.method == "OPTIONS":  # a preflight
            response: web.StreamResponse = web.Response(status=204, headers={
                "Access-Control-Allow-Methods": "GET, POST, PATCH, DELETE, OPTIONS",
                "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
                "Access-Control-Max-Age": str(MAX_AGE_S),
            })
        else:
            response = await handler(request)
            # WHIP/WHEP clients read these from the answer.
            response.headers["Access-Control-Expose-Headers"] = "Location, ETag, Link"
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        return response

    return cors
