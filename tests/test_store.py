"""The store on SQLite and on a real PostgreSQL: finals with their translations kept
exactly once whatever is retried, read back in order, purged by age, versioned
migrations; the write-behind path losing nothing while the database refuses."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import os
import secrets
import threading
import time
import warnings
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import asyncpg
import pytest

from history import migrations
from history.archive import Archive
from history.base import Store, StoreUnavailable
from history.postgres import PostgresStore
from history.records import SessionDescription, SessionRecord, StoreRecord, UtteranceRecord
from history.sqlite import SqliteStore
from history.writer import WriteBehind
from media_server.settings import Settings

# The machine's PostgreSQL (trust auth); each test run gets a database of its own.
ADMIN_URL = os.environ.get("LIVE_INTERPRETER_TEST_POSTGRES",
                           "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
async def postgres_url() -> AsyncIterator[str]:
    name = f"li_test_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(ADMIN_URL, timeout=10)
    await admin.execute(f"CREATE DATABASE {name}")
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        await admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path,
                postgres_url: str) -> AsyncIterator[Store]:
    opened: Store
    if request.param == "sqlite":
        opened = await SqliteStore.open(tmp_path / "store.db")
    else:
        opened = await PostgresStore.open(postgres_url)
        async with opened._pool.acquire() as connection:  # a clean slate per test
            await connection.execute("TRUNCATE utterances, sessions, participants, rooms CASCADE")
    yield opened
    await opened.close()


def _record(session: str, n: int, *, room: str = "standup", at: float | None = None
            ) -> UtteranceRecord:
    return UtteranceRecord(
        session_id=session, utterance_id=f"{session[:8]}-{n}", room=room,
        speaker_id=session[:8], speaker=f"Speaker {session[:4]}", lang="en",
        text=f"Sentence number {n}.", start_ms=n * 1000, end_ms=n * 1000 + 800,
        engine="local-whisper", created_at=time.time() if at is None else at,
        translations={"pt": f"Frase número {n}.", "es": f"Frase número {n}."})


async def test_finals_are_kept_once_in_order_with_translations(store: Store) -> None:
    records = [_record("session-a", n) for n in (3, 1, 2)]
    await store.write(records)
    await store.write(records[:2])  # a retried batch
    await store.write([_record("session-a", 2), _record("session-a", 4)])  # overlapping
    await store.write([_record("session-b", 1, room="elsewhere")])
    kept = await store.transcript("standup")
    assert [r.utterance_id for r in kept] == [f"session--{n}" for n in (1, 2, 3, 4)]
    assert kept[0] == _record("session-a", 1, at=kept[0].created_at)
    assert kept[2].translations == {"pt": "Frase número 3.", "es": "Frase número 3."}
    assert await store.transcript("nobody-here") == []


async def test_many_sessions_writing_at_once_lose_and_double_nothing(store: Store) -> None:
    async def session(index: int) -> None:
        records = [_record(f"s{index:03d}-{secrets.token_hex(3)}", n) for n in range(20)]
        for start in range(0, 20, 5):
            batch = records[start:start + 5]
            await asyncio.gather(store.write(batch), store.write(batch))  # a racing retry

    await asyncio.gather(*(session(i) for i in range(50)))
    kept = await store.transcript("standup")
    assert len(kept) == 1000
    assert len({(r.session_id, r.utterance_id) for r in kept}) == 1000
    assert all(len(r.translations) == 2 for r in kept)


def _session(session_id: str, participant: str, *, started: float, ended: float | None = None,
             target: str = "pt") -> SessionRecord:
    return SessionRecord(SessionDescription(session_id, "standup", participant,
                                            f"Name {participant}", "en", target, speak=True),
                         started_at=started, ended_at=ended)


async def test_sessions_are_kept_with_their_participants(store: Store) -> None:
    now = time.time()
    await store.write([_session("s1", "p1", started=now), _session("s2", "p2", started=now + 1)])
    await store.write([_session("s1", "p1", started=now, ended=now + 5, target="es")])  # its end
    await store.write([_session("s1", "p1", started=now, ended=now + 5, target="es")])  # a retry
    kept = await store.sessions("standup")
    assert kept == [_session("s1", "p1", started=now, ended=now + 5, target="es"),
                    _session("s2", "p2", started=now + 1)]
    await store.write([_session("s1", "p1", started=now + 9, target="es")])  # resumed: open again
    assert (await store.sessions("standup"))[0] == _session("s1", "p1", started=now, target="es")
    assert await store.sessions("elsewhere") == []


async def test_old_finals_and_sessions_are_purged(store: Store) -> None:
    now = time.time()
    old = now - 40 * 86400
    await store.write([_session("old", "p-old", started=old, ended=old + 60), _record("old", 1,
                                                                                      at=old),
                       _session("new", "p-new", started=now), _record("new", 1, at=now)])
    assert await store.purge(now - 30 * 86400) == 1
    assert [r.session_id for r in await store.transcript("standup")] == ["new"]
    assert [s.session.session_id for s in await store.sessions("standup")] == ["new"]


async def test_migrations_run_once_and_are_versioned(tmp_path: Path, postgres_url: str) -> None:
    for _ in range(2):  # opening again applies nothing twice
        sqlite = await SqliteStore.open(tmp_path / "twice.db")
        await sqlite.close()
        postgres = await PostgresStore.open(postgres_url)
        await postgres.close()
    connection = await asyncpg.connect(postgres_url)
    versions = [r["version"] for r in await connection.fetch("SELECT version FROM schema_version")]
    await connection.close()
    assert versions == [version for version, _ in migrations.MIGRATIONS]
    unreachable = "postgresql://postgres@127.0.0.1:1/nothing"  # nothing listens on port 1
    with pytest.raises(StoreUnavailable):
        await PostgresStore.open(unreachable, timeout_s=2)


async def test_servers_opening_one_sqlite_file_together_migrate_it_once(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    stores = await asyncio.gather(*(SqliteStore.open(path) for _ in range(8)))
    await asyncio.gather(*(s.write([_record(f"session-{i}", 1)]) for i, s in enumerate(stores)))
    assert len(await stores[0].transcript("standup")) == 8
    for store in stores:
        await store.close()
    again = await SqliteStore.open(path)
    async with again._db.execute("SELECT version FROM schema_version") as cursor:
        assert [row[0] for row in await cursor.fetchall()] == [v for v, _ in migrations.MIGRATIONS]
    await again.close()


class Refusing:
    """A real store behind a switch: while `down`, every write fails as an unreachable
    database does."""

    name = "refusing"

    def __init__(self, store: Store) -> None:
        self.store = store
        self.down = False
        self.batches: list[list[str]] = []

    async def write(self, records: Sequence[StoreRecord]) -> None:
        if self.down:
            raise StoreUnavailable("down")
        self.batches.append([r.utterance_id for r in records
                             if isinstance(r, UtteranceRecord)])
        await self.store.write(records)

    async def transcript(self, room: str) -> list[UtteranceRecord]:
        return await self.store.transcript(room)

    async def sessions(self, room: str) -> list[SessionRecord]:
        return await self.store.sessions(room)

    async def purge(self, before: float) -> int:
        return await self.store.purge(before)

    async def close(self) -> None:
        await self.store.close()


async def test_write_behind_keeps_everything_while_the_database_is_down(
        store: Store, tmp_path: Path) -> None:
    switch = Refusing(store)
    spool = tmp_path / "spool.jsonl"
    writer = WriteBehind(switch, spool, memory_limit=10)
    await writer.start()
    records = [_record("session-a", n) for n in range(50)]
    for record in records[:5]:
        writer.submit(record)
    assert await writer.drain(5)
    switch.down = True
    started = time.monotonic()
    for record in records[5:]:
        writer.submit(record)  # the caption path: never waits
    assert time.monotonic() - started < 0.05
    await asyncio.sleep(1.0)
    assert writer.pending == 45 and spool.exists()  # past 10 in memory: on disk
    switch.down = False
    assert await writer.drain(10)
    assert not spool.exists()
    kept = await store.transcript("standup")
    assert [r.utterance_id for r in kept] == [r.utterance_id for r in records]
    written = [u for batch in switch.batches for u in batch]
    assert written == [r.utterance_id for r in records]  # in the order they were said
    await writer.aclose()


async def test_what_is_unwritten_at_shutdown_is_spooled_for_the_next_start(
        store: Store, tmp_path: Path) -> None:
    switch = Refusing(store)
    switch.down = True
    spool = tmp_path / "spool.jsonl"
    writer = WriteBehind(switch, spool)
    await writer.start()
    writer.submit(_session("session-a", "p-a", started=time.time()))
    for n in range(7):
        writer.submit(_record("session-a", n))
    await writer.aclose(within_s=0.5)
    assert len(spool.read_text().splitlines()) == 8
    # Lines an earlier release spooled: its `kind` marked the record type, and a
    # session's own `kind` overwrote it.
    with spool.open("a") as lines:
        lines.write(json.dumps({"kind": "session", **_flat_session("session-b", "p-b")}) + "\n")
        lines.write(json.dumps({"kind": "utterance",
                                **dataclasses.asdict(_record("session-b", 0))}) + "\n")
        lines.write('{"record": "utterance", "session_id": "session-c", "utt')  # cut short
    switch.down = False
    again = WriteBehind(switch, spool)
    await again.start()
    assert again.pending == 11 and await again.drain(10)
    assert len(await store.transcript("standup")) == 8
    # The line cut short is set aside, not retried for ever ahead of the others.
    assert (tmp_path / "spool.jsonl.rejected").read_text().startswith('{"record": "utterance"')
    sessions = {s.session.session_id: s.session for s in await store.sessions("standup")}
    assert set(sessions) == {"session-a", "session-b"}
    assert (sessions["session-a"].kind, sessions["session-b"].kind) == ("webrtc", "whip")
    await again.aclose()


def _flat_session(session_id: str, participant: str) -> dict[str, object]:
    record = _session(session_id, participant, started=time.time())
    return {**dataclasses.asdict(record.session), "kind": "whip",
            "started_at": record.started_at, "ended_at": record.ended_at}


async def test_the_database_is_opened_once_and_closed_even_mid_opening(
        tmp_path: Path) -> None:
    """First uses at once (the purge, the writer, a transcript) share one connection, and
    a server stopped while it is still being opened closes it: a SQLite connection
    dropped unclosed keeps its worker thread, and so the process, alive until the
    garbage collector happens to find it (at exit, never)."""
    before = set(threading.enumerate())
    settings = Settings().replace(data_dir=str(tmp_path), database_url="", retention_days=0)
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always", ResourceWarning)
        archive = Archive(settings)
        await archive.start()
        await asyncio.gather(*(archive.store.sessions("standup") for _ in range(3)))
        await archive.close()

        again = Archive(settings.replace(data_dir=str(tmp_path / "again")))
        await again.start()
        first_use = asyncio.create_task(again.store.sessions("standup"))
        async with asyncio.timeout(10):
            # Connected, the database being set up (no event tells a file appearing).
            while not (tmp_path / "again" / "live-interpreter.db").exists():  # noqa: ASYNC110
                await asyncio.sleep(0)
        first_use.cancel()
        await again.close()
        gc.collect()
    unclosed = [str(w.message) for w in warned if "before being closed" in str(w.message)]
    assert not unclosed
    sqlite_threads = [t for t in set(threading.enumerate()) - before
                      if "_connection_worker_thread" in t.name]
    for thread in sqlite_threads:
        await asyncio.to_thread(thread.join, 5)
    assert not [t for t in sqlite_threads if t.is_alive()]
