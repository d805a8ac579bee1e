"""Is espeak-ng's Vietnamese voice worth offering, and how well does the packaged
Whisper base hear Vietnamese? Ten everyday sentences are spoken by the voice and
re-transcribed by Whisper in `vi` the way the server decodes a final; the same
sentences in English, spoken by espeak-ng's English voice and heard in `en`, are the
baseline (one robotic voice, one recogniser). Prints each sentence's word error rate
and the corpus WER of both.

    .venv/bin/python bench/vietnamese.py
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from media_server.engines.stt.whisper import WhisperRecognizer
from media_server.engines.stt.whisper_files import whisper_base_dir
from media_server.engines.tts.espeak import EspeakTts
from media_server.settings import Settings
from tests.round_trip import (
    ENGLISH_SENTENCES,
    VIETNAMESE_SENTENCES,
    corpus_wer,
    round_trip,
)


async def main() -> None:
    voice = EspeakTts()
    recognizer = await asyncio.to_thread(WhisperRecognizer, whisper_base_dir(Settings().data_dir))
    for language, sentences in (("vi", VIETNAMESE_SENTENCES), ("en", ENGLISH_SENTENCES)):
        results = await round_trip(voice, recognizer, sentences=sentences,
                                   language=language)
        print(f"\nespeak-ng {voice.voices()[language]} -> Whisper base ({language})")
        for result in results:
            print(f"  WER {result.wer:4.0%}  {result.seconds:4.1f} s  {result.said}\n"
                  f"                   heard: {result.heard}")
        print(f"  corpus WER {corpus_wer(results):.1%}")


if __name__ == "__main__":
    asyncio.run(main())
