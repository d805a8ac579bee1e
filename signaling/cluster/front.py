"""`live-interpreter signaling`: the public front of a scaled-out deployment. It serves
the pages, checks origins and rate limits, places rooms on media nodes and forwards
each request to the node concerned (`forwarding.py`), and streams any room's captions
from Redis (`caption_stream.py`). It runs no engines; run as many as you like."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError

from media_server.settings import Settings, SettingsError
from signaling.access import ACCESS, Access
from signaling.app import healthz, web_client_routes
from signaling.clients import CLIENT, behind_proxies
from signaling.cluster import caption_stream, forwarding
from signaling.cluster.caption_hub import CaptionHub
from signaling.cluster.placement import Placement
from signaling.cors import cors_middleware
from signaling.errors import error_middleware
from signaling.metrics_listener import serve_metrics
from signaling.page_safety import protect
from signaling.rate_limit import RateLimiter
from signaling.state import SETTINGS
from signaling.tokens import auth_secret

FORWARD_TIMEOUT_S = 30.0  # an offer's answer includes the node's ICE gathering

routes = web.RouteTableDef()


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Ready while Redis answers and at least one media node is live."""
    try:
        nodes = await request.app[forwarding.PLACEMENT].live_nodes()
    except (RedisError, OSError):
        return web.json_response({"status": "no redis"}, status=503)
    if not nodes:
        return web.json_response({"status": "no media node"}, status=503)
    return web.json_response({"status": "ready", "media_nodes": len(nodes)})


def create_signaling_app(settings: Settings) -> web.Application:
    if not settings.redis_url or not settings.node_secret:
        raise SettingsError("signaling needs redis_url (where media nodes are) and "
                            "node_secret (what they ask of a caller)")
    limiter = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[
        error_middleware, cors_middleware(settings.allowed_origins), limiter.middleware()])
    protect(app)
    app[SETTINGS] = settings
    app[ACCESS] = Access(auth_secret(settings))
    app[CLIENT] = behind_proxies(settings.trusted_proxies)
    app.router.add_get("/healthz", healthz)  # the process answers: all it says
    app.add_routes(routes)
    serve_metrics(app, settings)
    app.add_routes(caption_stream.routes)  # before the rooms' catch-all
    app.add_routes(forwarding.routes)
    app.add_routes(web_client_routes())

    async def clients(app: web.Application) -> AsyncIterator[None]:
        redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
        hub = app[caption_stream.HUB] = CaptionHub(redis)
        app[caption_stream.OPEN] = Counter()
        app[forwarding.PLACEMENT] = Placement(redis)
        async with aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S)) as client, \
                aiohttp.ClientSession(  # a socket lasts as long as its call: no total
                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=10)) as sockets:
            app[forwarding.CLIENT] = client
            app[forwarding.SOCKET_CLIENT] = sockets
            yield
        await hub.close()
        await redis.aclose()

    app.cleanup_ctx.append(clients)
    return app
