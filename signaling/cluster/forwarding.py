"""Signaling in front of media nodes (`live-interpreter signaling`): every session,
room and WHIP/WHEP request goes to the media node that holds the room (placed by
`placement.py`); a session's node is named in its id (`<node>.<random>`). Requests
and answers pass through unchanged, errors included; the node checks the token.
WebSocket participants (`/ws/{room}`, `/twilio/{room}`) are joined to a socket to the
room's node, and frames pass both ways unchanged, close codes included.
Only paths of our API pass, checked part by part before a URL is built (no dot
segments, no other path of a node), to node URLs of the allowed pattern
(`NODE_URL_PATTERN`), with the node secret and the client's address."""

from __future__ import annotations

import asyncio
import contextlib
import re

import aiohttp
from aiohttp import web
from yarl import URL

from media_server.errors import NotFound, Unavailable
from media_server.metrics import PLACEMENT_TIME
from media_server.room import ROOM_NAME
from signaling.clients import FORWARDED_FOR, NODE_SECRET_HEADER, client_of
from signaling.cluster.heartbeat import NodeInfo
from signaling.cluster.placement import Placement
from signaling.sessions import json_object
from signaling.state import SETTINGS

routes = web.RouteTableDef()
PLACEMENT = web.AppKey("placement", Placement)
CLIENT = web.AppKey("forwarding_client", aiohttp.ClientSession)
SOCKET_CLIENT = web.AppKey("socket_forwarding_client", aiohttp.ClientSession)

# What passes between client and node, each way.
REQUEST_HEADERS = ("Authorization", "Content-Type", "If-Match", "Accept")
ANSWER_HEADERS = ("Content-Type", "Location", "ETag", "Link", "Retry-After",
                  "WWW-Authenticate")


# `<node>.<random>`: a node's name (no '.' or '/'), then 144 random bits.
SESSION_ID = re.compile(r"([A-Za-z0-9_-]{1,64})\.[A-Za-z0-9_-]{24}", re.ASCII)
SESSION_PATHS = ("", "/offer", "/ice")  # after /api/sessions/{id}
ROOM_PATHS = ("", "/transcript", "/meetings")  # after /api/rooms/{room}


def node_of_session(session_id: str) -> str:
    match = SESSION_ID.fullmatch(session_id)
    if match is None:
        raise NotFound("unknown_session", "no such session")
    return match.group(1)


def _checked(request: web.Request) -> None:
    """Every part of the path is one of ours, before any URL is built from it."""
    info = request.match_info
    if info.get("rest", "") not in (ROOM_PATHS if "room" in info and "kind" not in info
                                    else SESSION_PATHS):
        raise NotFound("not_found", f"no such page: {request.path}")
    if "room" in info and not ROOM_NAME.fullmatch(info["room"]):
        raise NotFound("unknown_room", "no such room")
    if "session_id" in info:
        node_of_session(info["session_id"])


def _node_url(request: web.Request, node: NodeInfo) -> URL:
    if not re.fullmatch(request.app[SETTINGS].node_url_pattern, node.url):
        raise Unavailable("node_refused", f"media node {node.id}'s address is not allowed")
    return URL(node.url + request.rel_url.raw_path_qs, encoded=True)  # as checked


async def _forward(request: web.Request, node: NodeInfo) -> web.Response:
    _checked(request)
    headers = {h: request.headers[h] for h in REQUEST_HEADERS if h in request.headers}
    headers[NODE_SECRET_HEADER] = request.app[SETTINGS].node_secret
    headers[FORWARDED_FOR] = client_of(request)
    data = await request.read()
    try:
        async with request.app[CLIENT].request(
                request.method, _node_url(request, node), headers=headers,
                data=data or None) as answer:
            payload = await answer.read()
            response = web.Response(status=answer.status, body=payload)
            for name in ANSWER_HEADERS:  # Link may come several times (WHIP's ICE servers)
                for value in answer.headers.getall(name, []):
                    response.headers.add(name, value)
            return response
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise Unavailable("node_unreachable", f"media node {node.id} did not answer") from exc


async def _room_node(request: web.Request, room: str) -> NodeInfo:
    return await request.app[PLACEMENT].node_for_room(room)


@routes.post("/api/sessions")
async def create_session(request: web.Request) -> web.Response:
    data = await json_object(request)  # the body, once read, is forwarded as it came
    placement = request.app[PLACEMENT]
    with PLACEMENT_TIME.time():
        if isinstance(data.get("resume"), str):  # back to where the session was
            node = await placement.node(node_of_session(data["resume"]))
        else:
            room = data.get("room", "default")
            node = await _room_node(request, room if isinstance(room, str) else "")
    return await _forward(request, node)


async def to_sessions_node(request: web.Request) -> web.Response:
    """A call on a session (its id names its node): session API, WHIP/WHEP resources."""
    node = await request.app[PLACEMENT].node(node_of_session(request.match_info["session_id"]))
    return await _forward(request, node)


async def to_rooms_node(request: web.Request) -> web.Response:
    """A call on a room: its roster and transcript, a WHIP/WHEP offer."""
    return await _forward(request, await _room_node(request, request.match_info["room"]))


for path in ("/api/sessions/{session_id}{rest:.*}", "/{kind:whip|whep}/{room}/{session_id}"):
    routes.route("*", path)(to_sessions_node)
routes.get("/api/rooms/{room}{rest:.*}")(to_rooms_node)
routes.route("*", "/{kind:whip|whep}/{room}")(to_rooms_node)


@routes.get("/{kind:ws|twilio}/{room}")
async def to_rooms_socket(request: web.Request) -> web.StreamResponse:
    room = request.match_info["room"]
    if not ROOM_NAME.fullmatch(room):
        raise NotFound("unknown_room", "no such room")
    node = await _room_node(request, room)
    headers = {NODE_SECRET_HEADER: request.app[SETTINGS].node_secret,
               FORWARDED_FOR: client_of(request)}
    if "Authorization" in request.headers:
        headers["Authorization"] = request.headers["Authorization"]
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
               if p.strip()]
    try:
        upstream = await request.app[SOCKET_CLIENT].ws_connect(
            _node_url(request, node), headers=headers, protocols=offered, max_msg_size=0,
            timeout=aiohttp.ClientWSTimeout(ws_close=5.0))
    except aiohttp.WSServerHandshakeError as exc:  # the node refused: its status
        return web.json_response({"error": {"code": "refused", "message": exc.message}},
                                 status=exc.status)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise Unavailable("node_unreachable", f"media node {node.id} did not answer") from exc
    client = web.WebSocketResponse(
        protocols=(upstream.protocol,) if upstream.protocol else (), max_msg_size=0)
    try:
        await client.prepare(request)
        await _join(client, upstream)
    finally:
        await upstream.close()
    return client


async def _join(client: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse
                ) -> None:
    """Frames both ways until either side closes; the other is closed with its code."""
    async def pump(source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
                   sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse) -> None:
        while True:
            message = await source.receive()
            if message.type == aiohttp.WSMsgType.TEXT:
                await sink.send_str(message.data)
            elif message.type == aiohttp.WSMsgType.BINARY:
                await sink.send_bytes(message.data)
            else:  # closed (with the code and reason to pass on) or broken
                closing = message.type == aiohttp.WSMsgType.CLOSE
                await sink.close(code=message.data if closing else 1011,
                                 message=str(message.extra or "").encode()[:120] if closing
                                 else b"")
                return

    with contextlib.suppress(ConnectionError):
        tasks = [asyncio.create_task(pump(client, upstream)),
                 asyncio.create_task(pump(upstream, client))]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            await asyncio.wait(tasks, timeout=2.0)  # the other side's close goes through
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


@routes.get("/api/languages")
async def languages(request: web.Request) -> web.Response:
    nodes = await request.app[PLACEMENT].live_nodes()
    if not nodes:
        raise Unavailable("no_media_node", "no media node is available")
    return await _forward(request, min(nodes.values(), key=lambda n: n.sessions))
