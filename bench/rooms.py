"""How many rooms of four one server process carries with the local engines before
translated captions fall behind real time, and where the time goes.

Each room: one speaker of English (real speech and espeak-ng phrases in turn, 1.5 s
apart, one person speaking at a time) and three listeners reading Portuguese,
Spanish and English, so every final is translated and synthesised twice.
For each number of rooms, every listener measures end of speech (the caption's
`end_ms` on the room clock, mapped to the speaker's send time) -> the translated
final's arrival, and -> the start of its spoken clip. CPU is given for the server
process and for the whole machine (2 cores = 200 %: engine subprocesses such as
Apertium and espeak-ng, and this benchmark's own 4 peers a room, share it). A room
count is carried while the translated finals' p95 stays <= 1.5 s and does not grow
over the run. The server's Prometheus histograms split the time into recognition,
translation and synthesis (and the wait for a synthesis worker).

`--recognition scripted` swaps Whisper for a recogniser that answers at once with a
new sentence for every final (no interims): what the room layer itself carries
(fan-out, translation, synthesis, return tracks) when recognition is elsewhere (the
Google engines), since on a slow CPU local Whisper saturates first.

    .venv/bin/python bench/rooms.py [--rooms 1,2,3,4,6] [--seconds 40]
                                    [--recognition whisper|scripted]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ESPEAK_PHRASES,
    cpu_seconds,
    join_listeners,
    percentile,
    phrases,
    server_process,
    wait_ready,
)
from media_server.engines.loader import load_engines
from media_server.settings import Settings
from tests.rtc_client import RATE, CaptionClient
from tests.scripted_speech import scripted_engines

PORT = 8099
GAP_S = 1.5
LISTENERS = "pt,es,en"  # the local engines translate English into pt and es
STAGES = {
    "recognition (audio end -> final)": "live_interpreter_recognition_lag_seconds",
    "translation, per language": "live_interpreter_translation_seconds",
    "wait for a synthesis worker": "live_interpreter_speech_queue_seconds",
    "synthesis, per language": "live_interpreter_synthesis_seconds",
}


async def serve_scripted(port: int) -> None:
    """The server with every real engine but recognition (see ScriptedRecognizer)."""
    from aiohttp import web

    from signaling.app import create_app

    settings = Settings.load().replace(stt=("local",), max_speakers=1000, max_sessions=1000)
    real = await load_engines(settings)  # Whisper loads too, and stays idle
    app = create_app(settings, engines=scripted_engines(real, ESPEAK_PHRASES), dev=True)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


def machine_busy_s() -> float:
    """CPU seconds all processes used (engine subprocesses and this client included)."""
    import os
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass
class RoomResult:
    caption_lags: list[tuple[float, float]] = field(default_factory=list)  # (speech end, lag)
    speech_lags: list[float] = field(default_factory=list)
    finals: int = 0


def program(clips: list[np.ndarray], seconds: float) -> np.ndarray:
    """Phrases one after another with pauses, for about `seconds`."""
    gap = np.zeros(int(GAP_S * RATE), dtype=np.int16)
    parts: list[np.ndarray] = []
    total = 0
    for clip in clips * 10:
        if total > seconds * RATE:
            break
        parts += [clip, gap]
        total += len(clip) + len(gap)
    return np.concatenate(parts)


async def room(url: str, http: aiohttp.ClientSession, *, name: str, audio: np.ndarray,
               langs: list[str], result: RoomResult) -> None:
    listeners = await join_listeners(url, http, room=name, langs=langs)
    speaker = CaptionClient(url, http)
    await speaker.start(audio, lead_silence_s=random.uniform(0, 2), room=name, name="speaker")
    await asyncio.sleep(len(audio) / RATE + 4)
    assert speaker.track is not None and speaker.track._t0 is not None
    t0 = speaker.track._t0  # the speaker's first frame: 0 on the room's clock
    for listener in listeners:
        arrivals = {}
        for received in listener.received:
            message = received.message
            if (message["type"] == "caption" and message["status"] == "final"
                    and message["text"] and message["translation"]):
                speech_end = t0 + message["end_ms"] / 1000
                result.caption_lags.append((speech_end, received.at - speech_end))
                arrivals[message["utterance_id"]] = speech_end
                result.finals += 1
            elif message["type"] == "speech" and message["utterance_id"] in arrivals:
                result.speech_lags.append(received.at - arrivals[message["utterance_id"]])
    for client in [speaker, *listeners]:
        await client.close()


async def metrics(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    async with http.get(url + "/metrics") as resp:
        text = await resp.text()
    values = {}
    for line in text.splitlines():
        if line.startswith("live_interpreter_") and (line.split(" ")[0].endswith(("_sum",
                                                                                   "_count"))):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def stage_means(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    means = {}
    for label, metric in STAGES.items():
        count = after.get(metric + "_count", 0) - before.get(metric + "_count", 0)
        total = after.get(metric + "_sum", 0) - before.get(metric + "_sum", 0)
        means[label] = total / count if count else float("nan")
    return means


async def run(rooms_list: list[int], seconds: float, *, langs: list[str], scripted: bool) -> None:
    clips = phrases("en")
    audio = program(clips, seconds)
    url = f"http://127.0.0.1:{PORT}"
    env = {"LIVE_INTERPRETER_MAX_SPEAKERS": "64", "LIVE_INTERPRETER_PEER_IDLE_TIMEOUT_S": "10"}
    print(f"{len(audio) / RATE:.0f} s of speech per room; listeners read "
          f"{', '.join(langs)}; 1 speaker + {len(langs)} listeners a room")
    print(f"{'rooms':>5} {'finals':>6} {'caption p50':>11} {'p95':>6} {'late/early':>10} "
          f"{'speech p50':>10} {'p95':>6} {'server CPU':>10} {'machine':>8}"
          "   where the time goes (means)")
    args = [sys.executable, __file__, "--serve", str(PORT)] if scripted else None
    print("recognition:", "scripted (instant)" if scripted else "local Whisper")
    with server_process(PORT, env, args) as proc:
        await wait_ready(url)
        async with aiohttp.ClientSession() as http:
            for count in rooms_list:
                results = [RoomResult() for _ in range(count)]
                before, cpu0 = await metrics(http, url), cpu_seconds(proc.pid)
                busy0 = machine_busy_s()
                started = asyncio.get_running_loop().time()
                await asyncio.gather(*(room(url, http, name=f"bench-{count}-{i}", audio=audio,
                                            langs=langs,
                                            result=results[i]) for i in range(count)))
                elapsed = asyncio.get_running_loop().time() - started
                cpu = (cpu_seconds(proc.pid) - cpu0) / elapsed * 100
                machine = (machine_busy_s() - busy0) / elapsed * 100
                means = stage_means(before, await metrics(http, url))
                lags = [lag for r in results for _, lag in r.caption_lags]
                speech = [lag for r in results for lag in r.speech_lags]
                by_time = sorted(pair for r in results for pair in r.caption_lags)
                third = max(1, len(by_time) // 3)
                trend = (percentile([lag for _, lag in by_time[-third:]], 50)
                         / percentile([lag for _, lag in by_time[:third]], 50))
                stages = "; ".join(f"{label} {value * 1000:.0f} ms"
                                   for label, value in means.items())
                print(f"{count:>5} {sum(r.finals for r in results):>6} "
                      f"{percentile(lags, 50):>10.2f}s {percentile(lags, 95):>5.2f}s "
                      f"{trend:>9.2f}x {percentile(speech, 50):>9.2f}s "
                      f"{percentile(speech, 95):>5.2f}s {cpu:>9.0f}% {machine:>7.0f}%   {stages}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", default="1,2,3,4,6")
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--listeners", default=LISTENERS, help="their languages")
    parser.add_argument("--recognition", choices=("whisper", "scripted"), default="whisper")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve_scripted(args.serve))
        return
    asyncio.run(run([int(n) for n in args.rooms.split(",")], args.seconds,
                    langs=args.listeners.split(","), scripted=args.recognition == "scripted"))


if __name__ == "__main__":
    main()
