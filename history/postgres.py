"""PostgreSQL through an asyncpg pool, for production (`LIVE_INTERPRETER_DATABASE_URL`).
Migrations take an advisory lock, so that several processes starting at once apply
each step once. A lost connection surfaces as `StoreUnavailable`."""

from __future__ import annotations

import re
from collections.abc import Sequence

import asyncpg

from history import migrations as sql
from history.base import StoreUnavailable, assemble, session_records, write_plan
from history.records import SessionRecord, StoreRecord, UtteranceRecord

MIGRATION_LOCK = 7_104_251  # an arbitrary advisory-lock key of ours


def _numbered(statement: str) -> str:
    """SQLite's `?` placeholders -> PostgreSQL's `$1, $2, ...`."""
    count = iter(range(1, statement.count("?") + 1))
    return re.sub(r"\?", lambda _: f"${next(count)}", statement)


_UNAVAILABLE = (OSError, asyncpg.exceptions.InterfaceError,
                asyncpg.exceptions.PostgresConnectionError,
                asyncpg.exceptions.CannotConnectNowError,
                asyncpg.exceptions.AdminShutdownError)


class PostgresStore:
    name = "postgresql"

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, url: str, timeout_s: float = 5.0) -> PostgresStore:
        # No floor of idle connections: asyncpg would keep restoring it through an
        # outage, logging a traceback each try; the writer retries on its own. So the
        # first connection is made by the migration.
        pool = await asyncpg.create_pool(url, min_size=0, max_size=4, timeout=timeout_s,
                                         command_timeout=timeout_s)
        store = cls(pool)
        try:
            await store._migrate()
        except _UNAVAILABLE as exc:
            await pool.close()
            raise StoreUnavailable(f"cannot reach PostgreSQL: {exc}") from exc
        return store

    async def _migrate(self) -> None:
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await connection.execute(sql.CREATE_VERSION_TABLE)
            current = await connection.fetchval("SELECT max(version) FROM schema_version") or 0
            for version, statements in sql.MIGRATIONS:
                if version > current:
                    for statement in statements:
                        await connection.execute(statement)
                    await connection.execute("INSERT INTO schema_version VALUES ($1)", version)

    async def write(self, records: Sequence[StoreRecord]) -> None:
        try:
            async with self._pool.acquire() as connection, connection.transaction():
                for statement, rows in write_plan(records):
                    await connection.executemany(_numbered(statement), rows)
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"PostgreSQL: {exc!r}") from exc

    async def transcript(self, room: str) -> list[UtteranceRecord]:
        async with self._pool.acquire() as connection:
            utterances = await connection.fetch(_numbered(sql.SELECT_ROOM), room)
            translations = await connection.fetch(_numbered(sql.SELECT_TRANSLATIONS), room)
        return assemble([tuple(r) for r in utterances], [tuple(r) for r in translations])

    async def sessions(self, room: str) -> list[SessionRecord]:
        async with self._pool.acquire() as connection:
            rows = await connection.fetch(_numbered(sql.SELECT_SESSIONS), room)
        return session_records(tuple(r) for r in rows)

    async def purge(self, before: float) -> int:
        async with self._pool.acquire() as connection, connection.transaction():
            statuses = [await connection.execute(_numbered(statement), before)
                        for statement in sql.PURGE_BEFORE]
            for statement in sql.PURGE_UNUSED:
                await connection.execute(statement)
        return int(statuses[1].split()[-1])  # "DELETE <count>" of the finals

    async def close(self) -> None:
        await self._pool.close()
