"""Session API: create, offer/answer, trickle ICE, inspect, delete; who is in a room."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aiohttp import web

from media_server.errors import BadRequest, Unavailable
from media_server.protocol import parse_json
from media_server.registry import Authorize, Session, SessionRegistry, webrtc
from signaling.access import ACCESS, check, check_owner
from signaling.state import RUNTIME, SETTINGS
from signaling.turn_credentials import ice_servers

routes = web.RouteTableDef()


async def json_object(request: web.Request) -> dict[str, Any]:
    body = await request.read()  # raises 413 past client_max_size
    try:
        data = parse_json(body) if body else None
    except ValueError as exc:
        raise BadRequest("bad_json", "request body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise BadRequest("bad_json", "request body must be a JSON object")
    return data


def _get(data: dict[str, Any], name: str, *, kind: type | tuple[type, ...], default: Any) -> Any:
    value = data.get(name, default)
    if not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise BadRequest("bad_field", f"'{name}' must be a {names}")
    return value


def registry_of(request: web.Request) -> SessionRegistry:
    registry = request.app[RUNTIME].registry
    if registry is None:
        raise Unavailable("not_ready", "the engines are still loading; try again shortly")
    return registry


def _own_session(request: web.Request) -> Session:
    """The session named in the path, to its owner: a token for its room, of the same
    subject (or the very token) that created it."""
    peer = registry_of(request).get(request.match_info["session_id"])
    check_owner(check(request, peer.info.room), peer.info.owner)
    return peer


def _authorize(request: web.Request) -> Authorize:
    def authorize(room: str, speak: bool, owner: str) -> None:
        check_owner(check(request, room, speaking=speak), owner)

    return authorize


@routes.post("/api/sessions")
async def create_session(request: web.Request) -> web.Response:
    registry = registry_of(request)
    settings = request.app[SETTINGS]
    data = await json_object(request)
    resume = _get(data, "resume", kind=str, default="")
    if resume:  # a client back after losing its connection: the session goes on
        peer = await registry.resume(resume, _authorize(request))
        token = request.app[ACCESS].token_of(request)
    else:
        source = _get(data, "source_lang", kind=str, default=settings.stt_default_language)
        room = _get(data, "room", kind=str, default="default")
        speak = _get(data, "speak", kind=bool, default=True)
        token = check(request, room, speaking=speak)
        peer = registry.create(
            room=room,
            name=_get(data, "name", kind=str, default="Speaker"),
            source_lang=source,
            target_lang=_get(data, "target_lang", kind=str, default=source),
            speak=speak,
            monitor=_get(data, "monitor", kind=(bool, type(None)), default=None),
            stt_model=_get(data, "stt_model", kind=str, default=""),
            interpretation=_get(data, "interpretation", kind=str, default=""),
            owner=token.owner if token is not None else "",
        )
    return web.json_response(
        {
            "session_id": peer.info.id,
            "participant_id": peer.info.participant_id,
            "meeting": peer.info.meeting,
            "resumed": bool(resume),
            "ice_servers": ice_servers(settings, peer.info.participant_id, token),
        },
        status=201,
    )


@routes.get("/api/sessions/{session_id}")
async def get_session(request: web.Request) -> web.Response:
    peer = _own_session(request)
    info, participant = peer.info, peer.participant
    return web.json_response({
        "session_id": info.id, "participant_id": info.participant_id, "room": info.room,
        "meeting": info.meeting,
        "name": info.name, "source_lang": info.source_lang,
        "target_lang": participant.target_lang, "speak": info.speak,
        "monitor": participant.monitor, "tts": participant.tts_enabled,
        "interpretation": participant.interpretation,
        "kind": info.kind,
        "connection_state": peer.connection_state,
    })


@routes.post("/api/sessions/{session_id}/offer")
async def offer(request: web.Request) -> web.Response:
    peer = webrtc(_own_session(request))
    data = await json_object(request)
    answer = await peer.answer(_get(data, "sdp", kind=str, default=None),
                               _get(data, "type", kind=str, default=None))
    return web.json_response({"sdp": answer.sdp, "type": answer.type})


@routes.patch("/api/sessions/{session_id}/ice")
async def trickle_ice(request: web.Request) -> web.Response:
    peer = webrtc(_own_session(request))
    data = await json_object(request)
    candidates = data.get("candidates", [data])
    if not isinstance(candidates, list) or not all(isinstance(c, dict) for c in candidates):
        raise BadRequest("bad_candidate", "'candidates' must be a list of objects")
    await peer.add_ice_candidates(candidates)
    return web.Response(status=204)


@routes.delete("/api/sessions/{session_id}")
async def delete_session(request: web.Request) -> web.Response:
    peer = _own_session(request)
    await registry_of(request).close(peer.info.id, "deleted by client")
    return web.Response(status=204)


@routes.get("/api/languages")
async def languages(request: web.Request) -> web.Response:
    return web.json_response(registry_of(request).catalog.describe())


@routes.get("/api/rooms/{room}")
async def get_room(request: web.Request) -> web.Response:
    check(request, request.match_info["room"])
    room = registry_of(request).rooms.get(request.match_info["room"])
    return web.json_response({
        "room": room.name,
        "meeting": room.meeting,
        "participants": [asdict(p.describe()) for p in room.participants()],
    })
