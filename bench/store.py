"""History writes: finals per second through the write-behind path on SQLite and
PostgreSQL, and what the caption path pays for it (the `submit` call, which is all
the media path does; target < 1 ms p95).

    .venv/bin/python bench/store.py [--finals 5000] [--postgres postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile
from media_server.store.base import Store
from media_server.store.postgres import PostgresStore
from media_server.store.records import UtteranceRecord
from media_server.store.sqlite import SqliteStore
from media_server.store.writer import WriteBehind


def records(count: int) -> list[UtteranceRecord]:
    session = secrets.token_hex(6)
    return [UtteranceRecord(
        session_id=session, utterance_id=f"p-{n}", room="bench", speaker_id="p",
        speaker="Speaker", lang="en", text=f"This is final number {n} of the benchmark.",
        start_ms=n * 1000, end_ms=n * 1000 + 900, engine="bench", created_at=time.time(),
        translations={"pt": f"Esta é a frase {n}.", "es": f"Esta es la frase {n}."})
        for n in range(count)]


async def measure(store: Store, spool: Path, count: int) -> tuple[float, float, float]:
    writer = WriteBehind(store, spool)
    await writer.start()
    costs = []
    started = time.perf_counter()
    for record in records(count):
        before = time.perf_counter()
        writer.submit(record)
        costs.append(time.perf_counter() - before)
        if len(costs) % 50 == 0:
            await asyncio.sleep(0)  # captions arrive spread out, with the loop running
    assert await writer.drain(120)
    elapsed = time.perf_counter() - started
    await writer.aclose()
    return count / elapsed, percentile(costs, 50) * 1e6, percentile(costs, 95) * 1e6


async def main(count: int, admin_url: str) -> None:
    print(f"{count} finals, each with 2 translations, submitted as fast as possible")
    print(f"{'database':<11} {'finals/s':>9} {'submit p50':>11} {'p95':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = await SqliteStore.open(Path(tmp) / "bench.db")
        rate, p50, p95 = await measure(sqlite, Path(tmp) / "spool-1", count)
        await sqlite.close()
        print(f"{'SQLite':<11} {rate:>9.0f} {p50:>9.1f}µs {p95:>6.1f}µs")
        name = f"li_bench_{secrets.token_hex(4)}"
        admin = await asyncpg.connect(admin_url)
        await admin.execute(f"CREATE DATABASE {name}")
        try:
            postgres = await PostgresStore.open(admin_url.rsplit("/", 1)[0] + "/" + name)
            rate, p50, p95 = await measure(postgres, Path(tmp) / "spool-2", count)
            await postgres.close()
            print(f"{'PostgreSQL':<11} {rate:>9.0f} {p50:>9.1f}µs {p95:>6.1f}µs")
        finally:
            await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
            await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--finals", type=int, default=5000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    asyncio.run(main(args.finals, args.postgres))
