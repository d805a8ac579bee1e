"""`GET /metrics`, on the app's own port or, with `METRICS_PORT` set, on a listener of
its own (bind it where only Prometheus reaches: the metrics say how busy we are and
which engines fail, nothing for the public). With `METRICS_TOKEN` set, a scrape must
show it as `Authorization: Bearer` (where the listener cannot be made private, as on
a media node with the host's network)."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from media_server.metrics import EVENT_LOOP_TASKS, REGISTRY
from media_server.settings import Settings
from signaling.errors import json_error


def metrics_handler(token: str) -> Handler:
    expected = f"Bearer {token}".encode()

    async def metrics(request: web.Request) -> web.StreamResponse:
        given = request.headers.get("Authorization", "").encode(errors="replace")
        if token and not hmac.compare_digest(given, expected):
            return json_error(401, "token_missing", "metrics need the metrics token")
        EVENT_LOOP_TASKS.set(len(asyncio.all_tasks()))
        return web.Response(body=generate_latest(REGISTRY),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    return metrics


def serve_metrics(app: web.Application, settings: Settings) -> None:
    metrics = metrics_handler(settings.metrics_token)
    if not settings.metrics_port:
        app.router.add_get("/metrics", metrics)
        return

    async def listener(app: web.Application) -> AsyncIterator[None]:
        metrics_app = web.Application()
        metrics_app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(metrics_app)
        await runner.setup()
        await web.TCPSite(runner, settings.metrics_host, settings.metrics_port).start()
        yield
        await runner.cleanup()

    app.cleanup_ctx.append(listener)
