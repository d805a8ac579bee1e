"""Captions to consumers in other processes (viewers, webhooks) through Redis pub/sub,
one channel per room. Publishing never holds up the media path: captions queue in
memory (bounded; the oldest interims go first when it is full) and a task publishes
them; Redis that is down loses them for those consumers, never for the room."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import asdict
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from media_server.protocol import CaptionMessage
from media_server.tasks import cancel_and_wait

log = logging.getLogger(__name__)
CHANNEL = "live-interpreter:captions:"
QUEUE_LIMIT = 1000


def caption_event(room: str, caption: CaptionMessage, translations: dict[str, str]
                  ) -> dict[str, Any]:
    event = {"type": "caption", "room": room, **asdict(caption), "translations": translations}
    event.pop("translation", None)  # one caption, every language
    return event


class CaptionFanout:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def publish(self, room: str, caption: CaptionMessage, translations: dict[str, str]) -> None:
        if self._queue.qsize() >= QUEUE_LIMIT:
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
        event = json.dumps(caption_event(room, caption, translations), ensure_ascii=False)
        self._queue.put_nowait((CHANNEL + room, event))

    async def _run(self) -> None:
        while True:
            channel, event = await self._queue.get()
            try:
                await self._client.publish(channel, event)
            except (RedisError, OSError) as exc:
                log.warning("caption fan-out failed", extra={"error": repr(exc)})

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="caption-fanout")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
