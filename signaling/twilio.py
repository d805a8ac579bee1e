"""`GET /twilio/{room}`: a phone call, through Twilio's bidirectional Media Streams,
as a participant of a room. The caller is interpreted and hears the translation on
the call; their captions go to the room's other participants and caption streams.

    <Response><Connect><Stream url="wss://example.org/twilio/standup">
      <Parameter name="token" value="<a speaker's room token>"/>
      <Parameter name="source_lang" value="en"/>
      <Parameter name="target_lang" value="pt"/>
    </Stream></Connect></Response>

Twilio sets no headers of ours, so the token and the languages come in the
`start` message's `customParameters` (optional too: `name`, `tts`,
`interpretation`). Until `start`, nothing is created; what is refused then is closed
with a code and a reason: 1008 (a token or a session refused: `token_missing: ...`),
1013 (no capacity now), 1003 (not µ-law 8 kHz mono, or a binary frame), 1007 (not
JSON)."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import WSMsgType, web

from media_server.errors import BadRequest, InterpreterError
from media_server.socket_audio import SocketAudio
from media_server.socket_framing import (
    CLOSE_POLICY,
    FramingError,
    TwilioFraming,
    TwilioStart,
    twilio_start,
)
from media_server.socket_peer import CLOSE_TRY_LATER, SocketPeer
from signaling.access import ACCESS
from signaling.sessions import registry_of
from signaling.state import SETTINGS

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

START_WAIT_S = 10.0  # Twilio sends `connected` and `start` as the call connects
TWILIO_AUDIO = SocketAudio("mulaw", 8000)


async def _start(ws: web.WebSocketResponse) -> TwilioStart | None:
    """Twilio's `start`; None if the socket closed first."""
    while True:
        message = await ws.receive()
        if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            return None
        start = twilio_start(message.data)
        if start is not None:
            return start


async def _refuse(ws: web.WebSocketResponse, code: int, reason: str) -> None:
    log.info("Twilio stream refused", extra={"reason": reason})
    await ws.close(code=code, message=reason.encode()[:120])


@routes.get("/twilio/{room}")
async def twilio_stream(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse(max_msg_size=64 * 1024)
    if not ws.can_prepare(request).ok:
        raise BadRequest("not_websocket", "this is Twilio's Media Streams endpoint "
                         "(TwiML: <Connect><Stream url='wss://.../twilio/{room}'>)")
    registry = registry_of(request)
    await ws.prepare(request)
    try:
        async with asyncio.timeout(START_WAIT_S):
            start = await _start(ws)
    except TimeoutError:
        await _refuse(ws, CLOSE_POLICY, "no 'start' in time")
        return ws
    except FramingError as exc:
        await _refuse(ws, exc.code, exc.reason)
        return ws
    if start is None:
        return ws
    room, parameters = request.match_info["room"], start.parameters
    source = parameters.get("source_lang", request.app[SETTINGS].stt_default_language)
    try:
        token = request.app[ACCESS].check_token(parameters.get("token"), room, speaking=True)
        peer = registry.create(
            room=room, name=parameters.get("name", "Phone"), source_lang=source,
            target_lang=parameters.get("target_lang", source), speak=True,
            interpretation=parameters.get("interpretation", ""), kind="twilio",
            owner=token.owner if token is not None else "")
    except InterpreterError as exc:
        await _refuse(ws, CLOSE_TRY_LATER if exc.status == 503 else CLOSE_POLICY,
                      f"{exc.code}: {exc.message}")
        return ws
    assert isinstance(peer, SocketPeer)
    peer.participant.set_tts(parameters.get("tts", "true").lower() not in ("false", "0", "no"))
    log.info("Twilio stream started", extra={"session_id": peer.info.id})
    await peer.serve(ws, TWILIO_AUDIO, TwilioFraming(start))
    return ws
