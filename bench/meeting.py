"""A meeting where everyone speaks, on default settings: is anyone refused, is every
turn captioned for every reader, and do finals keep up when voices overlap?

One room of N participants (4 and 8 by default), **every one a speaker**, taking turns
with real speech and espeak-ng phrases: 1 s between turns, but one turn in five
starts 1.5 s before the previous one ends, and once three people speak at once for
about 5 s. Each participant reads (and hears, spoken translation on) Portuguese,
Spanish or English in turn. A server process with the local engines and no
`MAX_SPEAKERS` on loopback. Per turn: end of speech -> final caption (English readers),
-> translated final (the others), -> the `speech` message of its clip (its first audio),
as p50/p95 and as ratios to the machine's yardstick (a plain faster-whisper decode of
the same phrases, timed first); the three-voice stretch's finals on their own; how soon
after it the next turn's interims came; the server's CPU and RSS per minute; and from
its `/metrics`, the interims thinned, paused or superseded.

Targets on this machine kind: nobody refused; every turn captioned for every reader;
finals p95 <= 1.5x yardstick; in the three-voice stretch every final <= 3x and
interims back within 2 s after it; RSS flat.

    .venv/bin/python bench/meeting.py [--people 4,8] [--minutes 3]
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
    percentile,
    phrases,
    rss_mb,
    server_process,
    speech_bounds,
    wait_ready,
    yardstick,
)
from tests.rtc_client import RATE, CaptionClient

PORT = 8096
GAP_S = 1.0
OVERLAP_S = 1.5  # one turn in five starts this long before the previous one ends
ROOM = "meeting"
READS = ["pt", "es", "en"]
NAMES = ["Ana", "Bruno", "Chen", "Dara", "Emeka", "Farah", "Goran", "Hana"]


@dataclass
class Turn:
    speaker: int
    start_s: float  # on the shared timeline
    end_s: float  # where the speech ends
    stretch: bool = False  # one of the three voices at once


@dataclass
class Lags:
    finals: list[float] = field(default_factory=list)
    translated: list[float] = field(default_factory=list)
    clips: list[float] = field(default_factory=list)
    stretch: list[float] = field(default_factory=list)  # its finals and translated finals
    missed: list[tuple[Turn, int]] = field(default_factory=list)  # (turn, reader): no final


def timeline(people: int, clips: list[np.ndarray], seconds: float
             ) -> tuple[list[Turn], list[np.ndarray]]:
    """Every participant's audio on one timeline, and the turns it holds."""
    tracks = [np.zeros(int((seconds + 30) * RATE), dtype=np.int16) for _ in range(people)]
    turns: list[Turn] = []
    t, k = 1.0, 0

    def say(speaker: int, at: float, *, clip: np.ndarray, stretch: bool = False) -> float:
        first, last = speech_bounds(clip)
        begin = int(at * RATE)
        tracks[speaker][begin:begin + len(clip)] = clip
        turns.append(Turn(speaker, at + first / RATE, at + last / RATE, stretch))
        return at + len(clip) / RATE

    stretch_at = seconds / 2
    while t < seconds:
        if t >= stretch_at and not any(turn.stretch for turn in turns):
            # Three at once for about 5 s: each says two phrases back to back.
            ends = []
            for n in range(3):
                speaker = (k + n) % people
                a, b = clips[(k + 2 * n) % len(clips)], clips[(k + 2 * n + 1) % len(clips)]
                ends.append(say(speaker, t, clip=np.concatenate([a, b])[: int(5.5 * RATE)],
                               stretch=True))
            t, k = max(ends) + GAP_S, k + 3
            continue
        speaker = k % people
        start = t - OVERLAP_S - GAP_S if k % 5 == 4 else t
        t = say(speaker, max(start, 0.5), clip=clips[k % len(clips)]) + GAP_S
        k += 1
    return turns, tracks


def measure(people: list[CaptionClient], turns: list[Turn], *, t0: float,
            reads: list[str]) -> Lags:
    """Each (turn, reader): the last final of the turn's speaker that ends near the turn's
    speech end, its lag from the speech end, and its clip's."""
    lags = Lags()
    by_speaker: dict[str, list[Turn]] = {}
    for turn in turns:
        by_speaker.setdefault(NAMES[turn.speaker], []).append(turn)
    for index, (reader, lang) in enumerate(zip(people, reads, strict=True)):
        got: dict[int, tuple[float, str]] = {}  # turn -> (arrival, utterance)
        clip_at: dict[str, float] = {}
        for received in reader.received:
            message = received.message
            if message["type"] == "speech":
                clip_at.setdefault(message["utterance_id"], received.at)
            if message["type"] != "caption" or message["status"] != "final" \
                    or not message["text"]:
                continue
            end = t0 + message["end_ms"] / 1000
            candidates = by_speaker.get(message["speaker"], [])
            if not candidates:
                continue
            turn = min(candidates, key=lambda c: abs(c.end_s - end))
            if abs(turn.end_s - end) < 2.0:
                got[id(turn)] = (received.at, message["utterance_id"])
        for turn in turns:
            if turn.speaker == index:
                continue
            if id(turn) not in got:
                lags.missed.append((turn, index))
                continue
            at, utterance = got[id(turn)]
            lag = at - turn.end_s
            (lags.finals if lang == "en" else lags.translated).append(lag)
            if turn.stretch:
                lags.stretch.append(lag)
            if utterance in clip_at:
                lags.clips.append(clip_at[utterance] - turn.end_s)
    return lags


def interims_back(people: list[CaptionClient], turns: list[Turn]) -> float:
    """After the three-voice stretch: how long after its start the next turn's first
    interim reached anyone."""
    stretch_end = max(t.end_s for t in turns if t.stretch)
    following = min((t for t in turns if t.start_s > stretch_end), key=lambda t: t.start_s)
    name = NAMES[following.speaker]
    firsts = [r.at for p in people for r in p.received
              if r.message["type"] == "caption" and r.message["status"] == "interim"
              and r.message["speaker"] == name and r.at > following.start_s]
    return min(firsts, default=float("nan")) - following.start_s


async def sample(pid: int, rows: list[tuple[float, float]], every: float = 60.0) -> None:
    """The server's CPU share and RSS, a row a minute."""
    while True:
        cpu0, at = cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(every)
        rows.append(((cpu_seconds(pid) - cpu0) / (time.monotonic() - at) * 100, rss_mb(pid)))


async def scrape(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    async with http.get(url + "/metrics") as resp:
        families = {f.name: f for f in text_string_to_metric_families(await resp.text())}
    figures = {f"interims {s.labels['reason']}": s.value for s in
               families["live_interpreter_stt_interims_skipped"].samples
               if s.name.endswith("_total")}
    figures["interims decoded"] = sum(
        s.value for s in families["live_interpreter_captions"].samples
        if s.name.endswith("_total") and s.labels["status"] == "interim")
    figures["voices carried"] = next(
        s.value for s in families["live_interpreter_stt_capacity_voices"].samples)
    return figures


def _p(values: list[float], stick: float) -> str:
    if not values:
        return "-"
    p50, p95 = percentile(values, 50), percentile(values, 95)
    return f"p50 {p50:.2f} s, p95 {p95:.2f} s ({p50 / stick:.2f}x / {p95 / stick:.2f}x)"


async def meeting(count: int, minutes: float, *, clips: list[np.ndarray], stick: float) -> None:
    turns, tracks = timeline(count, clips, minutes * 60)
    url = f"http://127.0.0.1:{PORT}"
    env = {"LIVE_INTERPRETER_PEER_IDLE_TIMEOUT_S": "10"}  # no MAX_SPEAKERS: the defaults
    reads = [READS[n % len(READS)] for n in range(count)]
    rows: list[tuple[float, float]] = []
    with server_process(PORT, env) as proc:
        await wait_ready(url)
        async with aiohttp.ClientSession() as http:
            people = [CaptionClient(url, http) for _ in range(count)]
            starts_at = time.monotonic() + 2 + 0.5 * count
            refused = []
            for n, person in enumerate(people):
                try:
                    await person.start(tracks[n], starts_at=starts_at, room=ROOM,
                                       name=NAMES[n], target_lang=reads[n], monitor=False)
                except RuntimeError as exc:
                    refused.append(f"{NAMES[n]}: {exc}")
            sampler = asyncio.create_task(sample(proc.pid, rows))
            await asyncio.sleep(starts_at + max(t.end_s for t in turns) + 8 - time.monotonic())
            sampler.cancel()
            figures = await scrape(http, url)
            for turn in turns:  # onto the monotonic clock
                turn.start_s += starts_at
                turn.end_s += starts_at
            t0s = [p.track._t0 for p in people if p.track is not None and p.track._t0]
            lags = measure(people, turns, t0=min(t0s), reads=reads)
            back = interims_back(people, turns)
            for person in people:
                await person.close()
    readers = count - 1
    print(f"\n{count} participants, every one a speaker; {len(turns)} turns over "
          f"{minutes:g} min ({sum(t.stretch for t in turns)} in the three-voice stretch)")
    print(f"  refused: {len(refused)}" + "".join(f"\n    {r}" for r in refused))
    print(f"  turns captioned for every reader: {len(turns) * readers - len(lags.missed)} of "
          f"{len(turns) * readers} (turn, reader) pairs" + "".join(
              f"\n    missed: {NAMES[turn.speaker]}'s turn at {turn.start_s - starts_at:.1f}-"
              f"{turn.end_s - starts_at:.1f} s, by {NAMES[reader]}"
              for turn, reader in lags.missed))
    print(f"  end of speech -> final:            {_p(lags.finals, stick)}")
    print(f"  end of speech -> translated final: {_p(lags.translated, stick)}")
    print(f"  end of speech -> clip's first audio: {_p(lags.clips, stick)}")
    worst = max(lags.stretch, default=float("nan"))
    print(f"  three-voice stretch: every final within {worst:.2f} s ({worst / stick:.2f}x); "
          f"the next turn's first interim {back:.2f} s after it began")
    print("  server CPU / RSS per minute: " + ", ".join(
        f"{cpu:.0f}% {rss:.0f} MB" for cpu, rss in rows))
    print("  " + ", ".join(f"{name} {value:.0f}" for name, value in figures.items()))


async def run(people: list[int], minutes: float) -> None:
    clips = phrases("en")
    stick = yardstick(clips)
    print(f"yardstick: a plain 30 s-window faster-whisper decode of these phrases, "
          f"p50 {stick:.2f} s; ratios below are to it")
    for count in people:
        await meeting(count, minutes, clips=clips, stick=stick)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", default="4,8", help="participants per meeting, comma-separated")
    parser.add_argument("--minutes", type=float, default=3)
    args = parser.parse_args()
    asyncio.run(run([int(n) for n in args.people.split(",")], args.minutes))


if __name__ == "__main__":
    main()
