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
class SessionRecord:
    """A session as it starts (`ended_at` None) and as it ends; the later write wins."""

    session_id: str
    room: str
    participant_id: str
    name: str
    source_lang: str
    target_lang: str
    speak: bool
    kind: str  # "webrtc", "whip" or "whep"
    started_at: float  # epoch seconds
    ended_at: float | None = None
    meeting: str = ""  # which opening of the room (empty: before meetings were kept)


StoreRecord = UtteranceRecord | SessionRecord
Archiver = Callable[[StoreRecord], None]  # hands a record to the store, never waits


def keep_nothing(record: StoreRecord) -> None:
    """The archiver where no store is wanted."""


def record_to_json(record: StoreRecord) -> str:
    """One spool line; `kind` tells the record types apart."""
    kind = "session" if isinstance(record, SessionRecord) else "utterance"
    return json.dumps({"kind": kind, **asdict(record)}, ensure_ascii=False)


def record_from_json(line: str) -> StoreRecord:
    data: dict[str, Any] = json.loads(line)
    if data.pop("kind", "utterance") == "session":
        return SessionRecord(**data)
    return UtteranceRecord(**data)
