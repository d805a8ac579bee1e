"""A room's history as meetings: each opening of the room (from its first participant
to its last leaving) is one, with the sessions and finals that belong to it."""

from __future__ import annotations

from dataclasses import dataclass

from history.records import SessionRecord, UtteranceRecord


@dataclass(frozen=True)
class Meeting:
    meeting: str
    started_at: float
    ended_at: float | None  # None while someone is still in it
    participants: int


def meetings(sessions: list[SessionRecord]) -> list[Meeting]:
    """The room's meetings, the first first."""
    grouped: dict[str, list[SessionRecord]] = {}
    for record in sessions:
        grouped.setdefault(record.session.meeting, []).append(record)
    listed = [Meeting(
        meeting=meeting,
        started_at=min(s.started_at for s in members),
        ended_at=None if any(s.ended_at is None for s in members)
        else max(s.ended_at or 0.0 for s in members),
        participants=len({s.session.participant_id for s in members}),
    ) for meeting, members in grouped.items()]
    return sorted(listed, key=lambda m: m.started_at)


def of_meeting(meeting: str, records: list[UtteranceRecord], sessions: list[SessionRecord]
               ) -> tuple[list[UtteranceRecord], list[SessionRecord]]:
    """What one meeting holds: its sessions, and the finals said in them."""
    members = [s for s in sessions if s.session.meeting == meeting]
    ids = {s.session.session_id for s in members}
    return [r for r in records if r.session_id in ids], members
