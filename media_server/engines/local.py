"""The embedded, offline engine set: Silero VAD + Whisper base behind the stream adapter."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from media_server.cache.memory import MemoryCache
from media_server.engines.catalog import EngineCatalog
from media_server.engines.decode_scheduler import DecodeScheduler
from media_server.engines.stream_adapter import AdapterConfig, StreamAdapter
from media_server.engines.stt.whisper import WhisperRecognizer
from media_server.engines.stt.whisper_files import whisper_base_dir
from media_server.engines.translate.apertium import Apertium
from media_server.engines.translate.base import Translator
from media_server.engines.translate.cached import CachedTranslator
from media_server.engines.translate.fast_translate import FastTranslate
from media_server.engines.tts.base import TextToSpeech
from media_server.engines.tts.espeak import EspeakTts
from media_server.engines.tts.piper import PiperTts
from media_server.engines.vad.segmenter import SpeechModel, SpeechSegmenter
from media_server.engines.vad.silero import SileroGgml
from media_server.engines.vad.silero_onnx import SileroOnnx, load_session
from media_server.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Engines:
    stt: StreamAdapter
    scheduler: DecodeScheduler
    catalog: EngineCatalog
    piper: PiperTts | None = None

    async def close(self) -> None:
        await self.scheduler.close()
        if self.piper is not None:
            await self.piper.close()


def _speech_model_factory(provider: str) -> Callable[[], SpeechModel]:
    if provider == "silero-onnx":
        session = load_session()
        return lambda: SileroOnnx(session)
    if provider == "silero-ggml":
        return SileroGgml
    raise ValueError(f"unknown VAD provider {provider!r}")


async def load_local_engines(settings: Settings) -> Engines:
    """Load the models off the event loop (joining the packaged weights on first run)."""
    started = time.monotonic()

    def load() -> WhisperRecognizer:
        model_dir = settings.stt_model_dir or whisper_base_dir(settings.data_dir)
        return WhisperRecognizer(model_dir, settings.stt_threads, settings.stt_beam_size)

    recognizer = await asyncio.to_thread(load)
    speech_model = await asyncio.to_thread(_speech_model_factory, settings.vad_provider)
    scheduler = DecodeScheduler(recognizer, settings.stt_batch_size)
    scheduler.start()
    config = AdapterConfig(
        interim_interval_ms=settings.stt_interim_interval_ms,
        max_utterance_ms=settings.stt_max_utterance_ms,
        speech_pad_ms=settings.vad_speech_pad_ms,
    )
    stt = StreamAdapter(
        scheduler,
        lambda: SpeechSegmenter(speech_model(), settings.vad_threshold,
                                settings.vad_min_silence_ms),
        config,
    )
    cache = MemoryCache(settings.translation_cache_ttl_s)
    translators: list[Translator] = []
    fast = FastTranslate()
    await asyncio.to_thread(fast.warm_up)
    translators.append(CachedTranslator(fast, cache))
    voices: list[TextToSpeech] = []
    piper = PiperTts()
    await piper.start()
    voices.append(piper)
    # Debian-packaged engines: the server runs without them, and says so.
    try:
        translators.append(CachedTranslator(await asyncio.to_thread(Apertium), cache))
    except FileNotFoundError as exc:
        log.warning("engine not available", extra={"reason": str(exc)})
    try:
        voices.append(await asyncio.to_thread(EspeakTts))
    except FileNotFoundError as exc:
        log.warning("engine not available", extra={"reason": str(exc)})
    catalog = EngineCatalog(stt.languages(), translators, voices)
    log.info("engines loaded", extra={
        "stt": stt.name, "pairs": len(catalog.pairs()), "voices": len(catalog.describe()["voices"]),
        "seconds": round(time.monotonic() - started, 2)})
    return Engines(stt=stt, scheduler=scheduler, catalog=catalog, piper=piper)
