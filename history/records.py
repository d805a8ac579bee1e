"""What the store keeps: final utterances with their translations, and sessions (who
took part in which room, when)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class UtteranceRecord:
    session_id: str
    utterance_id: str
    room: str
    speaker_id: str
    speaker: str
    lang: str
    text: str
    start_ms: int  # on the room's clock
    end_ms: int
    engine: str = ""  # the speech provider that recognised it
    created_at: float = 0.0  # epoch seconds
    translations: dict[str, str] = field(default_factory=dict)  # lang -> text

    def text_in(self, lang: str | None) -> str:
        """The text in `lang`: the original, a translation, else the original."""
        if lang is None or lang == self.lang:
            return self.text
        return self.translations.get(lang, self.text)


@dataclass(frozen=True)
class SessionDescription:
    """Who took part in which room, in which languages: what history keeps of a session
    and what a resumed session starts from."""

    session_id: str
    room: str
    participant_id: str
    name: str
    source_lang: str
    target_lang: str
    speak: bool
    kind: str = "webrtc"  # or "whip", "whep"
    meeting: str = ""  # which opening of the room (empty: before meetings were kept)


@dataclass(frozen=True)
class SessionRecord:
    """A session as it starts (`ended_at` None) and as it ends; the later write wins."""

    session: SessionDescription
    started_at: float  # epoch seconds
    ended_at: float | None = None


StoreRecord = UtteranceRecord | SessionRecord
Archiver = Callable[[StoreRecord], None]  # hands a record to the store, never waits


def keep_nothing(record: StoreRecord) -> None:
    """The archiver where no store is wanted."""


def record_to_json(record: StoreRecord) -> str:
    """One spool line, flat (as spools written by earlier releases are); `record` tells
    the record types apart."""
    if isinstance(record, SessionRecord):
        fields = {"record": "session", **asdict(record.session),
                  "started_at": record.started_at, "ended_at": record.ended_at}
    else:
        fields = {"record": "utterance", **asdict(record)}
    return json.dumps(fields, ensure_ascii=False)


def record_from_json(line: str) -> StoreRecord:
    data: dict[str, Any] = json.loads(line)
    # Earlier releases wrote `kind` for the record type, and a session's own `kind`
    # overwrote it: a session line is told by its start time.
    if data.pop("record", None) == "session" or "started_at" in data:
        return session_record(data)
    data.pop("kind", None)
    return UtteranceRecord(**data)


def session_record(fields: dict[str, Any]) -> SessionRecord:
    """A record from its flat fields (a spool line, a database row)."""
    started_at, ended_at = fields.pop("started_at"), fields.pop("ended_at", None)
    return SessionRecord(SessionDescription(**fields), started_at, ended_at)
