"""Rooms: everyone in a room reads and hears everyone else, each in their own language.

A room holds its participants, a clock that caption offsets of all its speakers
share (0 = the room's first audio), and the room's spoken-translation output.
Captions fan out here: every participant gets each caption in the language they
read (the original when that is their language or its translation failed).
Joining, leaving and language changes are announced to everyone in the room.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable

from history.records import Archiver, keep_nothing
from media_server.engines.catalog import EngineCatalog
from media_server.errors import Conflict, NotFound
from media_server.participant import Participant
from media_server.protocol import CaptionMessage, ParticipantMessage, ServerMessage
from media_server.speech_output import SpeechOutput
from media_server.voice_meter import VoiceMeter

log = logging.getLogger(__name__)

# Plain ASCII (no look-alike of another room's name), not "." or ".." (no path).
ROOM_NAME = re.compile(r"(?!\.\.?$)[A-Za-z0-9._-]{1,64}", re.ASCII)

# Hands a room's caption (with its translations) to consumers elsewhere; never waits.
Publisher = Callable[[str, CaptionMessage, dict[str, str]], None]


def publish_nothing(room: str, caption: CaptionMessage, translations: dict[str, str]) -> None:
    """The publisher where nobody consumes captions outside the room."""


class Room:
    def __init__(self, name: str, catalog: EngineCatalog,
                 *, archive: Archiver = keep_nothing, publish: Publisher = publish_nothing) -> None:
        self.name = name
        self.archive = archive  # finals with their translations go to the store
        self._publish = publish
        self._participants: dict[str, Participant] = {}
        self.speech = SpeechOutput(catalog, self.participants)
        self.voices = VoiceMeter()  # how many of its participants speak at once
        self._t0: float | None = None
        # Each time a room opens it is a new meeting: its transcript is its own, and a
        # token may be limited to reading it.
        self.meeting = secrets.token_urlsafe(9)
        self._continued = False

    def __len__(self) -> int:
        return len(self._participants)

    def participants(self) -> list[Participant]:
        return list(self._participants.values())

    # -- the room's clock -------------------------------------------------------------

    def clock_ms(self) -> int:
        """Milliseconds since the room's first audio (the first call starts the clock)."""
        if self._t0 is None:
            self._t0 = time.monotonic()
        return round((time.monotonic() - self._t0) * 1000)

    def clock_origin(self) -> float | None:
        """The epoch time of the clock's zero; None before the room's first audio."""
        if self._t0 is None:
            return None
        return time.time() - (time.monotonic() - self._t0)

    def continue_clock(self, origin: float) -> None:
        """Go on with a clock started earlier: a room opened again by a resumed session
        keeps one timeline for its captions and transcript."""
        if self._t0 is None:
            self._t0 = time.monotonic() - (time.time() - origin)

    def continue_meeting(self, meeting: str) -> None:
        """A room opened again by a resumed session is the meeting it left."""
        if not self._participants and not self._continued:
            self.meeting, self._continued = meeting, True

    def wall_time(self, room_ms: int) -> float:
        """The monotonic time of a point on the room's clock."""
        if self._t0 is None:
            self._t0 = time.monotonic()
        return self._t0 + room_ms / 1000

    # -- membership ---------------------------------------------------------------------

    def join(self, newcomer: Participant) -> None:
        self._participants[newcomer.id] = newcomer
        for participant in self._participants.values():
            newcomer.send(ParticipantMessage("present", participant.describe()))
        self._announce(ParticipantMessage("joined", newcomer.describe()), newcomer)
        log.info("joined room", extra={"room": self.name, "participant": newcomer.id,
                                       "participants": len(self)})

    def leave(self, participant: Participant) -> None:
        if self._participants.pop(participant.id, None) is None:
            return
        self._announce(ParticipantMessage("left", participant.describe()), participant)
        log.info("left room", extra={"room": self.name, "participant": participant.id,
                                     "participants": len(self)})

    def changed(self, participant: Participant) -> None:
        self._announce(ParticipantMessage("changed", participant.describe()))

    def _announce(self, message: ServerMessage, subject: Participant | None = None) -> None:
        for participant in self._participants.values():
            if participant is not subject:
                participant.send(message)

    # -- captions ---------------------------------------------------------------------

    def target_languages(self) -> set[str]:
        return {p.target_lang for p in self._participants.values()}

    def broadcast(self, original: CaptionMessage | None,
                  translated: dict[str, CaptionMessage]) -> None:
        """Each participant gets the version in their language: a translation from
        `translated`, else the original (None: only readers of those languages get one)."""
        for participant in self._participants.values():
            caption = translated.get(participant.target_lang, original)
            if caption is not None:
                participant.send(caption)
        if original is not None:
            self._publish(self.name, original, {lang: c.translation.text
                                                for lang, c in translated.items()
                                                if c.translation is not None})

    def tell_readers_of(self, lang: str, message: ServerMessage) -> None:
        for participant in self._participants.values():
            if participant.target_lang == lang:
                participant.send(message)

    async def aclose(self) -> None:
        await self.speech.aclose()


class Rooms:
    """The rooms of this process. A room exists while someone is in it."""

    def __init__(self, catalog: EngineCatalog, capacity: int,
                 *, archive: Archiver = keep_nothing, publish: Publisher = publish_nothing) -> None:
        self._catalog = catalog
        self._archive = archive
        self._publish = publish
        self.capacity = capacity
        self._rooms: dict[str, Room] = {}

    def __len__(self) -> int:
        return len(self._rooms)

    def names(self) -> list[str]:
        return list(self._rooms)

    def voices_heard(self) -> int:
        """Voices at once across the rooms: each room's p95 over the last minutes."""
        return sum(room.voices.p95() for room in self._rooms.values())

    def get(self, name: str) -> Room:
        room = self._rooms.get(name)
        if room is None:
            raise NotFound("unknown_room", "no such room (nobody is in it)")
        return room

    def admit(self, name: str) -> Room:
        """The room to join (a new one if nobody is in it), if it has space. Nothing is
        kept until `join`, so a refused or failed join leaves nothing behind."""
        room = self._rooms.get(name) or Room(name, self._catalog, archive=self._archive,
                                             publish=self._publish)
        if len(room) >= self.capacity:
            raise Conflict("room_full", f"room {name!r} is full ({self.capacity} participants)")
        return room

    def join(self, room: Room, participant: Participant) -> None:
        self._rooms.setdefault(room.name, room).join(participant)

    async def leave(self, room: Room, participant: Participant) -> None:
        room.leave(participant)
        if not len(room) and self._rooms.get(room.name) is room:
            del self._rooms[room.name]
            await room.aclose()
