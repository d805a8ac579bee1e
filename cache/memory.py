"""In-process key-value with expiry and a size bound (the embedded default, and what
serves while Redis is down)."""

from __future__ import annotations

import time
from collections import OrderedDict


class MemoryKeyValue:
    name = "memory"

    def __init__(self, max_entries: int = 10_000) -> None:
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[float, str]] = OrderedDict()

    async def get(self, key: str) -> str | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires < time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)  # least recently used goes first
        return value

    async def set(self, key: str, value: str, ttl_s: float) -> None:
        self._entries[key] = (time.monotonic() + ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    async def take(self, key: str) -> str | None:
        value = await self.get(key)
        self._entries.pop(key, None)
        return value

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)

    async def close(self) -> None:
        self._entries.clear()
