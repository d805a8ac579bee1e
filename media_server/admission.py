"""Admission control for speakers: refuse a new speaker rather than slow everyone down.

Each speaker costs decode time; past what the machine sustains, latency for
every speaker would grow without bound. A speaker takes a slot with its offer (a
session that never offers holds none) for the rest of the session; none is given
past `capacity`, nor while finals already wait on the local decoder (when Whisper is
loaded) longer than `max_final_wait_s`. `check` says at creation whether one would be.
"""

from __future__ import annotations

from media_server.engines.stt.decode_scheduler import DecodeScheduler
from media_server.errors import Unavailable


class SpeakerSlots:
    def __init__(
        self, capacity: int, scheduler: DecodeScheduler | None, max_final_wait_s: float = 1.0
    ) -> None:
        self.capacity = capacity
        self._scheduler = scheduler
        self._max_wait = max_final_wait_s
        self._holders: set[str] = set()

    @property
    def in_use(self) -> int:
        return len(self._holders)

    def acquire(self, session_id: str) -> None:
        if session_id not in self._holders:
            self.check()
            self._holders.add(session_id)

    def check(self) -> None:
        """Raise if a slot could not be had now."""
        if len(self._holders) >= self.capacity:
            raise Unavailable(
                "stt_capacity",
                f"speech recognition is at capacity ({self.capacity} "
                f"speaker{'' if self.capacity == 1 else 's'}); try again later",
            )
        if self._scheduler is not None and self._scheduler.final_backlog_s > self._max_wait:
            raise Unavailable(
                "stt_overloaded", "speech recognition is running behind; try again later"
            )

    def release(self, session_id: str) -> None:
        self._holders.discard(session_id)
