"""Signaling in front of media nodes (`live-interpreter signaling`): every session,
room and WHIP/WHEP request goes to the media node that holds the room (placed by
`placement.py`); a session's node is named in its id (`<node>.<random>`). Requests
and answers pass through unchanged, errors included; the node checks the token."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from media_server.errors import NotFound, Unavailable
from media_server.heartbeat import NodeInfo
from media_server.metrics import PLACEMENT_TIME
from signaling.placement import Placement
from signaling.sessions import json_object

routes = web.RouteTableDef()
PLACEMENT = web.AppKey("placement", Placement)
CLIENT = web.AppKey("forwarding_client", aiohttp.ClientSession)

# What passes between client and node, each way.
REQUEST_HEADERS = ("Authorization", "Content-Type", "If-Match", "Accept")
ANSWER_HEADERS = ("Content-Type", "Location", "ETag", "Link", "Retry-After",
                  "WWW-Authenticate")


def node_of_session(session_id: str) -> str:
    node, dot, _ = session_id.partition(".")
    if not dot or not node:
        raise NotFound("unknown_session", "no such session")
    return node


async def _forward(request: web.Request, node: NodeInfo) -> web.Response:
    headers = {h: request.headers[h] for h in REQUEST_HEADERS if h in request.headers}
    data = await request.read()
    try:
        async with request.app[CLIENT].request(
                request.method, node.url + request.rel_url.path_qs, headers=headers,
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


@routes.get("/api/languages")
async def languages(request: web.Request) -> web.Response:
    nodes = await request.app[PLACEMENT].live_nodes()
    if not nodes:
        raise Unavailable("no_media_node", "no media node is available")
    return await _forward(request, min(nodes.values(), key=lambda n: n.sessions))
