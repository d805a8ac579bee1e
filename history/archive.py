"""The store as the server uses it: the database chosen by the settings, opened when
first reachable (the server starts without it), written behind, purged by age."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from history.base import Store, StoreUnavailable
from history.records import SessionRecord, StoreRecord, UtteranceRecord
from history.writer import WriteBehind
from media_server.settings import Settings
from media_server.tasks import cancel_and_wait

log = logging.getLogger(__name__)
PURGE_INTERVAL_S = 3600.0


async def open_store(settings: Settings) -> Store:
    if settings.database_url:
        from history.postgres import PostgresStore
        return await PostgresStore.open(settings.database_url)
    from history.sqlite import SqliteStore
    return await SqliteStore.open(Path(settings.data_dir) / "live-interpreter.db")


class _Reconnecting:
    """Opens the database on first use and again after it was lost. First uses at once
    share one opening, and closing waits for an opening in flight and closes what it
    opened: a connection dropped unclosed would keep the process from exiting."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._store: Store | None = None
        self._opening: asyncio.Task[Store] | None = None
        self.name = "postgresql" if settings.database_url else "sqlite"

    async def _open(self) -> Store:
        if self._store is not None:
            return self._store
        if self._opening is None:
            self._opening = asyncio.create_task(open_store(self._settings), name="store-open")
        opening = self._opening
        try:  # (shielded: a caller that gives up does not cut an opening short)
            self._store = await asyncio.shield(opening)
        except OSError as exc:  # a SQLite file that cannot be made; PG says it itself
            raise StoreUnavailable(f"cannot open the store: {exc}") from exc
        finally:
            if opening.done() and self._opening is opening:
                self._opening = None  # failed or done: the next use opens again if need be
        return self._store

    async def write(self, records: Sequence[StoreRecord]) -> None:
        await (await self._open()).write(records)

    async def transcript(self, room: str) -> list[UtteranceRecord]:
        return await (await self._open()).transcript(room)

    async def sessions(self, room: str) -> list[SessionRecord]:
        return await (await self._open()).sessions(room)

    async def purge(self, before: float) -> int:
        return await (await self._open()).purge(before)

    async def close(self) -> None:
        if self._opening is not None:
            with contextlib.suppress(Exception):
                self._store = await self._opening
            self._opening = None
        if self._store is not None:
            await self._store.close()
            self._store = None


class Archive:
    def __init__(self, settings: Settings) -> None:
        self.store = _Reconnecting(settings)
        self.writer = WriteBehind(self.store, Path(settings.data_dir) / "store-spool.jsonl",
                                  settings.store_memory_limit)
        self._retention_s = settings.retention_days * 86400
        self._purger: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.writer.start()
        if self._retention_s > 0:
            self._purger = asyncio.create_task(self._purge_periodically(), name="store-purge")

    def submit(self, record: StoreRecord) -> None:
        self.writer.submit(record)

    async def transcript(self, room: str) -> tuple[list[UtteranceRecord], list[SessionRecord]]:
        """A room's finals and sessions, with what was just said."""
        await self.writer.drain(1.0)
        return await self.store.transcript(room), await self.store.sessions(room)

    async def purge(self) -> int:
        removed = await self.store.purge(time.time() - self._retention_s)
        if removed:
            log.info("old transcripts purged", extra={"utterances": removed})
        return removed

    async def _purge_periodically(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.purge()
            await asyncio.sleep(PURGE_INTERVAL_S)

    async def close(self) -> None:
        await cancel_and_wait(self._purger)
        await self.writer.aclose()
        await self.store.close()
