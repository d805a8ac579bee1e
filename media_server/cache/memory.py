"""In-process translation cache with a TTL and a size bound (the embedded default)."""

from __future__ import annotations

import time
from collections import OrderedDict

from media_server.cache.base import CacheKey


class MemoryCache:
    def __init__(self, ttl_s: float = 30.0, max_entries: int = 10_000) -> None:
        self._ttl = ttl_s
        self._max = max_entries
        self._entries: OrderedDict[CacheKey, tuple[float, str]] = OrderedDict()

    async def get(self, key: CacheKey) -> str | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires < time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: CacheKey, value: str) -> None:
        self._entries[key] = (time.monotonic() + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
