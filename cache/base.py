"""Ephemeral state: a small key-value interface with expiry, one module per backend
(`memory.py`, the embedded default; `redis.py`, for production), the translation
cache and session state built on it (`translations.py`, `sessions.py`)."""

from __future__ import annotations

from typing import Protocol

CacheKey = tuple[str, str, str]  # (source language, target language, normalised text)


class CacheUnavailable(Exception):
    """The backend cannot be reached now."""


class KeyValue(Protocol):
    name: str

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl_s: float) -> None: ...

    async def take(self, key: str) -> str | None:
        """Get and delete in one step: of two takers, one gets the value."""
        ...

    async def delete(self, key: str) -> None: ...

    async def close(self) -> None: ...


class TranslationCache(Protocol):
    async def get(self, key: CacheKey) -> str | None: ...

    async def set(self, key: CacheKey, value: str) -> None: ...
