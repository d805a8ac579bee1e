"""A voice and a recogniser checked against each other: sentences spoken by a TTS
engine, re-transcribed by Whisper in the same language, scored by word error rate.
`tests/test_vietnamese.py` asserts on it; `bench/vietnamese.py` prints it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass

import jiwer
import numpy as np

from media_server.audio import STT_SAMPLE_RATE, pcm_to_float, resample_pcm
from media_server.engines.stt.base import BatchRecognizer, DecodeRequest
from media_server.engines.tts.base import TextToSpeech

VIETNAMESE_SENTENCES = [
    "Xin chào các bạn, hôm nay chúng ta họp về kế hoạch tuần tới.",
    "Tôi muốn đặt một bàn cho bốn người vào tối thứ bảy.",
    "Cuộc họp sẽ bắt đầu lúc chín giờ sáng.",
    "Cảm ơn bạn rất nhiều vì đã giúp đỡ tôi.",
    "Thời tiết hôm nay rất đẹp, trời nắng và không có mưa.",
    "Chúng ta cần hoàn thành báo cáo trước thứ sáu.",
    "Bạn có thể nói chậm hơn một chút được không?",
    "Giá vé máy bay đi Hà Nội tăng mạnh trong dịp Tết.",
    "Tôi là kỹ sư phần mềm và tôi sống ở thành phố Hồ Chí Minh.",
    "Xin lỗi, tôi không hiểu câu hỏi của bạn.",
]
ENGLISH_SENTENCES = [
    "Hello everyone, today we are meeting about next week's plan.",
    "I would like to book a table for four people on Saturday evening.",
    "The meeting will start at nine in the morning.",
    "Thank you very much for helping me.",
    "The weather is very nice today, it is sunny and there is no rain.",
    "We need to finish the report before Friday.",
    "Could you speak a little more slowly?",
    "Plane tickets to Hanoi go up sharply during the New Year holiday.",
    "I am a software engineer and I live in Ho Chi Minh City.",
    "Sorry, I do not understand your question.",
]


def _normalised(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


@dataclass(frozen=True)
class RoundTrip:
    said: str
    heard: str
    seconds: float  # of the voice's audio
    peak: float  # its loudest sample, 0-1

    @property
    def wer(self) -> float:
        return float(jiwer.wer(_normalised(self.said), _normalised(self.heard) or "∅"))


async def round_trip(voice: TextToSpeech, recognizer: BatchRecognizer, *,
                     sentences: Sequence[str], language: str) -> list[RoundTrip]:
    results = []
    for sentence in sentences:
        chunks = [chunk async for chunk in voice.synthesize(sentence, language)]
        pcm = b"".join(chunk.pcm for chunk in chunks)
        audio = pcm_to_float(resample_pcm(pcm, chunks[0].sample_rate, STT_SAMPLE_RATE))
        [heard] = await asyncio.to_thread(recognizer.transcribe,
                                          [DecodeRequest(audio, language, final=True)])
        results.append(RoundTrip(sentence, heard.text, len(audio) / STT_SAMPLE_RATE,
                                 float(np.abs(audio).max())))
    return results


def corpus_wer(results: Sequence[RoundTrip]) -> float:
    """Errors over all words said (long sentences weigh more)."""
    words = [len(_normalised(r.said).split()) for r in results]
    return sum(r.wer * n for r, n in zip(results, words, strict=True)) / sum(words)
