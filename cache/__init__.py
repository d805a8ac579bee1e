"""A key-value store with expiry for the translation cache and ephemeral session state
(what `media_server/resumable.py` keeps): in memory by default, in Redis (with memory
standing in while it is down) when `LIVE_INTERPRETER_REDIS_URL` is set."""

from __future__ import annotations

from cache.base import KeyValue
from cache.degrading import DegradingKeyValue
from cache.memory import MemoryKeyValue
from cache.redis import RedisKeyValue
from media_server.metrics import CACHE_BACKEND_UP


def open_key_value(redis_url: str) -> KeyValue:
    """The process's one backend (one Redis connection pool per process)."""
    if not redis_url:
        CACHE_BACKEND_UP.set(1)  # memory is the backend chosen, and it is always there
        return MemoryKeyValue()
    return DegradingKeyValue(RedisKeyValue.from_url(redis_url), MemoryKeyValue())
