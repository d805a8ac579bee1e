"""`GET /api/rooms/{room}/captions`: a room's captions as Server-Sent Events, from the
Redis channel its media node publishes to (`fanout.py`), through this
process's one subscription per room (`caption_hub.py`) — for viewers, webhooks and
other consumers on any process. Needs a token for the room; a token, and an address,
may hold `MAX_CAPTION_STREAMS` / `MAX_CAPTION_STREAMS_PER_ADDRESS` streams at once;
a stream ends (`event: end`) when its token expires."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Iterator

from aiohttp import web

from media_server.errors import TooManyRequests
from media_server.metrics import REQUESTS_REFUSED
from signaling.access import check
from signaling.clients import client_of
from signaling.cluster.caption_hub import CaptionHub
from signaling.state import SETTINGS

routes = web.RouteTableDef()
HUB = web.AppKey("caption_hub", CaptionHub)
OPEN = web.AppKey("caption_streams_open", Counter[str])
KEEPALIVE_S = 15.0
WAKE_S = 1.0  # how soon a consumer that went away frees its stream


@contextlib.contextmanager
def _counted(request: web.Request, token_id: str) -> Iterator[None]:
    settings, open_streams = request.app[SETTINGS], request.app[OPEN]
    keys = {f"token:{token_id}": settings.max_caption_streams,
            f"address:{client_of(request)}": settings.max_caption_streams_per_address}
    for key, limit in keys.items():
        if open_streams[key] >= limit:
            REQUESTS_REFUSED.labels("caption_streams").inc()
            raise TooManyRequests("too_many_streams", f"at most {limit} caption streams at "
                                 f"once per {key.partition(':')[0]}")
    open_streams.update(keys.keys())
    try:
        yield
    finally:
        open_streams.subtract(keys.keys())
        for key in keys:
            if open_streams[key] <= 0:
                del open_streams[key]


def _connected(request: web.Request) -> bool:
    return request.transport is not None and not request.transport.is_closing()


@routes.get("/api/rooms/{room}/captions")
async def caption_stream(request: web.Request) -> web.StreamResponse:
    room = request.match_info["room"]
    token = check(request, room)
    expires_at = token.expires_at if token is not None else float("inf")
    with _counted(request, token.token_id if token is not None else ""):
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)
        async with request.app[HUB].listen(room) as captions:
            try:
                await response.write(b": subscribed\n\n")
                quiet_since = time.monotonic()
                while (left_s := expires_at - time.time()) > 0 and _connected(request):
                    try:
                        async with asyncio.timeout(min(WAKE_S, left_s)):
                            text = await captions.get()
                    except TimeoutError:
                        if time.monotonic() - quiet_since >= KEEPALIVE_S:
                            await response.write(b": keep-alive\n\n")
                            quiet_since = time.monotonic()
                        continue
                    await response.write(f"event: caption\ndata: {text}\n\n".encode())
                    quiet_since = time.monotonic()
                if not _connected(request):
                    return response
                end = json.dumps({"reason": "token_expired"})
                await response.write(f"event: end\ndata: {end}\n\n".encode())
            except (ConnectionResetError, ConnectionError):
                pass  # the consumer went away
    return response
