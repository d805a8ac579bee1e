"""The embedded default: one SQLite file under the data directory (aiosqlite runs
sqlite3 in its own thread, off the event loop)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import aiosqlite

from history import migrations as sql
from history.base import assemble, session_records, write_plan
from history.records import SessionRecord, StoreRecord, UtteranceRecord

BUSY_TIMEOUT_S = 30.0


async def _switch_to_wal(connection: aiosqlite.Connection) -> None:
    """WAL lets readers and one writer work at once. Switching needs the file to
    itself and SQLite does not wait on its busy handler for it, so when another
    process is switching at the same moment, try again shortly."""
    for attempt in range(100):
        try:
            await connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 99:
                raise
            await asyncio.sleep(0.05)


class SqliteStore:
    name = "sqlite"

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection
        # One connection: a write's statements and its commit must not interleave.
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> SqliteStore:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A writer waits up to BUSY_TIMEOUT_S for another process's transaction.
        connection = await aiosqlite.connect(path, timeout=BUSY_TIMEOUT_S)
        await _switch_to_wal(connection)
        await connection.execute("PRAGMA foreign_keys=ON")
        store = cls(connection)
        await store._migrate()
        return store

    async def _migrate(self) -> None:
        """In one write transaction (sqlite3 would otherwise commit each CREATE at once):
        two processes opening the file together cannot both apply a step, and a step
        is never half applied."""
        await self._db.execute(sql.CREATE_VERSION_TABLE)
        await self._db.commit()
        await self._db.execute("BEGIN IMMEDIATE")
        try:
            async with self._db.execute("SELECT max(version) FROM schema_version") as cursor:
                row = await cursor.fetchone()
            current = (row[0] if row else None) or 0
            for version, statements in sql.MIGRATIONS:
                if version > current:
                    for statement in statements:
                        await self._db.execute(statement)
                    await self._db.execute("INSERT INTO schema_version VALUES (?)", (version,))
            await self._db.commit()
        except BaseException:
            await self._db.rollback()
            raise

    async def write(self, records: Sequence[StoreRecord]) -> None:
        async with self._lock:
            try:
                for statement, rows in write_plan(records):
                    await self._db.executemany(statement, rows)
                await self._db.commit()
            except BaseException:
                await self._db.rollback()  # an open transaction would lock out every writer
                raise

    async def transcript(self, room: str) -> list[UtteranceRecord]:
        async with self._db.execute(sql.SELECT_ROOM, (room,)) as cursor:
            utterances = await cursor.fetchall()
        async with self._db.execute(sql.SELECT_TRANSLATIONS, (room,)) as cursor:
            translations = await cursor.fetchall()
        return assemble(utterances, translations)

    async def sessions(self, room: str) -> list[SessionRecord]:
        async with self._db.execute(sql.SELECT_SESSIONS, (room,)) as cursor:
            return session_records(await cursor.fetchall())

    async def purge(self, before: float) -> int:
        async with self._lock:
            try:
                removed = [(await self._db.execute(statement, (before,))).rowcount
                           for statement in sql.PURGE_BEFORE]
                for statement in sql.PURGE_UNUSED:
                    await self._db.execute(statement)
                await self._db.commit()
            except BaseException:
                await self._db.rollback()
                raise
        return removed[1]  # the finals

    async def close(self) -> None:
        await self._db.close()
