"""The schema, as numbered steps that run once each, in order, on start. SQL common to
SQLite and PostgreSQL; `schema_version` records the last step applied."""

from __future__ import annotations

MIGRATIONS: list[tuple[int, list[str]]] = [
    (1, [
        """CREATE TABLE utterances (
            session_id TEXT NOT NULL,
            utterance_id TEXT NOT NULL,
            room TEXT NOT NULL,
            speaker_id TEXT NOT NULL,
            speaker TEXT NOT NULL,
            lang TEXT NOT NULL,
            text TEXT NOT NULL,
            start_ms BIGINT NOT NULL,
            end_ms BIGINT NOT NULL,
            engine TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (session_id, utterance_id))""",
        "CREATE INDEX utterances_by_room ON utterances (room, start_ms)",
        "CREATE INDEX utterances_by_age ON utterances (created_at)",
        """CREATE TABLE translations (
            session_id TEXT NOT NULL,
            utterance_id TEXT NOT NULL,
            lang TEXT NOT NULL,
            text TEXT NOT NULL,
            PRIMARY KEY (session_id, utterance_id, lang),
            FOREIGN KEY (session_id, utterance_id)
                REFERENCES utterances (session_id, utterance_id) ON DELETE CASCADE)""",
    ]),
    (2, [
        """CREATE TABLE rooms (
            room TEXT PRIMARY KEY,
            created_at DOUBLE PRECISION NOT NULL)""",
        """CREATE TABLE participants (
            room TEXT NOT NULL REFERENCES rooms (room) ON DELETE CASCADE,
            participant_id TEXT NOT NULL,
            name TEXT NOT NULL,
            source_lang TEXT NOT NULL,
            target_lang TEXT NOT NULL,
            speak BOOLEAN NOT NULL,
            joined_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (room, participant_id))""",
        """CREATE TABLE sessions (
            session_id TEXT PRIMARY KEY,
            room TEXT NOT NULL,
            participant_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            started_at DOUBLE PRECISION NOT NULL,
            ended_at DOUBLE PRECISION,
            FOREIGN KEY (room, participant_id)
                REFERENCES participants (room, participant_id) ON DELETE CASCADE)""",
        "CREATE INDEX sessions_by_age ON sessions (started_at)",
    ]),
    (3, [  # each opening of a room is a meeting, with a transcript of its own
        "ALTER TABLE sessions ADD COLUMN meeting TEXT NOT NULL DEFAULT ''",
    ]),
]


CREATE_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"

INSERT_UTTERANCE = """INSERT INTO utterances (session_id, utterance_id, room, speaker_id,
    speaker, lang, text, start_ms, end_ms, engine, created_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (session_id, utterance_id) DO NOTHING"""
INSERT_TRANSLATION = """INSERT INTO translations (session_id, utterance_id, lang, text)
    VALUES (?, ?, ?, ?) ON CONFLICT (session_id, utterance_id, lang) DO NOTHING"""
SELECT_ROOM = """SELECT session_id, utterance_id, room, speaker_id, speaker, lang, text,
    start_ms, end_ms, engine, created_at FROM utterances WHERE room = ?
    ORDER BY start_ms, created_at"""
SELECT_TRANSLATIONS = """SELECT t.session_id, t.utterance_id, t.lang, t.text
    FROM translations t JOIN utterances u
    ON u.session_id = t.session_id AND u.utterance_id = t.utterance_id WHERE u.room = ?"""
DELETE_TRANSLATIONS_BEFORE = """DELETE FROM translations WHERE (session_id, utterance_id) IN
    (SELECT session_id, utterance_id FROM utterances WHERE created_at < ?)"""
DELETE_BEFORE = "DELETE FROM utterances WHERE created_at < ?"
INSERT_ROOM = """INSERT INTO rooms (room, created_at) VALUES (?, ?)
    ON CONFLICT (room) DO NOTHING"""
INSERT_PARTICIPANT = """INSERT INTO participants (room, participant_id, name, source_lang,
    target_lang, speak, joined_at) VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (room, participant_id) DO UPDATE SET target_lang = excluded.target_lang"""
UPSERT_SESSION = """INSERT INTO sessions (session_id, room, participant_id, kind, started_at,
    ended_at, meeting) VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (session_id) DO UPDATE SET ended_at = excluded.ended_at"""
SELECT_SESSIONS = """SELECT s.session_id, s.room, s.participant_id, p.name, p.source_lang,
    p.target_lang, p.speak, s.kind, s.started_at, s.ended_at, s.meeting
    FROM sessions s JOIN participants p
    ON p.room = s.room AND p.participant_id = s.participant_id
    WHERE s.room = ? ORDER BY s.started_at"""
DELETE_SESSIONS_BEFORE = """DELETE FROM sessions WHERE ended_at < ?"""
DELETE_PARTICIPANTS_UNUSED = """DELETE FROM participants WHERE NOT EXISTS
    (SELECT 1 FROM sessions s WHERE s.room = participants.room
     AND s.participant_id = participants.participant_id)"""
DELETE_ROOMS_UNUSED = """DELETE FROM rooms WHERE NOT EXISTS
    (SELECT 1 FROM participants p WHERE p.room = rooms.room) AND NOT EXISTS
    (SELECT 1 FROM utterances u WHERE u.room = rooms.room)"""
# Oldest first; the first three take the cut-off time, the last two tidy up after them.
PURGE_BEFORE = [DELETE_TRANSLATIONS_BEFORE, DELETE_BEFORE, DELETE_SESSIONS_BEFORE]
PURGE_UNUSED = [DELETE_PARTICIPANTS_UNUSED, DELETE_ROOMS_UNUSED]
