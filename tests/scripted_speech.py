"""Recognition that answers at once, for tests and benchmarks about everything after
it (rooms, the store, resume): the real voice-activity detector cuts the audio into
utterances as usual, and each final gets a new sentence (never seen before, so never
a cache hit) instead of Whisper's transcript; interims get nothing."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from media_server.engines.catalog import EngineCatalog
from media_server.engines.loader import Engines
from media_server.engines.stt.base import DecodeRequest, Transcript
from media_server.engines.stt.decode_scheduler import DecodeScheduler
from media_server.engines.stt.stream_adapter import AdapterConfig, StreamAdapter
from media_server.engines.vad.segmenter import SpeechSegmenter
from media_server.engines.vad.silero_onnx import SileroOnnx, load_session


class ScriptedRecognizer:
    name = "scripted"

    def __init__(self, phrases: Sequence[str]) -> None:
        self._phrases = phrases
        self._count = itertools.count(1)

    def languages(self) -> frozenset[str]:
        return frozenset({"en"})

    def final_like_interim(self, audio_s: float) -> bool:
        return False  # finals get a sentence, interims nothing

    def transcribe(self, requests: Sequence[DecodeRequest]) -> list[Transcript]:
        return [Transcript(self._sentence() if r.final else "") for r in requests]

    def _sentence(self) -> str:
        n = next(self._count)
        return f"{self._phrases[n % len(self._phrases)].rstrip('.')}, item {n}."


def scripted_engines(real: Engines, phrases: Sequence[str], min_silence_ms: int = 300
                     ) -> Engines:
    """`real`'s translation and voices with scripted recognition; close it when done
    (it stops its own decoder, not `real`'s engines)."""
    scheduler = DecodeScheduler(ScriptedRecognizer(phrases))
    scheduler.start()
    session = load_session()
    stt = StreamAdapter(
        scheduler, lambda: SpeechSegmenter(SileroOnnx(session), min_silence_ms=min_silence_ms),
        AdapterConfig())
    known = real.catalog
    catalog = EngineCatalog(stt, known.translators, known.voices, cache=known.cache,
                            translate_deadlines=known.translate_deadlines,
                            tts_deadlines=known.tts_deadlines)
    return Engines(catalog, scheduler, closers=[scheduler.close])
