"""`GET /api/rooms/{room}/captions`: a room's captions as Server-Sent Events, from the
Redis channel its media node publishes to (`media_server/fanout.py`) — for viewers,
webhooks and other consumers on any process. Needs a token for the room."""

from __future__ import annotations

import contextlib

import redis.asyncio as aioredis
from aiohttp import web

from media_server.fanout import CHANNEL
from signaling.access import check

routes = web.RouteTableDef()
REDIS = web.AppKey("redis", aioredis.Redis)
KEEPALIVE_S = 15.0


@routes.get("/api/rooms/{room}/captions")
async def caption_stream(request: web.Request) -> web.StreamResponse:
    room = request.match_info["room"]
    check(request, room)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
    await response.prepare(request)
    pubsub = request.app[REDIS].pubsub()
    await pubsub.subscribe(CHANNEL + room)
    try:
        await response.write(b": subscribed\n\n")
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True,
                                               timeout=KEEPALIVE_S)
            if message is None:
                await response.write(b": keep-alive\n\n")
                continue
            data = message["data"]
            text = data.decode() if isinstance(data, bytes) else str(data)
            await response.write(f"event: caption\ndata: {text}\n\n".encode())
    except (ConnectionResetError, ConnectionError):
        pass  # the consumer went away
    finally:
        with contextlib.suppress(Exception):
            await pubsub.unsubscribe()
            await pubsub.aclose()  # type: ignore[no-untyped-call]
    return response
