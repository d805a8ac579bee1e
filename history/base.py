"""The store's interface: finals with their translations and sessions, written
idempotently, read back by room, purged by age. One module per database
(`sqlite.py`, `postgres.py`); the SQL they share is in `migrations.py`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from history import migrations as sql
from history.records import SessionDescription, SessionRecord, StoreRecord, UtteranceRecord

Rows = list[tuple[Any, ...]]


class StoreUnavailable(Exception):
    """The database cannot be reached now; what was not written is kept and retried."""


class Store(Protocol):
    name: str

    async def write(self, records: Sequence[StoreRecord]) -> None:
        """Write in one transaction; writing a record again changes nothing (a session's
        later record, its end, replaces its start)."""
        ...

    async def transcript(self, room: str) -> list[UtteranceRecord]:
        """A room's finals in the order they were said."""
        ...

    async def sessions(self, room: str) -> list[SessionRecord]:
        """Who took part in a room, in the order they joined."""
        ...

    async def purge(self, before: float) -> int:
        """Delete finals (and ended sessions) from before this epoch time; returns how
        many finals."""
        ...

    async def close(self) -> None: ...


def write_plan(records: Sequence[StoreRecord]) -> list[tuple[str, Rows]]:
    """The statements that write `records`, each with its rows, in an order that
    satisfies the foreign keys; statements without rows are left out."""
    sessions = [r for r in records if isinstance(r, SessionRecord)]
    utterances = [r for r in records if isinstance(r, UtteranceRecord)]
    plan: list[tuple[str, Rows]] = [
        (sql.INSERT_ROOM, [(r.session.room, r.started_at) for r in sessions]),
        (sql.INSERT_PARTICIPANT, [(s.room, s.participant_id, s.name, s.source_lang,
                                   s.target_lang, s.speak, r.started_at)
                                  for r in sessions for s in [r.session]]),
        (sql.UPSERT_SESSION, [(s.session_id, s.room, s.participant_id, s.kind, r.started_at,
                               r.ended_at, s.meeting) for r in sessions for s in [r.session]]),
        (sql.INSERT_UTTERANCE, [_utterance_row(u) for u in utterances]),
        (sql.INSERT_TRANSLATION, [(u.session_id, u.utterance_id, lang, text)
                                  for u in utterances
                                  for lang, text in sorted(u.translations.items())]),
    ]
    return [(statement, rows) for statement, rows in plan if rows]


def _utterance_row(record: UtteranceRecord) -> tuple[Any, ...]:
    return (record.session_id, record.utterance_id, record.room, record.speaker_id,
            record.speaker, record.lang, record.text, record.start_ms, record.end_ms,
            record.engine, record.created_at)


def assemble(utterances: Iterable[Sequence[Any]],
             translations: Iterable[Sequence[Any]]) -> list[UtteranceRecord]:
    by_key: dict[tuple[str, str], dict[str, str]] = {}
    for session_id, utterance_id, lang, text in translations:
        by_key.setdefault((session_id, utterance_id), {})[lang] = text
    records = []
    for row in utterances:
        session_id, utterance_id, room, speaker_id, speaker, lang, text = row[:7]
        records.append(UtteranceRecord(
            session_id, utterance_id, room, speaker_id, speaker, lang, text,
            start_ms=int(row[7]), end_ms=int(row[8]), engine=row[9],
            created_at=float(row[10]), translations=by_key.get((session_id, utterance_id), {})))
    return records


def session_records(rows: Iterable[Sequence[Any]]) -> list[SessionRecord]:
    return [SessionRecord(
        SessionDescription(session_id=row[0], room=row[1], participant_id=row[2],
                           name=row[3], source_lang=row[4], target_lang=row[5],
                           speak=bool(row[6]), kind=row[7], meeting=row[10]),
        started_at=float(row[8]), ended_at=None if row[9] is None else float(row[9]))
        for row in rows]
