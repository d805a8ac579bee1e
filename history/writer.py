"""Write-behind: finals reach the database off the media path, and none is lost.

`submit` only appends to memory (the caption path never waits on the database). A
worker writes batches in order. While the database is unreachable the records stay
in memory up to `memory_limit`, then go to a spool file (JSON lines) next to the
data; when the database is back the spool is written first, then memory, so the
order holds. Writes are idempotent, so a batch retried after an unclear failure
is never doubled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from pathlib import Path

from history.base import Store
from history.records import StoreRecord, record_from_json, record_to_json
from media_server.metrics import STORE_QUEUE, STORE_SPOOLED
from media_server.tasks import cancel_and_wait

log = logging.getLogger(__name__)
BATCH = 200
RETRY_MIN_S, RETRY_MAX_S = 0.2, 5.0
LINGER_S = 0.1


class WriteBehind:
    def __init__(self, store: Store, spool: Path, memory_limit: int = 10_000) -> None:
        self._store = store
        self._spool = spool
        self._memory_limit = memory_limit
        self._memory: deque[StoreRecord] = deque()
        self._spooled = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()  # set while nothing is pending
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Records not yet in the database (memory and spool)."""
        return len(self._memory) + self._spooled

    async def start(self) -> None:
        self._spooled = await asyncio.to_thread(_count_lines, self._spool)
        STORE_SPOOLED.set(self._spooled)
        if not self.pending:
            self._idle.set()
        self._task = asyncio.create_task(self._run(), name="store-writer")

    def submit(self, record: StoreRecord) -> None:
        self._memory.append(record)
        STORE_QUEUE.set(len(self._memory))
        self._idle.clear()
        self._wake.set()

    async def drain(self, within_s: float) -> bool:
        """Wait until everything is written (True), or `within_s` passes (False)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within_s):
                await self._idle.wait()
        return not self.pending

    async def aclose(self, within_s: float = 2.0) -> None:
        """Write what is left if the database answers; spool the rest for next time."""
        await self.drain(within_s)
        await cancel_and_wait(self._task)
        if self._memory:
            await self._spill()

    async def _run(self) -> None:
        delay = RETRY_MIN_S
        while True:
            if not self.pending:
                self._wake.clear()
                await self._wake.wait()
                # Let finals gather for a moment: one transaction for several of them
                # costs the event loop less than one each.
                await asyncio.sleep(LINGER_S)
            try:
                await self._write_pending()
                delay = RETRY_MIN_S
            except Exception as exc:  # the database is down or refuses: keep, retry
                log.warning("store write failed; kept for later",
                            extra={"error": repr(exc), "pending": self.pending})
                await self._pause(delay)
                delay = min(delay * 2, RETRY_MAX_S)

    async def _pause(self, seconds: float) -> None:
        """Wait before trying again; meanwhile, what is past the memory bound goes to
        the spool as it comes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            if len(self._memory) > self._memory_limit:
                await self._spill()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._wake.wait()

    async def _write_pending(self) -> None:
        if self._spooled:
            spooled = await asyncio.to_thread(_read_lines, self._spool)
            for start in range(0, len(spooled), BATCH):
                await self._store.write(spooled[start:start + BATCH])
            await asyncio.to_thread(self._spool.unlink, True)
            self._spooled = 0
            STORE_SPOOLED.set(0)
        while self._memory:
            batch = [self._memory[i] for i in range(min(BATCH, len(self._memory)))]
            await self._store.write(batch)
            for _ in batch:
                self._memory.popleft()
            STORE_QUEUE.set(len(self._memory))
        self._idle.set()

    async def _spill(self) -> None:
        """Memory -> the end of the spool file (it holds older records than memory)."""
        records = list(self._memory)
        await asyncio.to_thread(_append_lines, self._spool, records)
        for _ in records:
            self._memory.popleft()
        self._spooled += len(records)
        STORE_QUEUE.set(len(self._memory))
        STORE_SPOOLED.set(self._spooled)
        if self._spooled == len(records):  # the first of this outage
            log.warning("store unreachable; records spooled to disk",
                        extra={"spooled": self._spooled, "path": str(self._spool)})


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open() as spool:
        return sum(1 for line in spool if line.strip())


def _read_lines(path: Path) -> list[StoreRecord]:
    """The spooled records. A line that cannot be read (cut short by a crash as it was
    written) is set aside in `<spool>.rejected`, rather than holding up every record
    after it for ever."""
    records: list[StoreRecord] = []
    rejected: list[str] = []
    with path.open() as spool:
        for line in spool:
            if not line.strip():
                continue
            try:
                records.append(record_from_json(line))
            except (ValueError, TypeError, KeyError):
                rejected.append(line if line.endswith("\n") else line + "\n")
    if rejected:
        aside = path.with_name(path.name + ".rejected")
        with aside.open("a") as kept:
            kept.writelines(rejected)
        log.error("spooled records that cannot be read were set aside",
                  extra={"count": len(rejected), "path": str(aside)})
    return records


def _append_lines(path: Path, records: list[StoreRecord]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as spool:
        spool.writelines(record_to_json(record) + "\n" for record in records)
        spool.flush()
