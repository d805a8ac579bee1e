"""A meeting, minute by minute: does the interpretation keep up, or drift behind?

One room, two English speakers taking turns with real speech and espeak-ng phrases
(1.5 s between turns), three listeners reading Portuguese, Spanish and English, with
spoken translation on; a server process with the local engines on loopback. Each
minute (by when the speech ended) it prints p50/p95 of end of speech -> final
caption, -> translated final, -> the `speech` message of its clip (the clip's first
audio is due), and the server's CPU and RSS. Latencies are also given as ratios to
the machine's yardstick (a plain faster-whisper decode of the same phrases, timed
first). Targets: no drift (the last minute's p95 within 1.2x the first's), translated
final p95 <= 2 s, clip start p95 <= 3 s, RSS flat. Last, from the server's
`/metrics`: how long finals waited for the recogniser, and the clips played faster
or dropped to keep up.

Two speakers need `MAX_SPEAKERS=2` here: this machine's calibration admits one.

    .venv/bin/python bench/meeting.py [--minutes 10]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    cpu_seconds,
    join_listeners,
    percentile,
    phrases,
    rss_mb,
    server_process,
    wait_ready,
    yardstick,
)
from tests.rtc_client import RATE, CaptionClient

PORT = 8096
GAP_S = 1.5
ROOM = "meeting"
LISTENERS = ["pt", "es", "en"]


@dataclass
class Minute:
    finals: list[float] = field(default_factory=list)
    translated: list[float] = field(default_factory=list)
    clips: list[float] = field(default_factory=list)
    cpu_percent: float = float("nan")
    rss_mb: float = float("nan")


def turns(clips: list[np.ndarray], seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Two speakers' audio, in turns: while one speaks the other is silent."""
    gap = np.zeros(int(GAP_S * RATE), dtype=np.int16)
    parts: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    total, turn = 0, 0
    while total < seconds * RATE:
        clip = clips[turn % len(clips)]
        silence = np.zeros(len(clip), dtype=np.int16)
        speaking, listening = parts[turn % 2], parts[1 - turn % 2]
        speaking += [clip, gap]
        listening += [silence, gap]
        total += len(clip) + len(gap)
        turn += 1
    return np.concatenate(parts[0]), np.concatenate(parts[1])


async def sample_process(pid: int, minutes: list[Minute], started: float) -> None:
    """The server's CPU and RSS over each minute."""
    for number, minute in enumerate(minutes, 1):
        cpu0, at = cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(max(0.0, started + 60 * number - time.monotonic()))
        minute.cpu_percent = (cpu_seconds(pid) - cpu0) / (time.monotonic() - at) * 100
        minute.rss_mb = rss_mb(pid)


def collect(listeners: list[CaptionClient], t0: float, *, started: float,
            minutes: list[Minute]) -> None:
    for listener in listeners:
        ends: dict[str, float] = {}
        for received in listener.received:
            message = received.message
            if message["type"] == "caption" and message["status"] == "final" \
                    and message["text"]:
                end = t0 + message["end_ms"] / 1000
                index = int((end - started) // 60)
                if not 0 <= index < len(minutes):
                    continue
                ends[message["utterance_id"]] = end
                if message["translation"]:
                    minutes[index].translated.append(received.at - end)
                else:
                    minutes[index].finals.append(received.at - end)
            elif message["type"] == "speech" and message["utterance_id"] in ends:
                end = ends[message["utterance_id"]]
                minutes[int((end - started) // 60)].clips.append(received.at - end)


def _p(values: list[float], stick: float) -> str:
    if not values:
        return f"{'-':>19}"
    p50, p95 = percentile(values, 50), percentile(values, 95)
    return f"{p50:5.2f} {p95:5.2f} ({p95 / stick:4.2f}x)"


async def run(minutes_count: int) -> None:
    clips = phrases("en")
    stick = yardstick(clips)
    first, second = turns(clips, minutes_count * 60)
    print(f"yardstick: a plain 30 s-window faster-whisper decode of these phrases, "
          f"p50 {stick:.2f} s; ratios below are p95 to it")
    env = {"LIVE_INTERPRETER_MAX_SPEAKERS": "2", "LIVE_INTERPRETER_PEER_IDLE_TIMEOUT_S": "10"}
    url = f"http://127.0.0.1:{PORT}"
    minutes = [Minute() for _ in range(minutes_count)]
    with server_process(PORT, env) as proc:
        await wait_ready(url)
        async with aiohttp.ClientSession() as http:
            listeners = await join_listeners(url, http, room=ROOM, langs=LISTENERS)
            speakers = [CaptionClient(url, http) for _ in range(2)]
            started = time.monotonic()
            sampler = asyncio.create_task(sample_process(proc.pid, minutes, started))
            for speaker, (name, audio) in zip(speakers, (("Ana", first), ("Bruno", second)),
                                              strict=True):
                await speaker.start(audio, lead_silence_s=0.0, room=ROOM, name=name,
                                    target_lang="en", monitor=False)
            await asyncio.sleep(len(first) / RATE + 6)
            sampler.cancel()
            server_figures = await scrape(http, url)
            t0s = [s.track._t0 for s in speakers if s.track is not None and s.track._t0]
            collect(listeners, min(t0s), started=started, minutes=minutes)
            for client in [*speakers, *listeners]:
                await client.close()
    print(f"{'minute':>6} {'final p50 p95':>19} {'translated p50 p95':>19} "
          f"{'clip starts p50 p95':>19} {'CPU':>5} {'RSS MB':>7}")
    for index, minute in enumerate(minutes, 1):
        print(f"{index:>6} {_p(minute.finals, stick)} {_p(minute.translated, stick)} "
              f"{_p(minute.clips, stick)} {minute.cpu_percent:4.0f}% {minute.rss_mb:7.0f}")
    spoken = [m for m in minutes if m.translated]
    if len(spoken) >= 2:
        drift = percentile(spoken[-1].translated, 95) / percentile(spoken[0].translated, 95)
        translated = [lag for m in minutes for lag in m.translated]
        clip_starts = [lag for m in minutes for lag in m.clips]
        print(f"drift (last minute's translated p95 / first's): {drift:.2f}x (target <= 1.2); "
              f"translated p95 {percentile(translated, 95):.2f} s (target <= 2); clip start "
              f"p95 {percentile(clip_starts, 95):.2f} s (target <= 3); RSS "
              f"{minutes[0].rss_mb:.0f} -> {minutes[-1].rss_mb:.0f} MB")
    print(server_figures)


async def scrape(http: aiohttp.ClientSession, url: str) -> str:
    """The server's own view: how long finals waited for the recogniser (behind an
    interim, or other finals), and what the return tracks did to keep up."""
    async with http.get(url + "/metrics") as resp:
        families = {f.name: f for f in text_string_to_metric_families(await resp.text())}

    def total(name: str) -> float:
        return sum(s.value for s in families[name].samples if s.name.endswith("_total"))

    waits = [(float(s.labels["le"]), s.value) for s in
             families["live_interpreter_stt_final_wait_seconds"].samples
             if s.name.endswith("_bucket")]
    return (f"server: finals waited for the recogniser p50 <= {_bucket_quantile(waits, 0.5)} s, "
            f"p95 <= {_bucket_quantile(waits, 0.95)} s; clips sped up "
            f"{total('live_interpreter_playout_sped_up_clips'):.0f}, saving "
            f"{total('live_interpreter_playout_saved_seconds'):.1f} s; clips cut short "
            f"{total('live_interpreter_playout_cut_clips'):.0f} "
            f"({total('live_interpreter_playout_cut_seconds'):.1f} s left out)")


def _bucket_quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """The upper bound of the histogram bucket holding quantile `q`."""
    count = max(value for _, value in buckets)
    return next(bound for bound, value in sorted(buckets) if value >= q * count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(run(args.minutes))


if __name__ == "__main__":
    main()
