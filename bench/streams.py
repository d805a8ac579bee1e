"""How many streams a server process carries, and how many speakers the local STT keeps up with.

Part 1, media path: N aiortc clients send speech in real time to a server process on
loopback. "bare aiortc" sessions only receive and discard frames (aiortc's RTP, SRTP,
DTLS and Opus decode); "media path" sessions also resample to 16 kHz and run the VAD
and the stream adapter, with recognition itself replaced by an instant empty result
so that its cost is left out. The server's CPU time comes from /proc.

Part 2, recognition: N speakers' audio is pushed in real time into real Whisper
streams in one process; for each N, how long after the end of speech the finals come
and how busy the decode worker is. A speaker count is sustained while p95 <= 1.5 s.

Part 3, idle participants (`--idle`): N speakers in one room of a real server (the
local engines) who say nothing, each with its return track: what a participant costs
while nobody speaks.

    .venv/bin/python bench/streams.py [--streams 1,5,10,20] [--speakers 1,2,3,4,6,8]
                                      [--idle 1,4,8]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import cpu_seconds, percentile, rss_mb, server_process, wait_ready
from media_server.engines.catalog import EngineCatalog
from media_server.engines.loader import Engines, load_engines
from media_server.engines.stt.base import DecodeRequest, SpeechEventKind, Transcript
from media_server.engines.stt.decode_scheduler import DecodeScheduler
from media_server.engines.stt.stream_adapter import AdapterConfig, StreamAdapter
from media_server.engines.vad.segmenter import SpeechSegmenter
from media_server.engines.vad.silero_onnx import SileroOnnx, load_session
from media_server.settings import Settings
from tests.conftest import JFK
from tests.rtc_client import CaptionClient, load_pcm48

PORT = 8098
WARMUP_S = 4.0
MEASURE_S = 10.0


class InstantRecognizer:
    """Stands in for Whisper in part 1 only, so that the media path is measured alone."""

    name = "instant"

    def languages(self) -> frozenset[str]:
        return frozenset({"en"})

    def final_like_interim(self, audio_s: float) -> bool:
        return True

    def transcribe(self, requests: Sequence[DecodeRequest]) -> list[Transcript]:
        return [Transcript("") for _ in requests]


async def serve_media_path(port: int) -> None:
    from aiohttp import web

    from signaling.app import create_app

    settings = Settings.load().replace(max_speakers=1000, max_sessions=1000)
    scheduler = DecodeScheduler(InstantRecognizer())
    scheduler.start()
    session = load_session()
    stt = StreamAdapter(scheduler, lambda: SpeechSegmenter(SileroOnnx(session)), AdapterConfig())
    catalog = EngineCatalog(stt, translators=[], voices=[])
    app = create_app(settings, engines=Engines(catalog=catalog, scheduler=scheduler),
                     dev=True)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


async def measure_streams(n: int, speak: bool, audio: np.ndarray
                          ) -> tuple[float, float, float]:
    """Server CPU (% of one core), client CPU and server RSS (MB) with `n` inbound streams."""
    url = f"http://127.0.0.1:{PORT}"
    args = [sys.executable, __file__, "--serve", str(PORT)]
    with server_process(PORT, args=args) as proc:
        await wait_ready(url)
        async with aiohttp.ClientSession() as http:
            clients = [CaptionClient(url, http) for _ in range(n)]
            await asyncio.gather(*(c.start(audio, speak=speak) for c in clients))
            await asyncio.sleep(WARMUP_S)
            server_before, client_before = cpu_seconds(proc.pid), time.process_time()
            await asyncio.sleep(MEASURE_S)
            server_cpu = (cpu_seconds(proc.pid) - server_before) / MEASURE_S * 100
            client_cpu = (time.process_time() - client_before) / MEASURE_S * 100
            rss = rss_mb(proc.pid)
            await asyncio.gather(*(c.close() for c in clients))
    return server_cpu, client_cpu, rss


async def media_path(counts: list[int]) -> None:
    audio = np.tile(load_pcm48(JFK), 3)
    print("Part 1: server CPU (% of one core), speech in real time")
    print(f"{'streams':>8} {'bare aiortc':>12} {'media path':>11} {'added by us':>12}"
          f" {'added/bare':>11} {'streams/core bare|media':>24} {'server RSS':>11}"
          f" {'clients':>8}")
    for n in counts:
        bare, _, _ = await measure_streams(n, speak=False, audio=audio)
        media, client, rss = await measure_streams(n, speak=True, audio=audio)
        added = media - bare
        print(f"{n:>8} {bare:>11.1f}% {media:>10.1f}% {added:>11.1f}% {added / bare:>11.2f}"
              f" {100 * n / bare:>14.0f} | {100 * n / media:<7.0f} {rss:>8.0f} MB"
              f" {client:>7.0f}%")
    print("  added = resampling + VAD + stream adapter; added/bare <= 1 means our media path"
          " costs no more than aiortc's own receiving; clients = the sending process's CPU")


async def idle_participants(counts: list[int]) -> None:
    print("\nPart 3: server CPU (% of one core) with N speakers in a room saying nothing")
    print(f"{'speakers':>8} {'server CPU':>11} {'per speaker':>12}")
    url = f"http://127.0.0.1:{PORT}"
    silence = np.zeros(int((WARMUP_S + MEASURE_S + 5) * 48000), dtype=np.int16)
    for n in counts:
        with server_process(PORT) as proc:
            await wait_ready(url)
            async with aiohttp.ClientSession() as http:
                clients = [CaptionClient(url, http) for _ in range(n)]
                for number, client in enumerate(clients):
                    await client.start(silence, room="quiet", name=f"p{number}",
                                       target_lang="pt")
                await asyncio.sleep(WARMUP_S)
                before = cpu_seconds(proc.pid)
                await asyncio.sleep(MEASURE_S)
                server_cpu = (cpu_seconds(proc.pid) - before) / MEASURE_S * 100
                await asyncio.gather(*(c.close() for c in clients))
        print(f"{n:>8} {server_cpu:>10.1f}% {server_cpu / n:>11.1f}%")


async def recognition(counts: list[int]) -> None:
    settings = Settings.load()
    engines = await load_engines(settings)
    jfk16 = np.tile(load_pcm48(JFK, rate=16000), 2)
    print("\nPart 2: concurrent speakers on local Whisper (real time, jfk.flac twice each)")
    print(f"{'speakers':>8} {'final lag p50':>14} {'p95':>6} {'decoder busy':>13}"
          f" {'interims':>9} {'sustained':>10}")
    try:
        for n in counts:
            lags, interims, busy = await _speakers(engines, n, jfk16)
            p95 = percentile(lags, 95)
            print(f"{n:>8} {percentile(lags, 50):>13.2f}s {p95:>5.2f}s {busy:>12.0%}"
                  f" {interims:>9} {'yes' if p95 <= 1.5 else 'NO':>10}")
            if p95 > 3.0:
                break
    finally:
        await engines.close()


async def _speakers(engines: Engines, n: int, pcm: np.ndarray) -> tuple[list[float], int, float]:
    assert engines.scheduler is not None  # the local engines
    busy_before = engines.scheduler.stats.busy_seconds
    started = time.monotonic()
    lags: list[float] = []
    interims = 0

    async def speaker(offset_s: float) -> None:
        nonlocal interims
        await asyncio.sleep(offset_s)  # speakers do not all pause at the same instant
        stream = engines.catalog.stt.open_stream("en")
        t0 = time.monotonic()

        async def feed() -> None:
            for i in range(0, len(pcm), 320):
                stream.push(pcm[i : i + 320].tobytes())
                await asyncio.sleep(max(0.0, t0 + (i + 320) / 16000 - time.monotonic()))
            stream.end()

        feeder = asyncio.create_task(feed())
        async for event in stream:
            if event.kind is SpeechEventKind.FINAL and event.text:
                lags.append(time.monotonic() - (t0 + event.end_ms / 1000))
            elif event.kind is SpeechEventKind.INTERIM:
                interims += 1
        await feeder

    await asyncio.gather(*(speaker(i * 0.37) for i in range(n)))
    elapsed = time.monotonic() - started
    return lags, interims, (engines.scheduler.stats.busy_seconds - busy_before) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", default="1,5,10,20")
    parser.add_argument("--speakers", default="1,2,3,4,6,8")
    parser.add_argument("--idle", default="", help="idle speakers in a room, e.g. 1,4,8")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve_media_path(args.serve))
        return
    if args.streams:
        asyncio.run(media_path([int(n) for n in args.streams.split(",")]))
    if args.speakers:
        asyncio.run(recognition([int(n) for n in args.speakers.split(",")]))
    if args.idle:
        asyncio.run(idle_participants([int(n) for n in args.idle.split(",")]))


if __name__ == "__main__":
    main()
