"""Redis (redis-py asyncio) for production: one connection pool per process, keys
under a prefix, expiry by TTL. Short socket timeouts: a Redis that does not answer
must not hold up a caption; `degrading.py` serves from memory instead."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from cache.base import CacheUnavailable

TIMEOUT_S = 0.5


@contextmanager
def _reachable() -> Iterator[None]:
    try:
        yield
    except (RedisError, OSError) as exc:
        raise CacheUnavailable(f"Redis: {exc}") from exc


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


class RedisKeyValue:
    name = "redis"

    def __init__(self, client: aioredis.Redis, prefix: str = "live-interpreter:") -> None:
        self._client = client
        self._prefix = prefix

    @classmethod
    def from_url(cls, url: str) -> RedisKeyValue:
        client = aioredis.Redis.from_url(
            url, decode_responses=True, socket_timeout=TIMEOUT_S,
            socket_connect_timeout=TIMEOUT_S, health_check_interval=30,
            retry=Retry(NoBackoff(), 1))  # one quick retry: a pooled socket may be stale
        return cls(client)

    async def get(self, key: str) -> str | None:
        with _reachable():
            return _text(await self._client.get(self._prefix + key))

    async def set(self, key: str, value: str, ttl_s: float) -> None:
        with _reachable():
            await self._client.set(self._prefix + key, value, px=max(1, round(ttl_s * 1000)))

    async def take(self, key: str) -> str | None:
        with _reachable():
            return _text(await self._client.getdel(self._prefix + key))

    async def delete(self, key: str) -> None:
        with _reachable():
            await self._client.delete(self._prefix + key)

    async def close(self) -> None:
        await self._client.aclose()
