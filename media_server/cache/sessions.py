"""What a session needs to be resumed: kept for a grace period after its connection
ends, taken (once) by the reconnecting browser. Same participant, same session id,
utterance numbering and the room's clock continue, so nothing is captioned or
stored twice."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from media_server.cache.base import KeyValue


@dataclass(frozen=True)
class SessionState:
    session_id: str
    room: str
    participant_id: str
    name: str
    source_lang: str
    target_lang: str
    speak: bool
    monitor: bool
    tts: bool
    stt_model: str
    utterances: int  # how many this session has said: the next is numbered after them
    room_clock_origin: float | None  # epoch seconds of the room clock's zero, once started
    owner: str = ""  # only the session's owner may resume it
    meeting: str = ""  # the room's meeting, which a resumed session continues


class SessionStates:
    def __init__(self, backend: KeyValue, grace_s: float) -> None:
        self._backend = backend
        self.grace_s = grace_s

    @staticmethod
    def _key(session_id: str) -> str:
        return f"session:{session_id}"

    async def keep(self, state: SessionState) -> None:
        await self._backend.set(self._key(state.session_id), json.dumps(asdict(state)),
                                self.grace_s)

    async def take(self, session_id: str) -> SessionState | None:
        """The state to resume from, once; None when unknown or past the grace period."""
        kept = await self._backend.take(self._key(session_id))
        return SessionState(**json.loads(kept)) if kept else None

    async def forget(self, session_id: str) -> None:
        await self._backend.delete(self._key(session_id))
