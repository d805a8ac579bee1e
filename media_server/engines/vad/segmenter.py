"""Speech probabilities per 32 ms chunk -> START / PAUSE / RESUME / END events.

Shared by every VAD provider: a provider only says how likely a chunk is speech;
chunking, an energy gate and the hysteresis live here, once.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from media_server.audio import ms_to_samples
from media_server.engines.vad.base import VadEvent, VadEventKind

CHUNK_SAMPLES = 512  # 32 ms at 16 kHz: the window Silero v5+ takes
CHUNK_BYTES = CHUNK_SAMPLES * 2
# Below this RMS (about -60 dBFS) a chunk is silence for certain: the model is skipped.
SILENCE_RMS = 0.001
# Speech must fall this far below the start threshold to count as stopped.
HYSTERESIS = 0.15
# Speech must last this many chunks (96 ms) to open an utterance: a click or a
# breath does not.
MIN_SPEECH_CHUNKS = 3


class SpeechModel(Protocol):
    """One stream's speech-probability model (stateful: chunks arrive in order)."""

    default_threshold: float  # the start threshold this model is calibrated for

    def probability(self, chunk: np.ndarray) -> float:
        """`chunk`: CHUNK_SAMPLES float32 samples in [-1, 1]."""

    def reset(self) -> None:
        """Forget the audio so far (the energy gate skipped chunks: the state is stale)."""


class SpeechSegmenter:
    """START at the first speech chunk, PAUSE at the first quiet one, END once the
    quiet lasted `min_silence_ms`, RESUME if speech returns before that."""

    def __init__(self, model: SpeechModel, threshold: float | None = None,
                 min_silence_ms: int = 300) -> None:
        self._model = model
        self._threshold = threshold or model.default_threshold
        self._min_silence = ms_to_samples(min_silence_ms)
        self._pending = bytearray()
        self._position = 0  # samples consumed into chunks so far
        self._in_speech = False
        self._onset: int | None = None  # first chunk of speech not yet long enough
        self._onset_chunks = 0
        self._pause_at: int | None = None
        self._gated = True  # the model has seen nothing since its last reset

    def feed(self, pcm: bytes) -> list[VadEvent]:
        self._pending += pcm
        events: list[VadEvent] = []
        while len(self._pending) >= CHUNK_BYTES:
            chunk = bytes(self._pending[:CHUNK_BYTES])  # a copy: the buffer shrinks next
            del self._pending[:CHUNK_BYTES]
            samples = np.frombuffer(chunk, dtype="<i2").astype(np.float32) / 32768.0
            start = self._position
            self._position += CHUNK_SAMPLES
            events.extend(self._step(self._probability(samples), start))
        return events

    def _probability(self, samples: np.ndarray) -> float:
        if float(np.sqrt(np.mean(samples * samples))) < SILENCE_RMS:
            if not self._gated:
                self._model.reset()  # what a run of silence would converge to
                self._gated = True
            return 0.0
        self._gated = False
        return self._model.probability(samples)

    def _step(self, prob: float, chunk_start: int) -> list[VadEvent]:
        if not self._in_speech:
            return self._step_onset(prob, chunk_start)
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

    def _step_onset(self, prob: float, chunk_start: int) -> list[VadEvent]:
        if self._onset is None:
            if prob >= self._threshold:
                self._onset, self._onset_chunks = chunk_start, 1
            return []
        if prob < self._threshold - HYSTERESIS:
            self._onset = None  # too short to be speech
            return []
        self._onset_chunks += 1
        if self._onset_chunks < MIN_SPEECH_CHUNKS:
            return []
        start, self._onset, self._in_speech = self._onset, None, True
        return [VadEvent(VadEventKind.START, start)]
