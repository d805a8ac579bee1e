"""WHIP (RFC 9725) ingest of a speaker and WHEP (draft-ietf-wish-whep) playback of a
room's interpreted audio in one language, for any standard client (OBS, GStreamer's
whipsink/whepsrc, players) without our SDK.

    POST   /whip/{room}?lang=en&name=OBS   application/sdp offer -> 201 + SDP answer
    POST   /whep/{room}?lang=pt            application/sdp offer -> 201 + SDP answer
    PATCH  <Location>                      application/trickle-ice-sdpfrag -> 204
    DELETE <Location>                      -> 200

The 201 carries `Location` (the session resource), an `ETag`, and the ICE servers
as `Link: <url>; rel="ice-server"` headers. Trickle ICE is supported, ICE restarts
are not (422, as the RFC says for a session supporting only one of the two). Every
request needs a room token as `Authorization: Bearer` (a speaker's to publish).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from media_server.errors import BadRequest, NotFound
from media_server.peer import Peer
from media_server.registry import webrtc
from signaling.access import check, check_owner
from signaling.errors import PreconditionFailed, Unprocessable, UnsupportedMediaType
from signaling.sessions import registry_of
from signaling.state import SETTINGS
from signaling.turn_credentials import ice_servers

routes = web.RouteTableDef()

SDP = "application/sdp"
SDP_FRAGMENT = "application/trickle-ice-sdpfrag"


@dataclass(frozen=True)
class _Kind:
    path: str  # "whip" or "whep"
    speak: bool  # a WHIP client sends speech; a WHEP client only receives


WHIP = _Kind("whip", speak=True)
WHEP = _Kind("whep", speak=False)


def _etag(session_id: str) -> str:
    return '"' + hashlib.sha256(session_id.encode()).hexdigest()[:16] + '"'


def _link_headers(servers: list[dict[str, Any]]) -> list[str]:
    links: list[str] = []
    for server in servers:
        extra = ""
        if "username" in server:
            extra = (f'; username="{server["username"]}"; credential="{server["credential"]}"'
                     '; credential-type="password"')
        links.extend(f'<{url}>; rel="ice-server"{extra}' for url in server["urls"])
    return links


async def _create(request: web.Request, kind: _Kind) -> web.Response:
    token = check(request, request.match_info["room"], speaking=kind.speak)
    if request.content_type != SDP:
        raise UnsupportedMediaType("unsupported_media_type",
                                   f"the offer must be sent as {SDP}")
    sdp = await request.text()  # checked as the session takes it (`offer.py`)
    registry, settings = registry_of(request), request.app[SETTINGS]
    query = request.query
    lang = query.get("lang", settings.stt_default_language)
    peer = webrtc(registry.create(
        room=request.match_info["room"],
        name=query.get("name", "WHIP" if kind.speak else "WHEP"),
        source_lang=lang if kind.speak else settings.stt_default_language,
        target_lang=query.get("target", lang),
        speak=kind.speak,
        monitor=False,
        kind=kind.path,
        interpretation=query.get("interpretation", ""),
        owner=token.owner if token is not None else "",
    ))
    try:
        answer = await peer.answer(sdp, "offer")
    except Exception:
        await peer.close("offer refused")
        raise
    location = f"/{kind.path}/{peer.info.room}/{peer.info.id}"
    headers = CIMultiDict([("Location", location), ("ETag", _etag(peer.info.id)),
                           ("Content-Type", SDP)])
    for link in _link_headers(ice_servers(settings, peer.info.participant_id, token)):
        headers.add("Link", link)
    return web.Response(status=201, body=answer.sdp.encode(), headers=headers)


def _resource(request: web.Request, kind: _Kind) -> Peer:
    token = check(request, request.match_info["room"])
    peer = webrtc(registry_of(request).get(request.match_info["session_id"]))
    if peer.info.room != request.match_info["room"] or peer.info.speak != kind.speak:
        raise NotFound("unknown_session", "no such session")
    check_owner(token, peer.info.owner)
    return peer


def _fragment_candidates(fragment: str) -> tuple[str | None, list[dict[str, Any]]]:
    """An SDP fragment (RFC 8840) -> its ice-ufrag and its candidates with their mid."""
    ufrag, mid, index = None, None, -1
    candidates: list[dict[str, Any]] = []
    for raw in fragment.splitlines():
        line = raw.strip()
        if line.startswith("a=ice-ufrag:"):
            ufrag = line.removeprefix("a=ice-ufrag:")
        elif line.startswith("m="):
            index += 1
            mid = None
        elif line.startswith("a=mid:"):
            mid = line.removeprefix("a=mid:")
        elif line.startswith("a=candidate:"):
            candidates.append({"candidate": line.removeprefix("a="), "sdpMid": mid,
                               "sdpMLineIndex": max(index, 0)})
        elif line and not line.startswith(("a=", "m=", "c=")):
            raise BadRequest("bad_sdp_fragment", f"not an SDP fragment line: {line[:80]!r}")
    return ufrag, candidates


def _remote_ufrag(peer: Peer) -> str | None:
    description = peer.pc.remoteDescription
    for line in (description.sdp if description else "").splitlines():
        if line.startswith("a=ice-ufrag:"):
            return line.removeprefix("a=ice-ufrag:").strip()
    return None


async def _patch(request: web.Request, kind: _Kind) -> web.Response:
    peer = _resource(request, kind)
    if request.content_type != SDP_FRAGMENT:
        raise UnsupportedMediaType("unsupported_media_type",
                                   f"a PATCH carries an {SDP_FRAGMENT} body")
    if_match = request.headers.get("If-Match")
    if if_match == "*":
        raise Unprocessable("ice_restart_unsupported", "this server does not do ICE restarts")
    if if_match is not None and if_match != _etag(peer.info.id):
        raise PreconditionFailed("etag_mismatch", "If-Match does not match the session's ETag")
    ufrag, candidates = _fragment_candidates(await request.text())
    if ufrag is not None and ufrag != _remote_ufrag(peer):
        raise Unprocessable("ice_restart_unsupported", "this server does not do ICE restarts")
    await peer.add_ice_candidates(candidates)
    return web.Response(status=204)


async def _delete(request: web.Request, kind: _Kind) -> web.Response:
    peer = _resource(request, kind)
    await registry_of(request).close(peer.info.id, "deleted by client")
    return web.Response(status=200)


def _add_routes(kind: _Kind) -> None:
    async def create(request: web.Request) -> web.Response:
        return await _create(request, kind)

    async def patch(request: web.Request) -> web.Response:
        return await _patch(request, kind)

    async def delete(request: web.Request) -> web.Response:
        return await _delete(request, kind)

    routes.post(f"/{kind.path}/{{room}}")(create)
    routes.patch(f"/{kind.path}/{{room}}/{{session_id}}")(patch)
    routes.delete(f"/{kind.path}/{{room}}/{{session_id}}")(delete)


_add_routes(WHIP)
_add_routes(WHEP)
