"""A soak: rooms joining and leaving for a long time (30 minutes by default) while the
services under the server fail, printing per minute what a leak or a loss would show.

The server (`bench/rooms.py --serve`: every real engine but recognition, which answers
each utterance at once with a new sentence) keeps history in a private PostgreSQL and
state in a private Redis, and translates with Google first (a fake on loopback) and
the local engines next. Every `--room-every` seconds a room opens: one speaker
(short stretches of JFK, one final each) and two listeners (Portuguese, Spanish) for
about `--room-seconds`; then they leave (the speaker every other time without a word,
as a dropped connection). Meanwhile, on a fixed timeline: Google translation hangs
(no answer) twice for a while, PostgreSQL is stopped and started, its connections
are cut, Redis is killed and started.

Per minute: the server's RSS, open file descriptors and asyncio tasks (from its
/metrics), sessions open, finals read so far. At the end: finals lost (read by a
listener but not in PostgreSQL, or read by one listener of a room and not the
other) and duplicated (read twice, or stored twice). Targets: flat memory, 0 lost,
0 duplicated.

    .venv/bin/python bench/soak.py [--minutes 30] [--room-every 20] [--room-seconds 45]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import join_listeners, percentile, rss_mb, server_process, wait_ready
from media_server.ice_addresses import restrict_host_addresses
from tests.conftest import JFK
from tests.google_fake import FakeGoogle
from tests.rtc_client import CaptionClient, load_pcm48
from tests.scripted_speech import ScriptedRecognizer
from tests.services import PrivatePostgres, PrivateRedis, spare_port
from tests.test_durability import bursts

LISTENERS = ("pt", "es")
ROOMS_PY = str(Path(__file__).resolve().parent / "rooms.py")


@dataclass
class Ledger:
    """What the listeners read, room by room."""

    read: dict[str, dict[str, Counter[str]]] = field(default_factory=dict)  # room -> lang -> ids
    sessions: dict[str, str] = field(default_factory=dict)  # room -> speaker's session id
    rooms_done: int = 0

    def finals(self) -> int:
        return sum(sum(ids.values()) for langs in self.read.values() for ids in langs.values())


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return float("nan")


async def one_room(url: str, http: aiohttp.ClientSession, *, name: str, audio: np.ndarray,
                   vanish: bool, ledger: Ledger) -> None:
    listeners = await join_listeners(url, http, room=name, langs=list(LISTENERS))
    speaker = CaptionClient(url, http)
    await speaker.start(audio, room=name, name="speaker", target_lang="en")
    ledger.sessions[name] = speaker.session_id
    await asyncio.sleep(len(audio) / 48000 + 3)
    await speaker.close(delete=not vanish)
    for listener in listeners:
        await listener.close()
    ledger.read[name] = {
        lang: Counter(str(m["utterance_id"]) for m in listener.finals())
        for lang, listener in zip(LISTENERS, listeners, strict=True)}
    ledger.rooms_done += 1


async def faults(minutes: float, google: FakeGoogle, *, postgres: PrivatePostgres,
                 redis: PrivateRedis, log: list[str]) -> None:
    """The timeline, as shares of the run: (start, what, undo after seconds)."""
    total = minutes * 60
    started = time.monotonic()

    async def at(share: float) -> None:
        await asyncio.sleep(max(0.0, started + share * total - time.monotonic()))

    async def note(what: str) -> None:
        log.append(f"{(time.monotonic() - started) / 60:5.1f} min  {what}")

    for share, action in ((0.10, "google hangs"), (0.17, "google answers"),
                          (0.25, "postgres stopped"), (0.30, "postgres started"),
                          (0.40, "redis killed"), (0.45, "redis started"),
                          (0.50, "postgres connections cut"),
                          (0.60, "google hangs"), (0.67, "google answers"),
                          (0.75, "postgres stopped"), (0.78, "redis killed"),
                          (0.82, "postgres started"), (0.83, "redis started")):
        await at(share)
        if action == "google hangs":
            google.translation.hang.on = True
        elif action == "google answers":
            google.translation.hang.on = False
        elif action == "postgres stopped":
            await postgres.stop()
        elif action == "postgres started":
            await postgres.start()
        elif action == "postgres connections cut":
            await postgres.terminate_backends()
        elif action == "redis killed":
            await redis.stop()
        else:
            await redis.start()
        await note(action)


async def stored(postgres: PrivatePostgres) -> Counter[tuple[str, str]]:
    database = await asyncpg.connect(postgres.url)
    try:
        rows = await database.fetch("SELECT room, utterance_id FROM utterances")
    finally:
        await database.close()
    return Counter((row["room"], row["utterance_id"]) for row in rows)


async def run(minutes: float, room_every: float, room_seconds: float) -> None:
    jfk = load_pcm48(JFK)
    # A short phrase every 2.5 s: finals come fast, and the spoken translation of each
    # (with its gap) fits before the next.
    audio = bursts(jfk, max(1, round(room_seconds / 2.5)), gap_s=2.05)
    port = spare_port()
    url = f"http://127.0.0.1:{port}"
    google = FakeGoogle(ScriptedRecognizer(["unused"]))
    await google.start()
    postgres = PrivatePostgres()
    await postgres.create()
    data = Path(tempfile.mkdtemp(prefix="live-interpreter-soak-"))
    redis = PrivateRedis(data / "redis")
    await redis.start()
    env = {"LIVE_INTERPRETER_DATABASE_URL": postgres.url,
           "LIVE_INTERPRETER_REDIS_URL": redis.url,
           "LIVE_INTERPRETER_DATA_DIR": str(data / "server"),
           "LIVE_INTERPRETER_TRANSLATE": "google,local",
           "LIVE_INTERPRETER_GOOGLE_ENDPOINT": google.address,
           "LIVE_INTERPRETER_GOOGLE_PROJECT": "soak",
           "LIVE_INTERPRETER_ENGINE_PROBE_INTERVAL_S": "10",
           "LIVE_INTERPRETER_PEER_IDLE_TIMEOUT_S": "6"}
    ledger, timeline = Ledger(), list[str]()
    print(f"soak: {minutes:g} min, a room every {room_every:g} s for ~{room_seconds:g} s "
          f"(1 speaker, listeners {', '.join(LISTENERS)})")
    print(f"{'min':>4} {'RSS MB':>7} {'fds':>5} {'tasks':>6} {'sessions':>8} {'rooms':>6} "
          f"{'finals':>7}")
    rss: list[float] = []
    with server_process(port, env, [sys.executable, ROOMS_PY, "--serve", str(port)]) as proc:
        await wait_ready(url, within=120)
        fault_task = asyncio.create_task(faults(minutes, google, postgres=postgres, redis=redis,
                                                log=timeline))
        rooms: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession() as http:
            started = time.monotonic()
            next_room, next_report, count = started, started + 60, 0
            while time.monotonic() < started + minutes * 60:
                now = time.monotonic()
                if now >= next_room and now + room_seconds < started + minutes * 60:
                    count += 1
                    task = asyncio.create_task(one_room(url, http, name=f"soak-{count}",
                                                        audio=audio,
                                                        vanish=count % 2 == 0, ledger=ledger))
                    rooms.add(task)
                    task.add_done_callback(rooms.discard)
                    next_room += room_every
                if now >= next_report:
                    async with http.get(url + "/metrics") as resp:
                        text = await resp.text()
                    rss.append(rss_mb(proc.pid))
                    print(f"{round((now - started) / 60):>4} {rss[-1]:>7.0f} "
                          f"{metric(text, 'live_interpreter_process_open_fds'):>5.0f} "
                          f"{metric(text, 'live_interpreter_event_loop_tasks'):>6.0f} "
                          f"{metric(text, 'live_interpreter_active_sessions'):>8.0f} "
                          f"{ledger.rooms_done:>6} {ledger.finals():>7}", flush=True)
                    next_report += 60
                await asyncio.sleep(0.5)
            await asyncio.gather(*rooms, return_exceptions=True)
            await fault_task
            await asyncio.sleep(15)  # the write-behind queue and spool drain
    print("\nfaults:")
    print("\n".join(timeline))
    await report(ledger, await stored(postgres), rss)
    await redis.stop()
    await postgres.destroy()
    await google.stop()


async def report(ledger: Ledger, rows: Counter[tuple[str, str]], rss: list[float]) -> None:
    lost_store = lost_reader = duplicated = 0
    for room, langs in ledger.read.items():
        read = set().union(*langs.values())
        lost_store += len({(room, u) for u in read} - set(rows))
        lost_reader += sum(len(read - set(ids)) for ids in langs.values())
        duplicated += sum(n - 1 for ids in langs.values() for n in ids.values() if n > 1)
    duplicated += sum(n - 1 for n in rows.values() if n > 1)
    print(f"\nrooms {ledger.rooms_done}, finals read {ledger.finals()} "
          f"({len(rows)} utterances stored)")
    print(f"lost: {lost_store} read but not stored, {lost_reader} missing for one listener "
          f"of a room; duplicated: {duplicated}")
    if len(rss) >= 4:
        half = len(rss) // 2
        print(f"RSS: first half median {percentile(rss[:half], 50):.0f} MB, second half "
              f"{percentile(rss[half:], 50):.0f} MB, last {rss[-1]:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--room-every", type=float, default=20.0, help="seconds")
    parser.add_argument("--room-seconds", type=float, default=45.0)
    args = parser.parse_args()
    restrict_host_addresses(["127.0.0.1"])  # our peers offer loopback candidates only
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args.minutes, args.room_every, args.room_seconds))


if __name__ == "__main__":
    main()
