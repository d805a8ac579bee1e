"""Admission: a new call is refused when the recogniser is full; a speaker never is.

Everyone in a call may speak. A speaker costs recognition only while its voice is
heard (people take turns), so joining as one is bounded by sessions and room size,
and by `MAX_SPEAKERS` only where an operator sets that cap (`SpeakerSlots`; a slot is
taken with the offer, a session that never offers holds none). What the recogniser
bounds is calls (`NewRooms`): a new room is refused while the voices heard at once
across the rooms (each room's p95 over the last minutes) already fill the voices the
local recogniser carries, or while its finals already wait longer than
`max_final_wait_s`. Overload inside admitted calls thins interims instead
(`engines/stt/pacing.py`).
"""

from __future__ import annotations

from media_server.engines.stt.decode_scheduler import DecodeScheduler
from media_server.errors import Unavailable
from media_server.room import Rooms


class SpeakerSlots:
    """The operator's cap on speaking sessions; 0: none."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
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
        if self.cap and len(self._holders) >= self.cap:
            raise Unavailable(
                "stt_capacity",
                f"this server takes at most {self.cap} speaker"
                f"{'' if self.cap == 1 else 's'} at once (MAX_SPEAKERS); try again later")

    def release(self, session_id: str) -> None:
        self._holders.discard(session_id)


class NewRooms:
    """Whether the local recogniser has room for another call (a cloud recogniser costs
    this machine nothing per voice: no scheduler, no bound)."""

    def __init__(self, rooms: Rooms, scheduler: DecodeScheduler | None,
                 max_final_wait_s: float = 1.0) -> None:
        self._rooms = rooms
        self._scheduler = scheduler
        self._max_wait = max_final_wait_s

    def check(self) -> None:
        """Raise if a new room could not be opened now."""
        scheduler = self._scheduler
        if scheduler is None or scheduler.capacity is None:
            return
        heard = self._rooms.voices_heard()
        carried = scheduler.capacity.voices
        if heard >= carried:
            raise Unavailable(
                "stt_capacity",
                f"speech recognition is busy with other calls ({heard} of the {carried} "
                f"voice{'' if carried == 1 else 's'} at once it carries); try again later")
        if scheduler.final_backlog_s > self._max_wait:
            raise Unavailable(
                "stt_overloaded", "speech recognition is running behind; try again later")
