"""The cache backends: the same behaviour in memory and on a real Redis; Redis that
goes away mid-use degrades to memory (a warning, a metric, no error) and is used
again once it is back."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cache.base import KeyValue
from cache.degrading import DegradingKeyValue
from cache.memory import MemoryKeyValue
from cache.redis import RedisKeyValue
from cache.translations import KeyValueTranslationCache
from history.records import SessionDescription
from media_server.metrics import REGISTRY
from media_server.resumable import ResumableSessions, ResumeState
from tests.services import PrivateRedis

REDIS_URL = os.environ.get("LIVE_INTERPRETER_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[KeyValue]:
    opened: KeyValue
    if request.param == "memory":
        opened = MemoryKeyValue()
    else:  # the machine's Redis, under a prefix of this test's own
        redis = RedisKeyValue.from_url(REDIS_URL)
        opened = RedisKeyValue(redis._client, prefix=f"li-test-{secrets.token_hex(4)}:")
    yield opened
    await opened.close()


def _state(session_id: str, utterances: int = 3) -> ResumeState:
    return ResumeState(SessionDescription(session_id, "standup", "p1", "Ana", "en", "pt",
                                          speak=True),
                       monitor=False, tts=True, stt_model="", utterances=utterances,
                       room_clock_origin=1_790_000_000.5)


async def test_values_expire_and_are_taken_once(backend: KeyValue) -> None:
    await backend.set("a", "1", ttl_s=0.3)
    await backend.set("b", "2", ttl_s=30)
    assert await backend.get("a") == "1"
    await asyncio.sleep(0.5)
    assert await backend.get("a") is None  # expired
    taken = await asyncio.gather(*(backend.take("b") for _ in range(5)))
    assert sorted(taken, key=str) == ["2", None, None, None, None]  # one taker gets it
    await backend.set("c", "3", ttl_s=30)
    await backend.delete("c")
    assert await backend.get("c") is None


async def test_session_state_and_translations_round_trip(backend: KeyValue) -> None:
    states = ResumableSessions(backend, grace_s=30)
    await states.keep(_state("s1"))
    assert await states.take("s1") == _state("s1")
    assert await states.take("s1") is None  # resumed once only
    await states.keep(_state("s2"))
    await states.forget("s2")
    assert await states.take("s2") is None
    cache = KeyValueTranslationCache(backend, ttl_s=30)
    await cache.set(("en", "pt", "ask not"), "não pergunte")
    assert await cache.get(("en", "pt", "ask not")) == "não pergunte"
    assert await cache.get(("en", "es", "ask not")) is None


def _metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_redis_going_away_degrades_to_memory_and_comes_back(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    redis = PrivateRedis(tmp_path / "redis")
    await redis.start()
    cache = DegradingKeyValue(RedisKeyValue.from_url(redis.url), MemoryKeyValue(),
                              retry_after_s=0.5)
    states = ResumableSessions(cache, grace_s=30)
    try:
        await states.keep(_state("before"))
        assert not cache.degraded
        await redis.stop()
        fallbacks = _metric("live_interpreter_cache_fallbacks_total")
        started = time.monotonic()
        with caplog.at_level(logging.WARNING):
            await states.keep(_state("during", utterances=7))  # no error: memory keeps it
            for n in range(20):
                await cache.set(f"t{n}", "x", 30)
                assert await cache.get(f"t{n}") == "x"
        assert time.monotonic() - started < 2.0  # one timeout, then memory at once
        assert cache.degraded and _metric("live_interpreter_cache_backend_up") == 0
        assert _metric("live_interpreter_cache_fallbacks_total") - fallbacks >= 41
        warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(warnings) == 1  # said once per outage
        await redis.start()  # empty: what it held before is gone, as after a restart
        await asyncio.sleep(0.6)  # past retry_after_s
        assert await states.take("during") == _state("during", utterances=7)  # from memory
        await states.keep(_state("after"))
        assert not cache.degraded and _metric("live_interpreter_cache_backend_up") == 1
        assert await cache.primary.get("session:after") is not None  # in Redis again
    finally:
        await redis.stop()
        await cache.close()
