"""A token bucket: `per_s` sustained, `burst` at once. What paces a client's data-channel
messages and holds its audio to about real time."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, per_s: float, burst: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._per_s = per_s
        self._burst = burst
        self._clock = clock
        self._tokens = burst
        self._at = clock()

    def take(self, amount: float = 1.0) -> bool:
        """Whether `amount` may go now (and is counted), else False (nothing counted)."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._per_s)
        self._at = now
        if self._tokens < amount:
            return False
        self._tokens -= amount
        return True
