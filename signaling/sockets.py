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
from media_server.socket_audio import ENCODINGS, RATES, SocketAudio
from media_server.socket_peer import SocketPeer
from media_server.socket_writer import SEND_BUFFER_BYTES
from signaling.access import SUBPROTOCOL, check
from signaling.sessions import registry_of
from signaling.state import SETTINGS

routes = web.RouteTableDef()

_FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _flag(query: MultiMapping[str], name: str, default: bool) -> bool:
    value = query.get(name)
    if value is None:
        return default
    if value.lower() not in _FLAGS:
        raise BadRequest("bad_field", f"'{name}' must be true or false")
    return _FLAGS[value.lower()]


def audio_format(query: MultiMapping[str]) -> SocketAudio:
    encoding = query.get("encoding", "pcm16")
    if encoding not in ENCODINGS:
        raise BadRequest("bad_encoding", f"encoding must be one of {', '.join(ENCODINGS)}")
    rate = query.get("rate", "16000")
    if not rate.isdigit() or int(rate) not in RATES:
        raise BadRequest("bad_rate", "rate must be one of "
                         f"{', '.join(str(r) for r in RATES)} (Hz)")
    return SocketAudio(encoding, int(rate))


@routes.get("/ws/{room}")
async def socket_session(request: web.Request) -> web.StreamResponse:
    room = request.match_info["room"]
    query = request.query
    speak = _flag(query, "speak", True)
    token = check(request, room, speaking=speak)
    audio = audio_format(query)
    tts = _flag(query, "tts", True)
    ws = web.WebSocketResponse(protocols=(SUBPROTOCOL,), max_msg_size=audio.rate * 2 * 2)
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
