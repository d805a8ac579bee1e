"""Nothing is lost: a live session's finals reach PostgreSQL exactly once while the
database connections are cut, the database is stopped and started again, and Redis
is stopped and started again; the session goes on throughout. PostgreSQL and Redis
here are private servers on spare loopback ports (see services.py)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import asyncpg
import numpy as np

from media_server.engines.loader import Engines
from media_server.metrics import REGISTRY
from media_server.settings import Settings
from signaling.state import RUNTIME
from tests.conftest import JFK_UTTERANCES, start_server
from tests.rtc_client import RATE, CaptionClient
from tests.scripted_speech import scripted_engines
from tests.services import PrivatePostgres, PrivateRedis


def bursts(jfk48: np.ndarray, count: int, *, speech_s: float = 0.45, gap_s: float = 0.55
           ) -> np.ndarray:
    """`count` short stretches of JFK's speech, each followed by a pause long enough
    to end an utterance: one final each, quickly."""
    windows = [jfk48[int(t * RATE):int((t + speech_s) * RATE)]
               for start, end in JFK_UTTERANCES
               for t in np.arange(start, end - speech_s, speech_s)]
    gap = np.zeros(int(gap_s * RATE), dtype=np.int16)
    chosen = [windows[n % len(windows)] for n in range(count)]
    return np.concatenate([part for window in chosen for part in (window, gap)])


async def test_fifty_finals_are_kept_once_through_database_and_redis_outages(
        settings: Settings, engines: Engines, jfk48: np.ndarray, tmp_path: Path,
        http: aiohttp.ClientSession, private_postgres: PrivatePostgres,
        private_redis: PrivateRedis) -> None:
    scripted = scripted_engines(engines, ["Keeping the record"], min_silence_ms=250)
    configured = settings.replace(data_dir=str(tmp_path / "data"),
                                  database_url=private_postgres.url,
                                  redis_url=private_redis.url, store_memory_limit=3)
    server, runner = await start_server(configured, scripted)
    archive = runner.app[RUNTIME].archive
    assert archive is not None
    client = CaptionClient(server.url, http)
    try:
        await client.start(bursts(jfk48, 56, gap_s=0.45), room="ledger", target_lang="pt")

        async def finals(count: int) -> None:
            deadline = time.monotonic() + 60
            while len(client.finals()) < count:
                assert time.monotonic() < deadline, f"{len(client.finals())} finals so far"
                await asyncio.sleep(0.05)

        await finals(6)
        assert await private_postgres.terminate_backends() >= 1  # the pool's connections

        await finals(14)
        await private_postgres.stop()
        said_before = len(client.finals())
        await finals(said_before + 6)  # captions go on while the database is down
        assert archive.writer.pending >= 4  # ...and their finals wait, past the memory bound
        assert (tmp_path / "data" / "store-spool.jsonl").exists()
        await private_postgres.start()

        await finals(30)
        await private_redis.stop()
        await finals(36)  # translation's cache is memory now
        assert REGISTRY.get_sample_value("live_interpreter_cache_backend_up") == 0
        await private_redis.start()

        deadline = time.monotonic() + 90
        while not client.said_all():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        said = {m["utterance_id"]: m for m in client.finals()}
        assert len(said) == len(client.finals()) >= 50
        assert await archive.writer.drain(20), f"{archive.writer.pending} never written"
    finally:
        await client.close()
        await runner.cleanup()
        await scripted.close()

    database = await asyncpg.connect(private_postgres.url)
    try:
        rows = await database.fetch(
            "SELECT u.utterance_id, u.text, t.text AS pt FROM utterances u JOIN translations t"
            " USING (session_id, utterance_id) WHERE u.room = 'ledger' AND t.lang = 'pt'")
        sessions = await database.fetch("SELECT ended_at FROM sessions WHERE room = 'ledger'")
    finally:
        await database.close()
    assert len(rows) == len(said)  # exactly once: none lost, none doubled
    for row in rows:
        caption = said[row["utterance_id"]]
        assert row["text"] == caption["text"]
        assert row["pt"] == caption["translation"]["text"]
    assert len(sessions) == 1 and sessions[0]["ended_at"] is not None
