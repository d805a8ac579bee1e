"""Google Translation v3 and Text-to-Speech v1 through the real client libraries,
against the fake gRPC server on loopback."""

from __future__ import annotations

import asyncio
import time

import pytest

from cache.translations import in_memory_cache
from media_server.engines.google_clients import GoogleClients
from media_server.engines.translate.base import TranslationFailed
from media_server.engines.translate.cached import CachedTranslator
from media_server.engines.translate.google import GoogleTranslator
from media_server.engines.tts.base import PcmChunk, SynthesisFailed
from media_server.engines.tts.google import GoogleTts
from tests.google_fake import FakeGoogle
from tests.google_fake.tts import WORD_S


async def translator(clients: GoogleClients, timeout_s: float = 2.0) -> GoogleTranslator:
    google = GoogleTranslator(clients.translation, clients.project, location=clients.location,
                              timeout_s=timeout_s)
    await google.load_languages()
    return google


async def test_translates_with_the_configured_project_and_location(
        google_clients: GoogleClients, fake_google: FakeGoogle) -> None:
    google = await translator(google_clients)
    assert ("en", "vi") in google.pairs() and ("vi", "en") in google.pairs()
    assert ("en", "en") not in google.pairs()
    result = await google.translate(["Ask not.", "What you can do."], "en", "vi")
    assert result == ["[vi] Ask not.", "[vi] What you can do."]
    [request] = fake_google.translation.requests
    assert request.parent == "projects/test-project/locations/global"
    assert request.mime_type == "text/plain" and request.source_language_code == "en"
    assert list(request.contents) == ["Ask not.", "What you can do."]  # one call for both


async def test_transient_errors_are_retried_within_the_deadline(
        google_clients: GoogleClients, fake_google: FakeGoogle) -> None:
    google = await translator(google_clients)
    fake_google.translation.fail_next = 2
    assert await google.translate(["Hello."], "en", "pt") == ["[pt] Hello."]
    assert len(fake_google.translation.requests) == 3


async def test_an_outage_fails_within_the_deadline(
        google_clients: GoogleClients, fake_google: FakeGoogle) -> None:
    google = await translator(google_clients, timeout_s=1.0)
    fake_google.translation.down = True
    started = time.monotonic()
    with pytest.raises(TranslationFailed):
        await google.translate(["Hello."], "en", "pt")
    assert time.monotonic() - started < 2.0
    fake_google.translation.down, fake_google.translation.delay_s = False, 3.0
    started = time.monotonic()
    with pytest.raises(TranslationFailed, match=r"Deadline|deadline|Retry"):
        await google.translate(["Hello."], "en", "pt")
    assert time.monotonic() - started < 2.0


async def test_the_cache_saves_calls_and_targets_go_out_together(
        google_clients: GoogleClients, fake_google: FakeGoogle) -> None:
    cached = CachedTranslator(await translator(google_clients), in_memory_cache())
    fake_google.translation.delay_s = 0.3
    results = await asyncio.gather(*(cached.translate(["Ask not."], "en", target)
                                     for target in ("pt", "es", "vi", "fr")))
    assert fake_google.translation.most_in_flight == 4  # at once on the one channel
    assert [r[0] for r in results] == ["[pt] Ask not.", "[es] Ask not.", "[vi] Ask not.",
                                       "[fr] Ask not."]
    await cached.translate(["Ask  not."], "en", "pt")  # an interim and its final, say
    assert sum(fake_google.translation.calls.values()) == 4


async def voices(clients: GoogleClients, overrides: dict[str, str] | None = None) -> GoogleTts:
    tts = GoogleTts(clients.tts, overrides or {}, sample_rate=48000, timeout_s=2.0)
    await tts.load_voices()
    return tts


async def test_a_voice_per_language_the_best_family_by_default(
        google_clients: GoogleClients) -> None:
    tts = await voices(google_clients)
    assert tts.voices() == {"en": "en-US-Chirp3-HD-Charon", "es": "es-ES-Chirp3-HD-Charon",
                            "pt": "pt-BR-Wavenet-A", "vi": "vi-VN-Standard-A"}
    overridden = await voices(google_clients, {"pt": "pt-PT-Chirp3-HD-Kore"})
    assert overridden.voices()["pt"] == "pt-PT-Chirp3-HD-Kore"


async def test_unary_synthesis_is_linear16_at_the_track_rate_without_header(
        google_clients: GoogleClients, fake_google: FakeGoogle) -> None:
    tts = await voices(google_clients)
    chunks = [c async for c in tts.synthesize("Pergunte o que pode fazer.", "pt")]
    assert [c.sample_rate for c in chunks] == [48000]
    assert not chunks[0].pcm.startswith(b"RIFF")
    assert len(chunks[0].pcm) == int(5 * WORD_S * 48000) * 2  # exactly the samples sent
    assert fake_google.tts.calls == {"SynthesizeSpeech": 1}


async def test_streaming_voices_give_the_first_audio_before_the_whole_sentence(
        google_clients: GoogleClients, fake_google: FakeGoogle) -> None:
    tts = await voices(google_clients)
    text = "And so my fellow Americans ask not what your country can do for you"
    started = time.monotonic()
    arrivals: list[tuple[float, PcmChunk]] = []
    async for chunk in tts.synthesize(text, "en"):
        arrivals.append((time.monotonic() - started, chunk))
    first, total = arrivals[0][0], arrivals[-1][0]
    assert fake_google.tts.calls == {"StreamingSynthesize": 1}
    assert len(arrivals) > 5 and first < total / 4, (first, total)
    assert {c.sample_rate for _, c in arrivals} == {24000}
    pcm = b"".join(c.pcm for _, c in arrivals)
    assert len(pcm) == int(len(text.split()) * WORD_S * 24000) * 2


async def test_synthesis_errors_are_clear(
        google_clients: GoogleClients, fake_google: FakeGoogle) -> None:
    tts = await voices(google_clients, {"de": "de-DE-Nonexistent"})
    with pytest.raises(SynthesisFailed, match=r"InvalidArgument|INVALID_ARGUMENT"):
        [c async for c in tts.synthesize("Hallo.", "de")]
    fake_google.tts.down = True
    with pytest.raises(SynthesisFailed, match=r"Unavailable|UNAVAILABLE"):
        [c async for c in tts.synthesize("Hello.", "en")]
