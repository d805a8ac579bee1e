"""A room's transcript as JSON, WebVTT or SubRip, in the original or one language,
timed by the utterances' offsets on the room's clock."""

from __future__ import annotations

import json
from typing import Any

from history.records import SessionRecord, UtteranceRecord

FORMATS = {"json": "application/json", "vtt": "text/vtt", "srt": "application/x-subrip"}


def _clock(ms: int, separator: str) -> str:
    hours, rest = divmod(max(0, ms), 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}"


def _cue_end(record: UtteranceRecord) -> int:
    return max(record.end_ms, record.start_ms + 1)  # a cue must not end before it starts


def as_json(room: str, records: list[UtteranceRecord], *, sessions: list[SessionRecord],
            lang: str | None) -> dict[str, Any]:
    return {"room": room, "lang": lang, "sessions": [{
        "participant_id": s.session.participant_id, "name": s.session.name,
        "source_lang": s.session.source_lang, "target_lang": s.session.target_lang,
        "speak": s.session.speak, "kind": s.session.kind,
        "started_at": s.started_at, "ended_at": s.ended_at,
    } for s in sessions], "utterances": [{
        "utterance_id": r.utterance_id, "speaker": r.speaker, "speaker_id": r.speaker_id,
        "start_ms": r.start_ms, "end_ms": r.end_ms, "lang": r.lang, "original": r.text,
        "text": r.text_in(lang), "translations": r.translations,
    } for r in records]}


def _one_line(text: str) -> str:
    """Cue text on one line: a line break in a name or a text (stored before names were
    checked, or from an engine) must not start a cue of its own."""
    return " ".join(text.split())


def as_vtt(records: list[UtteranceRecord], lang: str | None) -> str:
    def escape(text: str) -> str:
        return _one_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    cues = [f"{_clock(r.start_ms, '.')} --> {_clock(_cue_end(r), '.')}\n"
            f"<v {escape(r.speaker)}>{escape(r.text_in(lang))}" for r in records]
    return "WEBVTT\n\n" + "".join(cue + "\n\n" for cue in cues)


def as_srt(records: list[UtteranceRecord], lang: str | None) -> str:
    return "".join(
        f"{index}\n{_clock(r.start_ms, ',')} --> {_clock(_cue_end(r), ',')}\n"
        f"{_one_line(r.speaker)}: {_one_line(r.text_in(lang))}\n\n"
        for index, r in enumerate(records, 1))


def render(kind: str, room: str, *, records: list[UtteranceRecord], sessions: list[SessionRecord],
           lang: str | None) -> str:
    """The transcript as the body of a file of `kind` (one of FORMATS)."""
    if kind == "json":
        return json.dumps(as_json(room, records, sessions=sessions, lang=lang), ensure_ascii=False,
                          indent=2)
    return as_vtt(records, lang) if kind == "vtt" else as_srt(records, lang)
