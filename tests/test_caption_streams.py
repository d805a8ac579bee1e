"""Caption streams on signaling (`GET /api/rooms/{room}/captions`) cannot exhaust Redis:
one subscription per room per process however many streams read it, a cap per token
and per address, and every stream ends when its token expires."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from media_server.settings import Settings
from signaling import tokens
from signaling.cluster.fanout import CHANNEL
from signaling.cluster.front import create_signaling_app
from signaling.cluster.heartbeat import NODE_KEY
from tests.services import PrivateRedis

SECRET = "stream-test-secret-8e3b6d1f9a2c4075c9d5"


def bearer(room: str, ttl_s: int = 600, subject: str = "") -> dict[str, str]:
    token = tokens.mint(SECRET.encode(), room, role="listener", ttl_s=ttl_s, subject=subject)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def front(settings: Settings) -> AsyncIterator[tuple[str, aioredis.Redis]]:
    redis = PrivateRedis(Path(settings.data_dir) / "stream-redis")
    await redis.start()
    configured = settings.replace(auth_secret=SECRET, node_secret=SECRET + "-node",
                                  redis_url=redis.url, max_caption_streams=8,
                                  max_caption_streams_per_address=12)
    runner = web.AppRunner(create_signaling_app(configured))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    client = aioredis.Redis.from_url(redis.url, decode_responses=True)
    # A live node, so that /readyz can say ready.
    await client.set(NODE_KEY + "n1", json.dumps({
        "id": "n1", "url": "http://127.0.0.1:9", "sessions": 0, "speakers": 0,
        "draining": False, "updated_at": 1.0}))
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", client
    await client.aclose()
    await runner.cleanup()
    await redis.stop()


class Stream:
    """One open caption stream and the events it has read."""

    def __init__(self, http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> None:
        self.events: list[tuple[str, str]] = []
        self.subscribed = asyncio.Event()
        self.ended = asyncio.Event()
        self.status = 0
        self._task = asyncio.create_task(self._read(http, url, headers))

    async def _read(self, http: aiohttp.ClientSession, url: str,
                    headers: dict[str, str]) -> None:
        async with http.get(url, headers=headers) as resp:
            self.status = resp.status
            if resp.status != 200:
                self.subscribed.set()
                return
            event = ""
            async for line in resp.content:
                if line.startswith(b": subscribed"):
                    self.subscribed.set()
                elif line.startswith(b"event: "):
                    event = line[7:].decode().strip()
                elif line.startswith(b"data: "):
                    self.events.append((event, line[6:].decode().strip()))
        self.ended.set()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
            await self._task


async def _clients(redis: aioredis.Redis) -> int:
    return len(await redis.client_list())


async def test_many_streams_share_one_subscription_and_are_capped(
        front: tuple[str, aioredis.Redis], http: aiohttp.ClientSession) -> None:
    url, redis = front
    room = f"{url}/api/rooms/stage/captions"
    before = await _clients(redis)
    streams = [Stream(http, room, bearer("stage")) for _ in range(8)]
    for stream in streams:
        await asyncio.wait_for(stream.subscribed.wait(), 10)
    assert [s.status for s in streams] == [200] * 8
    assert await redis.pubsub_numsub(CHANNEL + "stage") == [(CHANNEL + "stage", 1)]
    assert await _clients(redis) - before <= 2  # one for the subscriptions, one spare
    async with http.get(url + "/readyz") as resp:
        assert resp.status == 200
    # Past the cap of a token: refused; another token from the same address may go on,
    # up to the address's cap.
    async with http.get(room, headers=bearer("stage")) as resp:
        assert resp.status == 429 and (await resp.json())["error"]["code"] == "too_many_streams"
    more = [Stream(http, room, bearer("stage", subject=f"viewer{n}")) for n in range(5)]
    for stream in more:
        await asyncio.wait_for(stream.subscribed.wait(), 10)
    assert sorted(s.status for s in more) == [200] * 4 + [429]  # 8 + 4 = the address's 12
    # What the room's node publishes reaches every stream, once.
    await redis.publish(CHANNEL + "stage", json.dumps({"type": "caption", "text": "hello"}))
    open_streams = [s for s in streams + more if s.status == 200]
    deadline = time.monotonic() + 10
    while not all(s.events for s in open_streams):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert all(s.events == [("caption", '{"type": "caption", "text": "hello"}')]
               for s in open_streams)
    for stream in open_streams:
        await stream.close()
    deadline = time.monotonic() + 10  # the last one gone: the subscription too
    while await redis.pubsub_numsub(CHANNEL + "stage") != [(CHANNEL + "stage", 0)]:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    async with http.get(room, headers=bearer("stage")) as resp:
        assert resp.status == 200  # the caps count open streams only


async def test_a_stream_ends_when_its_token_expires(
        front: tuple[str, aioredis.Redis], http: aiohttp.ClientSession) -> None:
    url, _ = front
    started = time.time()
    stream = Stream(http, f"{url}/api/rooms/stage/captions", bearer("stage", ttl_s=2))
    await asyncio.wait_for(stream.ended.wait(), 10)
    assert stream.events == [("end", '{"reason": "token_expired"}')]
    assert time.time() - started >= 1.0  # it was open until then
