"""What a session needs to be resumed: kept for a grace period after its connection
ends, taken (once) by the reconnecting browser. Same participant, same session id,
utterance numbering and the room's clock continue, so nothing is captioned or
stored twice."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass

from cache.base import KeyValue
from history.records import SessionDescription

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResumeState:
    session: SessionDescription
    monitor: bool
    tts: bool
    stt_model: str
    utterances: int  # how many this session has said: the next is numbered after them
    room_clock_origin: float | None  # epoch seconds of the room clock's zero, once started
    owner: str = ""  # only the session's owner may resume it
    interpretation: str = ""  # simultaneous or consecutive; empty: the server's default


class ResumableSessions:
    def __init__(self, backend: KeyValue, grace_s: float) -> None:
        self._backend = backend
        self.grace_s = grace_s

    @staticmethod
    def _key(session_id: str) -> str:
        return f"session:{session_id}"

    async def keep(self, state: ResumeState) -> None:
        await self._backend.set(self._key(state.session.session_id),
                                json.dumps(asdict(state)), self.grace_s)

    async def take(self, session_id: str) -> ResumeState | None:
        """The state to resume from, once; None when unknown or past the grace period."""
        kept = await self._backend.take(self._key(session_id))
        if not kept:
            return None
        fields = json.loads(kept)
        try:
            return ResumeState(**{**fields, "session": SessionDescription(**fields["session"])})
        except (KeyError, TypeError):  # kept by an earlier release, in another shape
            log.warning("a kept session could not be read; it cannot be resumed",
                        extra={"session_id": session_id})
            return None

    async def forget(self, session_id: str) -> None:
        await self._backend.delete(self._key(session_id))
