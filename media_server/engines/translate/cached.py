"""A translator with a cache in front: an interim and its identical final, or several
listeners of one language, cost one call. Identical requests in flight share it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cache.base import TranslationCache
from media_server.engines.translate.base import Translator
from media_server.metrics import TRANSLATION_CACHE


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@dataclass
class CacheCounters:
    hits: int = 0
    misses: int = 0


class CachedTranslator:
    def __init__(self, translator: Translator, cache: TranslationCache) -> None:
        self._translator = translator
        self._cache = cache
        self.name = translator.name
        self._in_flight: dict[tuple[str, str, str], asyncio.Future[str]] = {}
        self.counters = CacheCounters()

    def _count(self, result: str) -> None:
        if result == "hit":
            self.counters.hits += 1
        else:
            self.counters.misses += 1
        TRANSLATION_CACHE.labels(result).inc()

    def pairs(self) -> frozenset[tuple[str, str]]:
        return self._translator.pairs()

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        return list(await asyncio.gather(*(self._one(t, source, target) for t in texts)))

    async def _one(self, text: str, source: str, target: str) -> str:
        key = (source, target, normalise(text))
        if not key[2]:
            return ""
        cached = await self._cache.get(key)
        if cached is not None:
            self._count("hit")
            return cached
        waiting = self._in_flight.get(key)
        if waiting is not None:
            self._count("hit")
            return await asyncio.shield(waiting)
        self._count("miss")
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            [result] = await self._translator.translate([key[2]], source, target)
            await self._cache.set(key, result)
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self._in_flight[key]
