"""The embedded, offline engine set: Silero VAD + Whisper base behind the stream adapter."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from media_server.engines.decode_scheduler import DecodeScheduler
from media_server.engines.stream_adapter import AdapterConfig, StreamAdapter
from media_server.engines.stt.whisper import WhisperRecognizer
from media_server.engines.stt.whisper_files import whisper_base_dir
from media_server.engines.vad.segmenter import SpeechModel, SpeechSegmenter
from media_server.engines.vad.silero import SileroGgml
from media_server.engines.vad.silero_onnx import SileroOnnx, load_session
from media_server.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Engines:
    stt: StreamAdapter
    scheduler: DecodeScheduler

    async def close(self) -> None:
        await self.scheduler.close()


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
    log.info("engines loaded", extra={"stt": stt.name,
                                      "seconds": round(time.monotonic() - started, 2)})
    return Engines(stt=stt, scheduler=scheduler)
