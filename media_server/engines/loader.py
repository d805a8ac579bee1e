"""The engines this process runs, chosen per kind by settings (`stt`, `translate`,
`tts`: providers in failover order). Only what is chosen is loaded: with Google
alone nothing local is, and the server starts in a moment."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from cache.translations import in_memory_cache
from media_server.engines.catalog import EngineCatalog
from media_server.engines.google_clients import GoogleClients, create_clients, find_credentials
from media_server.engines.health import Deadlines, HealthBoard
from media_server.engines.local import load_local_translators, load_local_voices, load_whisper
from media_server.engines.stt.base import SpeechToText
from media_server.engines.stt.calibration import Calibration
from media_server.engines.stt.decode_scheduler import DecodeScheduler
from media_server.engines.stt.fallback import FallbackSpeech
from media_server.engines.stt.google import GoogleSpeech, GoogleSpeechConfig
from media_server.engines.stt.whisper_files import check_whisper_dir
from media_server.engines.translate.base import Translator
from media_server.engines.translate.google import GoogleTranslator
from media_server.engines.translate.model_dir import ModelDir, read_model_dir
from media_server.engines.tts.base import TextToSpeech
from media_server.engines.tts.google import GoogleTts
from media_server.playout import RATE as PLAYOUT_RATE
from media_server.settings import Settings

log = logging.getLogger(__name__)
Closer = Callable[[], Awaitable[None]]


@dataclass
class Engines:
    catalog: EngineCatalog
    scheduler: DecodeScheduler | None = None  # local Whisper's decoder, when loaded
    calibration: Calibration | None = None  # what that decoder carries on this machine
    closers: list[Closer] = field(default_factory=list)

    @property
    def board(self) -> HealthBoard:
        return self.catalog.board

    async def close(self) -> None:
        """Probes first, then what loaded, last first; one that fails to close does not
        keep the others open."""
        for close in [self.board.close, *reversed(self.closers)]:
            try:
                await close()
            except Exception:
                log.exception("an engine did not close cleanly", extra={
                    "closer": getattr(close, "__qualname__", repr(close))})


def _stt_probe(provider: SpeechToText) -> Callable[[], Awaitable[None]]:
    """Open a stream, give it 200 ms of silence, and see it end cleanly."""
    async def probe() -> None:
        stream = provider.open_stream(min(provider.languages()))
        try:
            stream.push(bytes(6400))
            stream.end()
            async for _ in stream:
                pass
        finally:
            await stream.aclose()
    return probe


def check_model_dirs(settings: Settings) -> list[ModelDir]:
    """The model directories a user gave (translation, and Whisper's when it is chosen),
    checked in a moment, before anything loads: a broken one is a SettingsError naming
    the file at fault."""
    if "local" in settings.stt:
        every, own = settings.stt_models()
        for path in [every, *own.values()]:
            if path:
                check_whisper_dir(path)
    return [read_model_dir(entry) for entry in settings.translate_models]


async def load_engines(settings: Settings) -> Engines:
    started = time.monotonic()
    closers: list[Closer] = []
    try:
        engines = await _load(settings, closers)
    except BaseException:
        for close in reversed(closers):  # what did load is released
            await close()
        raise
    log.info("engines loaded", extra={
        "stt": settings.stt, "translate": settings.translate, "tts": settings.tts,
        "seconds": round(time.monotonic() - started, 2)})
    return engines


async def _load(settings: Settings, closers: list[Closer]) -> Engines:
    models = check_model_dirs(settings)  # before anything slow loads
    google: GoogleClients | None = None
    if settings.uses_google():
        google = create_clients(settings, find_credentials(settings))
        closers.append(google.close)
    speech, scheduler, calibration = await _recognisers(settings, google, closers=closers)
    translate_deadlines = Deadlines(*settings.deadlines("translate"))
    tts_deadlines = Deadlines(*settings.deadlines("tts"))
    translators = await _translators(settings, google, models=models, closers=closers,
                                     deadlines=translate_deadlines)
    # As many Piper workers as voices the recogniser carries at once (finals to speak).
    voices = await _voices(settings, google, closers=closers, deadlines=tts_deadlines,
                           voices_at_once=calibration.voices if calibration else 1)
    board = HealthBoard(settings.engine_probe_interval_s)
    stt = speech[0] if len(speech) == 1 else FallbackSpeech(
        [(s, board.register("stt", s.name, _stt_probe(s))) for s in speech])
    catalog = EngineCatalog(
        stt, translators, voices, board, in_memory_cache(settings.translation_cache_ttl_s),
        translate_deadlines=translate_deadlines, tts_deadlines=tts_deadlines)
    return Engines(catalog, scheduler, calibration, closers)


async def _recognisers(settings: Settings, google: GoogleClients | None, *, closers: list[Closer]
                       ) -> tuple[list[SpeechToText], DecodeScheduler | None,
                                  Calibration | None]:
    scheduler: DecodeScheduler | None = None
    calibration: Calibration | None = None
    speech: list[SpeechToText] = []
    for provider in settings.stt:
        if provider == "google":
            assert google is not None
            speech.append(GoogleSpeech(google.speech, google.project, location=google.location,
                                       config=GoogleSpeechConfig(
                                           model=settings.google_stt_model,
                                           endpointing=settings.google_stt_endpointing,
                                           restart_s=settings.google_stt_restart_s,
                                           max_stream_s=settings.google_stt_max_stream_s,
                                           retries=settings.google_stt_retries,
                                           stall_timeout_s=settings.google_stt_stall_timeout_s)))
        else:
            whisper, scheduler, calibration = await load_whisper(settings)
            closers.append(scheduler.close)
            speech.append(whisper)
    return speech, scheduler, calibration


async def _translators(settings: Settings, google: GoogleClients | None, *,
                       models: Sequence[ModelDir], closers: list[Closer],
                       deadlines: Deadlines) -> list[Translator]:
    translators: list[Translator] = []
    for provider in settings.translate:
        if provider == "google":
            assert google is not None
            translator = GoogleTranslator(google.translation, google.project,
                                          location=google.location,
                                          timeout_s=deadlines.attempt_s)
            await translator.load_languages()
            translators.append(translator)
        else:
            translators.extend(await load_local_translators(
                models, threads=settings.translate_model_threads, closers=closers))
    return translators


async def _voices(settings: Settings, google: GoogleClients | None, *, closers: list[Closer],
                  deadlines: Deadlines, voices_at_once: int) -> list[TextToSpeech]:
    voices: list[TextToSpeech] = []
    for provider in settings.tts:
        if provider == "google":
            assert google is not None
            overrides = dict(pair.split("=", 1) for pair in settings.google_voices)
            voice = GoogleTts(google.tts, overrides, sample_rate=PLAYOUT_RATE,
                              timeout_s=deadlines.attempt_s)
            await voice.load_voices()
            voices.append(voice)
        else:
            local_voices, piper = await load_local_voices(voices_at_once)
            closers.append(piper.close)
            voices.extend(local_voices)
    return voices
