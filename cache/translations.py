"""The translation cache on a key-value backend: an interim and its identical final,
or every listener of one language, cost one translation."""

from __future__ import annotations

import hashlib

from cache.base import CacheKey, KeyValue


class KeyValueTranslationCache:
    def __init__(self, backend: KeyValue, ttl_s: float) -> None:
        self._backend = backend
        self._ttl_s = ttl_s

    @staticmethod
    def _key(key: CacheKey) -> str:
        source, target, text = key
        digest = hashlib.sha256(text.encode()).hexdigest()[:32]  # bounded key length
        return f"translation:{source}:{target}:{digest}"

    async def get(self, key: CacheKey) -> str | None:
        return await self._backend.get(self._key(key))

    async def set(self, key: CacheKey, value: str) -> None:
        await self._backend.set(self._key(key), value, self._ttl_s)


def in_memory_cache(ttl_s: float = 30.0) -> KeyValueTranslationCache:
    from cache.memory import MemoryKeyValue
    return KeyValueTranslationCache(MemoryKeyValue(), ttl_s)
