"""A media node in a scaled-out deployment tells Redis it is alive, where signaling
reaches it and how loaded it is, every `interval_s`; the entry expires after `ttl_s`
without a beat, which takes a dead node out of placement by itself. It also keeps
the placement of its live rooms (room -> this node) from expiring, and says when it
is draining (finishing its sessions, taking no new rooms)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from media_server.tasks import cancel_and_wait

log = logging.getLogger(__name__)
PREFIX = "live-interpreter:"
NODE_KEY = PREFIX + "node:"
ROOM_KEY = PREFIX + "room:"


@dataclass(frozen=True)
class NodeLoad:
    sessions: int
    speakers: int
    rooms: list[str]


@dataclass(frozen=True)
class NodeInfo:
    id: str
    url: str  # where signaling forwards this node's requests
    sessions: int
    speakers: int
    draining: bool
    updated_at: float

    @classmethod
    def from_json(cls, text: str) -> NodeInfo:
        return cls(**json.loads(text))


class Heartbeat:
    def __init__(self, client: aioredis.Redis, node_id: str, *, url: str,
                 load: Callable[[], NodeLoad | None], interval_s: float = 2.0,
                 ttl_s: float = 6.0) -> None:
        self._client = client
        self.node_id = node_id
        self._url = url
        self._load = load
        self._interval_s = interval_s
        self._ttl_ms = round(ttl_s * 1000)
        self.draining = False
        self._task: asyncio.Task[None] | None = None

    async def beat(self) -> None:
        """Say we are here (nothing while `load` is None: not ready for rooms)."""
        load = self._load()
        if load is None:
            return
        info = NodeInfo(self.node_id, self._url, load.sessions, load.speakers,
                        self.draining, time.time())
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.set(NODE_KEY + self.node_id, json.dumps(asdict(info)), px=self._ttl_ms)
            for room in load.rooms:  # our rooms stay ours while they live
                pipe.set(ROOM_KEY + room, self.node_id, px=self._ttl_ms * 10)
            await pipe.execute()

    async def _run(self) -> None:
        while True:
            try:
                await self.beat()
            except (RedisError, OSError) as exc:
                log.warning("heartbeat failed", extra={"error": repr(exc)})
            await asyncio.sleep(self._interval_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="heartbeat")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        with contextlib.suppress(RedisError, OSError):
            await self._client.delete(NODE_KEY + self.node_id)
