"""What makes a server a media node of a scaled-out deployment (`live-interpreter
media`): it beats in Redis with its address and load once its engines are ready
(`heartbeat.py`), publishes its rooms' captions (`fanout.py`), and on SIGTERM
drains — says so in its beat (signaling places no new room on it), lets its
sessions finish for up to `DRAIN_TIMEOUT_S`, then closes what is left and writes
every final before it exits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError

from media_server.settings import Settings
from signaling.cluster.fanout import CaptionFanout
from signaling.cluster.heartbeat import Heartbeat, NodeLoad
from signaling.state import Runtime

log = logging.getLogger(__name__)


def attach(app: web.Application, settings: Settings, runtime: Runtime) -> None:
    client = aioredis.Redis.from_url(settings.redis_url, decode_responses=True,
                                     socket_connect_timeout=2, socket_timeout=2)
    fanout = CaptionFanout(client)
    runtime.publish = fanout.publish

    def load() -> NodeLoad | None:
        registry = runtime.registry
        if registry is None:
            return None  # engines still loading: not a place for rooms yet
        return NodeLoad(len(registry), registry.speaking, registry.rooms.names())

    heartbeat = Heartbeat(client, settings.node_id, url=settings.node_url, load=load,
                          interval_s=settings.heartbeat_interval_s, ttl_s=settings.node_ttl_s)

    async def node_context(app: web.Application) -> AsyncIterator[None]:
        fanout.start()
        heartbeat.start()
        yield
        await heartbeat.stop()
        await fanout.stop()
        await client.aclose()

    async def drain(app: web.Application) -> None:
        heartbeat.draining = True
        with contextlib.suppress(RedisError, OSError):
            await heartbeat.beat()
        registry = runtime.registry
        if registry is None:
            return
        log.warning("draining: no new rooms; waiting for sessions to end",
                    extra={"sessions": len(registry), "timeout_s": settings.drain_timeout_s})
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(settings.drain_timeout_s):
                await registry.emptied()
        log.info("drained", extra={"sessions_left": len(registry)})

    app.cleanup_ctx.append(node_context)
    app.on_shutdown.insert(0, drain)  # before the sessions are closed
