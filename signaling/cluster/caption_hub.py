"""The rooms' caption channels, for every caption stream of this process: one Redis
subscription per room however many streams read it, all on one connection, fanned
out in memory. A stream that reads slowly loses its oldest captions, never anyone
else's; Redis going away and coming back loses what was said meanwhile, nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from media_server.tasks import cancel_and_wait
from signaling.cluster.fanout import CHANNEL

log = logging.getLogger(__name__)
BACKLOG = 100  # captions a stream may fall behind before its oldest are dropped
POLL_S = 1.0
RETRY_S = 1.0


class CaptionHub:
    def __init__(self, client: aioredis.Redis) -> None:
        self._pubsub = client.pubsub()
        self._readers: dict[str, set[asyncio.Queue[str]]] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def rooms(self) -> int:
        return len(self._readers)

    @contextlib.asynccontextmanager
    async def listen(self, room: str) -> AsyncIterator[asyncio.Queue[str]]:
        """A queue of the room's captions (JSON text) while the context lasts."""
        queue: asyncio.Queue[str] = asyncio.Queue(BACKLOG)
        readers = self._readers.setdefault(room, set())
        readers.add(queue)
        try:
            if len(readers) == 1:
                await self._pubsub.subscribe(**{CHANNEL + room: self._deliver})
                if self._task is None:  # once subscribed: the connection exists from now on
                    self._task = asyncio.create_task(self._receive(), name="caption-hub")
            yield queue
        finally:
            readers.discard(queue)
            if not readers and self._readers.get(room) is readers:
                del self._readers[room]
                with contextlib.suppress(RedisError, OSError):
                    await self._pubsub.unsubscribe(CHANNEL + room)

    async def _deliver(self, message: dict[str, Any]) -> None:
        channel, data = message["channel"], message["data"]
        room = (channel.decode() if isinstance(channel, bytes) else channel)[len(CHANNEL):]
        text = data.decode() if isinstance(data, bytes) else str(data)
        for queue in self._readers.get(room, ()):
            if queue.full():
                queue.get_nowait()  # a slow reader loses its oldest caption
            queue.put_nowait(text)

    async def _receive(self) -> None:
        while True:
            try:
                await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=POLL_S)
            except (RedisError, OSError) as exc:  # it resubscribes as it reconnects
                log.warning("caption channels unreachable", extra={"error": repr(exc)})
                await asyncio.sleep(RETRY_S)

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        with contextlib.suppress(RedisError, OSError):
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]
