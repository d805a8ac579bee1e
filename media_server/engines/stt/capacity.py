"""Voices at once, re-estimated from the passes the decoder actually makes.

The start-up calibration seeds the figure; each pass of a single request (one voice's
final or interim, decoded alone: what one voice costs) moves the smoothed pass time of
its kind, and the figure follows by the calibration's own formula. A start beside a
busy process does not fix a low figure for the life of the process, nor an idle start
a high one: within a minute of speech the figure is what the machine does now.
Batched passes are left out: several voices share them, which says little of one.
"""

from __future__ import annotations

import logging

from media_server.engines.stt.calibration import Calibration, capacity
from media_server.metrics import STT_CAPACITY_VOICES

log = logging.getLogger(__name__)

# Weight of the latest pass: about twenty passes (a minute of speech) make the estimate.
SMOOTHING = 0.1


class VoiceCapacity:
    def __init__(self, seed: Calibration, interim_interval_ms: int) -> None:
        self._phrase_s = seed.phrase_s
        self._interval_ms = interim_interval_ms  # as configured: the calibration's input
        self.final_pass_s = seed.final_pass_s
        self.interim_pass_s = seed.interim_pass_s
        self.voices = seed.voices
        STT_CAPACITY_VOICES.set(self.voices)

    def observe(self, *, final: bool, elapsed_s: float) -> None:
        """One request decoded alone in `elapsed_s`."""
        if final:
            self.final_pass_s += SMOOTHING * (elapsed_s - self.final_pass_s)
        else:
            self.interim_pass_s += SMOOTHING * (elapsed_s - self.interim_pass_s)
        voices = capacity(self._phrase_s, self.final_pass_s, interim_s=self.interim_pass_s,
                          interim_interval_ms=self._interval_ms).voices
        if voices != self.voices:
            log.info("voices at once re-estimated", extra={
                "voices": voices, "was": self.voices,
                "final_pass_s": round(self.final_pass_s, 3),
                "interim_pass_s": round(self.interim_pass_s, 3)})
            self.voices = voices
            STT_CAPACITY_VOICES.set(voices)
