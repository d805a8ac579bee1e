"""A room's history, one meeting at a time (each opening of the room is a meeting):

    GET /api/rooms/{room}/meetings                        the meetings, first first
    GET /api/rooms/{room}/transcript?meeting=ID&format=json|vtt|srt&lang=xx

Reading needs a token of the room that carries the `transcript` claim: `true` reads
every meeting of the room, a meeting id reads that meeting only (being in a room is
not enough: a room's name is reused, meeting after meeting). Without `meeting`, the
transcript is of the latest meeting the token may read in which something was said."""

from __future__ import annotations

import re
from dataclasses import asdict

from aiohttp import web

from history import export
from history.base import StoreUnavailable
from history.meetings import Meeting, meetings, of_meeting
from history.records import SessionRecord, UtteranceRecord
from media_server.errors import BadRequest, NotFound, Unavailable
from signaling.access import check
from signaling.errors import Forbidden
from signaling.state import RUNTIME

routes = web.RouteTableDef()
_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


async def _history(request: web.Request
                   ) -> tuple[list[UtteranceRecord], list[SessionRecord], list[Meeting]]:
    """The room's history, as far as the caller may read it."""
    room = request.match_info["room"]
    token = check(request, room)
    readable: bool | str = True if token is None else token.transcript  # --dev: all
    if readable is False:
        raise Forbidden("transcript_forbidden", "reading transcripts needs a token with "
                        "the transcript claim (`live-interpreter token --transcript`)")
    archive = request.app[RUNTIME].archive
    if archive is None:
        raise Unavailable("not_ready", "the store is not open yet")
    try:
        records, sessions = await archive.transcript(room)
    except StoreUnavailable as exc:
        raise Unavailable("store_unavailable", "the transcript store is unreachable") from exc
    listed = [m for m in meetings(sessions) if readable is True or m.meeting == readable]
    return records, sessions, listed


@routes.get("/api/rooms/{room}/meetings")
async def room_meetings(request: web.Request) -> web.Response:
    _, _, listed = await _history(request)
    return web.json_response({"room": request.match_info["room"],
                              "meetings": [asdict(m) for m in listed]})


@routes.get("/api/rooms/{room}/transcript")
async def transcript(request: web.Request) -> web.Response:
    room = request.match_info["room"]
    kind = request.query.get("format", "json")
    lang = request.query.get("lang") or None
    if kind not in export.FORMATS:
        raise BadRequest("bad_format", f"format must be one of {', '.join(export.FORMATS)}")
    if lang is not None and not _LANG.match(lang):
        raise BadRequest("bad_language", f"{lang!r} is not a language code")
    records, sessions, listed = await _history(request)
    wanted = request.query.get("meeting")
    if wanted is not None and wanted not in {m.meeting for m in listed}:
        raise NotFound("unknown_meeting", "no such meeting in this room (that you may read)")
    # Unnamed: the latest meeting in which something was said.
    for meeting in [wanted] if wanted is not None else [m.meeting for m in reversed(listed)]:
        said, present = of_meeting(meeting, records, sessions)
        if said:
            break
    else:
        raise NotFound("unknown_room", "no transcript for this room")
    records, sessions = said, present
    return web.Response(text=export.render(kind, room, records=records, sessions=sessions,
                                           lang=lang),
                        content_type=export.FORMATS[kind], charset="utf-8")
