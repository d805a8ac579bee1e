"""Both Silero providers find the four phrases of jfk.flac, and nothing in silence."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from media_server.engines.vad.base import VadEventKind
from media_server.engines.vad.segmenter import SpeechModel, SpeechSegmenter
from media_server.engines.vad.silero import SileroGgml
from media_server.engines.vad.silero_onnx import SileroOnnx, load_session
from tests.conftest import JFK
from tests.rtc_client import load_pcm48

# Where the four phrases of jfk.flac are (ms), by ear and waveform. The breath after
# the last one is not speech.
PHRASES_MS = [(300, 2300), (3300, 4450), (5400, 7700), (8200, 10650)]
PROVIDERS: dict[str, Callable[[], SpeechModel]] = {
    "silero-onnx": lambda: SileroOnnx(load_session()),
    "silero-ggml": SileroGgml,
}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_segments_match_the_phrases(provider: str) -> None:
    pcm = np.concatenate([load_pcm48(JFK, rate=16000), np.zeros(8000, dtype=np.int16)])
    vad = SpeechSegmenter(PROVIDERS[provider]())
    events = [e for i in range(0, len(pcm), 320) for e in vad.feed(pcm[i:i + 320].tobytes())]
    starts = [e.sample // 16 for e in events if e.kind is VadEventKind.START]
    ends = [e.sample // 16 for e in events if e.kind is VadEventKind.END]
    assert len(starts) == len(ends) == len(PHRASES_MS), (starts, ends)
    for (start, end), (want_start, want_end) in zip(zip(starts, ends, strict=True),
                                                    PHRASES_MS, strict=True):
        assert abs(start - want_start) < 300 and abs(end - want_end) < 300, (start, end)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_silence_and_hum_are_not_speech(provider: str) -> None:
    t = np.arange(16000 * 3) / 16000
    hum = (3000 * np.sin(2 * np.pi * 120 * t)).astype(np.int16)  # -20 dBFS
    noise = np.random.default_rng(1).normal(0, 1000, 16000 * 3).astype(np.int16)  # -30 dBFS
    vad = SpeechSegmenter(PROVIDERS[provider]())
    pcm = np.concatenate([np.zeros(16000, dtype=np.int16), hum, noise])
    assert vad.feed(pcm.tobytes()) == []
