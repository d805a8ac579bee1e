"""Redis with memory standing in: a Redis that fails never fails a session. Each
failure is served from memory, counted, and said once per outage; Redis is tried
again after `retry_after_s` (not on every call: a dead Redis costs a timeout).
Reads look in Redis, then in memory, so what was kept during an outage is found."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from cache.base import CacheUnavailable, KeyValue
from media_server.metrics import CACHE_BACKEND_UP, CACHE_FALLBACKS

log = logging.getLogger(__name__)
T = TypeVar("T")


class DegradingKeyValue:
    def __init__(self, primary: KeyValue, fallback: KeyValue,
                 retry_after_s: float = 5.0) -> None:
        self.primary = primary
        self.fallback = fallback
        self.name = primary.name
        self._retry_after_s = retry_after_s
        self._down_until: float | None = None  # monotonic; None while the primary is up
        CACHE_BACKEND_UP.set(1)

    @property
    def degraded(self) -> bool:
        return self._down_until is not None

    async def _primary(self, call: Callable[[KeyValue], Awaitable[T]]) -> tuple[bool, T | None]:
        """(True, result) from the primary, or (False, None) when it is out."""
        if self._down_until is not None and time.monotonic() < self._down_until:
            CACHE_FALLBACKS.inc()
            return False, None
        try:
            result = await call(self.primary)
        except CacheUnavailable as exc:
            if self._down_until is None:
                log.warning("%s unreachable; serving from memory until it is back",
                            self.primary.name, extra={"error": str(exc)})
            self._down_until = time.monotonic() + self._retry_after_s
            CACHE_BACKEND_UP.set(0)
            CACHE_FALLBACKS.inc()
            return False, None
        if self._down_until is not None:
            log.info("%s is back", self.primary.name)
            self._down_until = None
            CACHE_BACKEND_UP.set(1)
        return True, result

    async def get(self, key: str) -> str | None:
        _, value = await self._primary(lambda kv: kv.get(key))
        return value if value is not None else await self.fallback.get(key)

    async def set(self, key: str, value: str, ttl_s: float) -> None:
        stored, _ = await self._primary(lambda kv: kv.set(key, value, ttl_s))
        if not stored:
            await self.fallback.set(key, value, ttl_s)

    async def take(self, key: str) -> str | None:
        _, value = await self._primary(lambda kv: kv.take(key))
        kept = await self.fallback.take(key)
        return value if value is not None else kept

    async def delete(self, key: str) -> None:
        await self._primary(lambda kv: kv.delete(key))
        await self.fallback.delete(key)

    async def close(self) -> None:
        await self.primary.close()
        await self.fallback.close()
