"""A room's transcript: `GET /api/rooms/{room}/transcript?format=json|vtt|srt&lang=xx`."""

from __future__ import annotations

import re

from aiohttp import web

from media_server.errors import BadRequest, NotFound, Unavailable
from media_server.store import export
from media_server.store.base import StoreUnavailable
from signaling.access import check
from signaling.state import RUNTIME

routes = web.RouteTableDef()
_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


@routes.get("/api/rooms/{room}/transcript")
async def transcript(request: web.Request) -> web.Response:
    room = request.match_info["room"]
    check(request, room)
    kind = request.query.get("format", "json")
    lang = request.query.get("lang") or None
    if kind not in export.FORMATS:
        raise BadRequest("bad_format", f"format must be one of {', '.join(export.FORMATS)}")
    if lang is not None and not _LANG.match(lang):
        raise BadRequest("bad_language", f"{lang!r} is not a language code")
    archive = request.app[RUNTIME].archive
    if archive is None:
        raise Unavailable("not_ready", "the store is not open yet")
    try:
        records, sessions = await archive.transcript(room)
    except StoreUnavailable as exc:
        raise Unavailable("store_unavailable", "the transcript store is unreachable") from exc
    if not records:
        raise NotFound("unknown_room", "no transcript for this room")
    return web.Response(text=export.render(kind, room, records, sessions, lang),
                        content_type=export.FORMATS[kind], charset="utf-8")
