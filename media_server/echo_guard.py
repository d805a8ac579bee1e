"""Is what a participant's mic picked up our own spoken translation coming back?

A participant who hears the interpretation through loudspeakers feeds it into their
mic (always so when one person uses it as a personal interpreter). Browsers' echo
cancellation removes most of it, not all; Whisper then "hears" the translation and
even translates it back into the original, and the loop repeats forever.

The server knows exactly what it played and when. For each recognised stretch of
mic audio, the guard compares the mic's loudness envelope with the playout's,
shifted by every plausible echo delay: echo follows the playout's rhythm
(correlation near 1), a person speaking over it does not. Muting recognition
during playout would also stop the loop, but it loses everything the speaker says
while the translation plays, which in live interpretation is most of the time.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from difflib import SequenceMatcher

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from media_server.words import words

FRAME_MS = 20
MAX_DELAY_S = 1.5  # loudspeaker + mic + network round trip + jitter buffers
CORRELATION = 0.8  # measured: echo 0.90-0.96, a person speaking over the playout 0.1-0.6
# Lower, when the text is also the sentence a clip playing then was translated from:
# Whisper heard our clip, so the echo is at least as loud as anything else in the mic.
# Over 200 synthetic envelopes (tests/test_echo_guard.py), echo mixed half and half
# with other speech correlates at 0.48-0.79 (5th-95th percentile), a person alone at
# 0.18-0.50: 0.5 catches ~93 % of such muddled echo and drops ~6 % of the rare
# person who repeats, word for word, the sentence whose translation is playing.
CORRELATION_WITH_TEXT = 0.5
MIN_TEXT_WORDS = 3  # shorter ("yes", "okay") is too easily said again
# How alike, word for word in order, the heard text and that sentence must be. Order
# matters: speakers reuse words ("what your country can do for you / what you can
# do for your country") but do not repeat the sentence just said.
SAME_TEXT = 0.8
MAX_RUN = 8  # clips of one sentence, in simultaneous interpretation
MIN_PLAYING = 0.3  # share of the stretch during which something was playing
MIN_FRAMES = 25  # 500 ms: shorter envelopes can correlate by chance
# A shorter stretch (a word: a short chunk of ours coming back) is judged only where
# echo was heard before, at its delay (give or take `DELAY_SLACK_S`), together with the
# mic audio before it, this much in all (80 % of it heard). Rhythmic speech over
# rhythmic playout can follow it at some delay; at the echo path's own, it does not.
SHORT_CONTEXT_MS = 2500
DELAY_SLACK_S = 0.1
HISTORY_FRAMES = 3000  # 60 s
SMOOTH_FRAMES = 5
_FLOOR = 1e-4


class EchoGuard:
    def __init__(self, enabled: Callable[[], bool]) -> None:
        self._enabled = enabled
        self._played: deque[tuple[float, float]] = deque(maxlen=HISTORY_FRAMES)
        self._heard: deque[tuple[int, float, float]] = deque(maxlen=HISTORY_FRAMES)
        # (start, end) wall time of each clip played, and the sentence it translates.
        self._clips: deque[tuple[float, float, str]] = deque(maxlen=32)
        self.last_correlation: float | None = None  # of the last stretch judged
        self.last_delay_s: float | None = None  # the echo delay that fitted best
        self._echo_delay_s: float | None = None  # of the last stretch surely echo

    def played(self, pcm: bytes) -> None:
        """A frame of playout goes out now."""
        self._played.append((time.monotonic(), _rms(pcm)))

    def clip_started(self, duration_s: float, source_text: str) -> None:
        now = time.monotonic()
        self._clips.append((now, now + duration_s, source_text))

    def clip_grew(self, duration_s: float) -> None:
        """The clip playing (the last started) is `duration_s` long after all."""
        if self._clips:
            start, _, source_text = self._clips[-1]
            self._clips[-1] = (start, start + duration_s, source_text)

    def heard(self, audio_ms: int, pcm: bytes) -> None:
        """A frame of mic audio starting at `audio_ms` (session time) arrived now."""
        self._heard.append((audio_ms, time.monotonic(), _rms(pcm)))

    def is_echo(self, start_ms: int, end_ms: int, text: str = "") -> bool:
        self.last_correlation = self.last_delay_s = None
        if not self._enabled() or len(self._played) < MIN_FRAMES:
            return False
        short = end_ms - start_ms < MIN_FRAMES * FRAME_MS
        if short:
            if self._echo_delay_s is None:
                return False
            start_ms = end_ms - SHORT_CONTEXT_MS
            delays = np.arange(max(0.0, self._echo_delay_s - DELAY_SLACK_S),
                               self._echo_delay_s + DELAY_SLACK_S + 1e-6, FRAME_MS / 1000)
        else:
            delays = np.arange(0.0, MAX_DELAY_S, FRAME_MS / 1000)
        mic = [(t, rms) for ms, t, rms in self._heard if start_ms <= ms < end_ms]
        if len(mic) < (SHORT_CONTEXT_MS * 4 // 5 // FRAME_MS if short else MIN_FRAMES):
            return False
        mic_t = np.array([t for t, _ in mic])
        best = self._best_fit(mic_t, np.array([rms for _, rms in mic]), delays)
        if short:
            return best >= CORRELATION
        if best >= CORRELATION:
            self._echo_delay_s = self.last_delay_s  # the echo path, heard for sure
            return True
        return (best >= CORRELATION_WITH_TEXT
                and self._repeats_a_clip(text, mic_t[0], mic_t[-1]))

    def _best_fit(self, mic_t: np.ndarray, mic_rms: np.ndarray, delays: np.ndarray) -> float:
        """The mic envelope's best correlation with the playout's shifted by one of
        `delays` (kept in `last_correlation`, the delay in `last_delay_s`). All delays
        at once, one row each: this runs for every recognised stretch of every mic."""
        mic_level = _centred(_smooth(np.log(mic_rms + _FLOOR)))
        played_t = np.fromiter((t for t, _ in self._played), float, len(self._played))
        played_rms = np.fromiter((rms for _, rms in self._played), float, len(self._played))
        index = np.searchsorted(played_t, mic_t[np.newaxis, :] - delays[:, np.newaxis]) - 1
        expected = np.where(index >= 0, played_rms[np.clip(index, 0, None)], 0.0)
        level = _centred(_smooth(np.log(expected + _FLOOR)))
        spread = np.sqrt((level * level).sum(axis=1) * (mic_level * mic_level).sum())
        usable = (np.mean(expected > 0.005, axis=1) >= MIN_PLAYING) & (spread > 0)
        best = -1.0
        if usable.any():
            correlation = np.full(len(delays), -np.inf)
            correlation[usable] = (level[usable] @ mic_level) / spread[usable]
            row = int(np.argmax(correlation))
            best, self.last_delay_s = float(correlation[row]), float(delays[row])
        self.last_correlation = best
        return best

    def _repeats_a_clip(self, text: str, start: float, end: float) -> bool:
        """Whisper often turns our translated clip back into the sentence it came from.
        In simultaneous interpretation a sentence is spoken in several clips (chunks),
        and what comes back of its last ones may be heard as all of it: the sentence
        heard is compared with every run of consecutive clips (up to `MAX_RUN`) that
        has one playing then, as well as with each alone."""
        heard = words(text)
        if len(heard) < MIN_TEXT_WORDS:
            return False
        clips = list(self._clips)
        playing = [clip_start < end and start < clip_end + MAX_DELAY_S
                   for clip_start, clip_end, _ in clips]
        for first in range(len(clips)):
            run: list[str] = []
            for last in range(first, min(first + MAX_RUN, len(clips))):
                run += words(clips[last][2])
                if (any(playing[first:last + 1])
                        and SequenceMatcher(None, heard, run).ratio() >= SAME_TEXT):
                    return True
        return False


def _smooth(levels: np.ndarray) -> np.ndarray:
    """A 100 ms moving average along the last axis (zeros beyond the ends): jitter and
    a sender catching up after a stall shift the echo by a few frames."""
    half = SMOOTH_FRAMES // 2
    padded = np.pad(levels, [(0, 0)] * (levels.ndim - 1) + [(half, half)])
    smoothed: np.ndarray = sliding_window_view(padded, SMOOTH_FRAMES, axis=-1).mean(axis=-1)
    return smoothed


def _centred(levels: np.ndarray) -> np.ndarray:
    centred: np.ndarray = levels - levels.mean(axis=-1, keepdims=True)
    return centred


def _rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    return float(np.sqrt(samples @ samples / len(samples))) / 32768.0 if len(samples) else 0.0
