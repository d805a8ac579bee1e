"""`GET /ws/{room}`: a participant over a WebSocket, for phone bridges and servers
that have audio but no WebRTC (`media_server/socket_peer.py` serves it).

    GET /ws/{room}?name=Bot&source_lang=en&target_lang=pt&speak=true&tts=true
                  &encoding=pcm16&rate=16000&interpretation=simultaneous

The room token comes as `Authorization: Bearer <token>` or, from a browser (which
cannot set headers on a WebSocket), as the subprotocol `bearer.<token>` offered
beside `live-interpreter`, which the server picks. Everything is checked before the
upgrade, so a refusal is a plain HTTP error (JSON body): 401/403 token, 400 a bad
parameter, 503 no room for another session or speaker."""

from __future__ import annotations

import socket

from aiohttp import web
from multidict import MultiMapping

from media_server.errors import BadRequest
from media_server.socket_audio import audio_format
from media_server.socket_peer import SocketPeer
from media_server.socket_writer import SEND_BUFFER_BYTES
from signaling.access import SUBPROTOCOL, check
from signaling.sessions import registry_of
from signaling.state import SETTINGS

routes = web.RouteTableDef()
MAX_FRAME_BYTES = 48000 * 2 * 2  # 2 s of the largest format (the format may come later)

_FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _flag(query: MultiMapping[str], name: str, default: bool) -> bool:
    value = query.get(name)
    if value is None:
        return default
    if value.lower() not in _FLAGS:
        raise BadRequest("bad_field", f"'{name}' must be true or false")
    return _FLAGS[value.lower()]


@routes.get("/ws/{room}")
async def socket_session(request: web.Request) -> web.StreamResponse:
    room = request.match_info["room"]
    query = request.query
    speak = _flag(query, "speak", True)
    token = check(request, room, speaking=speak)
    audio = audio_format(query.get("encoding", "pcm16"), query.get("rate", "16000"))
    tts = _flag(query, "tts", True)
    ws = web.WebSocketResponse(protocols=(SUBPROTOCOL,), max_msg_size=MAX_FRAME_BYTES)
    if not ws.can_prepare(request).ok:
        raise BadRequest("not_websocket", "this is a WebSocket endpoint: send an upgrade "
                         "request (Connection: Upgrade, Upgrade: websocket)")
    settings = request.app[SETTINGS]
    source = query.get("source_lang", settings.stt_default_language)
    peer = registry_of(request).create(
        room=room, name=query.get("name", "WebSocket"), source_lang=source,
        target_lang=query.get("target_lang", source), speak=speak,
        interpretation=query.get("interpretation", ""), kind="socket",
        owner=token.owner if token is not None else "")
    assert isinstance(peer, SocketPeer)
    peer.participant.set_tts(tts)
    try:
        await ws.prepare(request)
    except Exception:
        await peer.close("upgrade failed")
        raise
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is not None:  # audio waits where stale audio can be dropped (socket_writer.py)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
    await peer.serve(ws, audio)
    return ws
