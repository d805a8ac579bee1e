"""How many of a room's participants speak at once, over the last minutes.

Admission reads it: a new room is refused while the rooms' voices at once (each
room's 95th percentile over `WINDOW_S`, time-weighted, added up) already fill what the
recogniser carries. Silence counts as it should: a room of four taking turns is one
voice most of the time, and a room that has just ended weighs nothing.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

WINDOW_S = 180.0
SHARE = 0.95  # the share of the window spent at or under the figure given


class VoiceMeter:
    def __init__(self, window_s: float = WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._window_s = window_s
        self._clock = clock
        self._speaking: set[str] = set()
        # (when, voices from then on), oldest first; the first may predate the window.
        self._levels: deque[tuple[float, int]] = deque([(clock(), 0)])

    @property
    def now(self) -> int:
        return len(self._speaking)

    def speaking(self, voice: str, on: bool) -> None:
        before = len(self._speaking)
        if on:
            self._speaking.add(voice)
        else:
            self._speaking.discard(voice)
        if len(self._speaking) != before:
            self._levels.append((self._clock(), len(self._speaking)))

    def voice(self, name: str) -> Voice:
        return Voice(self, name)

    def p95(self) -> int:
        """Voices at once, at the 95th percentile of the last `window_s` (or of the
        room's life, when shorter)."""
        now = self._clock()
        start = now - self._window_s
        while len(self._levels) > 1 and self._levels[1][0] <= start:
            self._levels.popleft()  # the level in force when the window opens stays
        seconds: dict[int, float] = {}
        bounds = [*[when for when, _ in self._levels][1:], now]
        for (when, level), until in zip(self._levels, bounds, strict=True):
            seconds[level] = seconds.get(level, 0.0) + until - max(when, start)
        total = sum(seconds.values())
        if total <= 0:
            return self.now
        covered = 0.0
        for level in sorted(seconds):
            covered += seconds[level]
            if covered >= SHARE * total:
                return level
        return max(seconds)


class Voice:
    """One participant's voice in a room's meter: the speech pipeline says when it is
    heard."""

    def __init__(self, meter: VoiceMeter, name: str) -> None:
        self._meter = meter
        self._name = name

    def speaking(self, on: bool) -> None:
        self._meter.speaking(self._name, on)
