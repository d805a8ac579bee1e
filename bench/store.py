"""History writes: finals per second through the write-behind path on SQLite and
PostgreSQL, and what the caption path pays for it (target < 1 ms p95): the `submit`
call, which is all the media path does, and the event loop's lag (how late a 5 ms
timer fires, as a caption's send would be) while the writer works, against the same
loop idle.

    .venv/bin/python bench/store.py [--finals 5000] [--postgres postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile
from history.base import Store
from history.postgres import PostgresStore
from history.records import SessionRecord, StoreRecord, UtteranceRecord
from history.sqlite import SqliteStore
from history.writer import WriteBehind

PACE = 100  # finals a second


def records(count: int) -> list[UtteranceRecord]:
    session = secrets.token_hex(6)
    return [UtteranceRecord(
        session_id=session, utterance_id=f"p-{n}", room="bench", speaker_id="p",
        speaker="Speaker", lang="en", text=f"This is final number {n} of the benchmark.",
        start_ms=n * 1000, end_ms=n * 1000 + 900, engine="bench", created_at=time.time(),
        translations={"pt": f"Esta é a frase {n}.", "es": f"Esta es la frase {n}."})
        for n in range(count)]


async def loop_lag(stop: asyncio.Event) -> list[float]:
    """How late each 5 ms sleep wakes up, until `stop`."""
    lags = []
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(0.005)
        lags.append(time.perf_counter() - before - 0.005)
    return lags


async def idle_lag() -> float:
    stop = asyncio.Event()
    probe = asyncio.create_task(loop_lag(stop))
    await asyncio.sleep(1.0)
    stop.set()
    return percentile(await probe, 95) * 1e3


async def measure(store: Store, spool: Path, count: int) -> tuple[float, float, float, float]:
    writer = WriteBehind(store, spool)
    await writer.start()
    costs = []
    stop = asyncio.Event()
    probe = asyncio.create_task(loop_lag(stop))
    started = time.perf_counter()
    for record in records(count):
        before = time.perf_counter()
        writer.submit(record)
        costs.append(time.perf_counter() - before)
        if len(costs) % 50 == 0:
            await asyncio.sleep(0)  # captions arrive spread out, with the loop running
    assert await writer.drain(120)
    elapsed = time.perf_counter() - started
    stop.set()
    lag_p95 = percentile(await probe, 95) * 1e3
    await writer.aclose()
    return count / elapsed, percentile(costs, 50) * 1e6, percentile(costs, 95) * 1e6, lag_p95


class NoStore:
    """Writes nothing: the pacing alone, to compare the databases with."""

    name = "none"

    async def write(self, records: Sequence[StoreRecord]) -> None:
        pass

    async def transcript(self, room: str) -> list[UtteranceRecord]:
        return []

    async def sessions(self, room: str) -> list[SessionRecord]:
        return []

    async def purge(self, before: float) -> int:
        return 0

    async def close(self) -> None:
        pass


async def paced_lag(store: Store, spool: Path, *, rate: int, seconds: float) -> float:
    """The loop's lag p95 while finals arrive at `rate` a second (a busy server's pace)."""
    writer = WriteBehind(store, spool)
    await writer.start()
    stop = asyncio.Event()
    probe = asyncio.create_task(loop_lag(stop))
    for record in records(int(rate * seconds)):
        writer.submit(record)
        await asyncio.sleep(1 / rate)
    assert await writer.drain(30)
    stop.set()
    lag = percentile(await probe, 95) * 1e3
    await writer.aclose()
    return lag


async def main(count: int, admin_url: str) -> None:
    print(f"{count} finals, each with 2 translations, submitted as fast as possible")
    idle = await idle_lag()
    print(f"event-loop lag p95 with the loop idle: {idle:.2f} ms")
    print(f"{'database':<11} {'finals/s':>9} {'submit p50':>11} {'p95':>8} "
          f"{'loop lag p95':>13} {'vs idle':>8}")

    def row(name: str, figures: tuple[float, float, float, float]) -> None:
        rate, p50, p95, lag = figures
        print(f"{name:<11} {rate:>9.0f} {p50:>9.1f}µs {p95:>6.1f}µs {lag:>10.2f} ms "
              f"{lag / idle:>7.1f}x")

    with tempfile.TemporaryDirectory() as tmp:
        sqlite = await SqliteStore.open(Path(tmp) / "bench.db")
        row("SQLite", await measure(sqlite, Path(tmp) / "spool-1", count))
        paced = {"no database": await paced_lag(NoStore(), Path(tmp) / "spool-0", rate=PACE,
                                                seconds=5),
                 "SQLite": await paced_lag(sqlite, Path(tmp) / "spool-3", rate=PACE, seconds=5)}
        await sqlite.close()
        name = f"li_bench_{secrets.token_hex(4)}"
        admin = await asyncpg.connect(admin_url)
        await admin.execute(f"CREATE DATABASE {name}")
        try:
            postgres = await PostgresStore.open(admin_url.rsplit("/", 1)[0] + "/" + name)
            row("PostgreSQL", await measure(postgres, Path(tmp) / "spool-2", count))
            paced["PostgreSQL"] = await paced_lag(postgres, Path(tmp) / "spool-4", rate=PACE,
                                                  seconds=5)
            await postgres.close()
        finally:
            await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
            await admin.close()
    print(f"\nat {PACE} finals/s for 5 s (some 300 rooms, a final every 3 s each):")
    base = paced["no database"]
    for name, lag in paced.items():
        print(f"{name:<11} loop lag p95 {lag:.2f} ms ({lag / base:.2f}x no database, "
              f"{lag - base:+.2f} ms)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--finals", type=int, default=5000)
    parser.add_argument("--postgres", default=os.environ.get(
        "LIVE_INTERPRETER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    asyncio.run(main(args.finals, args.postgres))
