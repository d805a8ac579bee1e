"""Cache interface."""

from __future__ import annotations

from typing import Protocol

CacheKey = tuple[str, str, str]  # (source language, target language, normalised text)


class TranslationCache(Protocol):
    async def get(self, key: CacheKey) -> str | None: ...

    async def set(self, key: CacheKey, value: str) -> None: ...
