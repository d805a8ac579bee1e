"""Where a room lives, in a scaled-out deployment: every peer of a room on the one
media node that holds it; a new room on the least-loaded live node that is not
draining. Nodes and rooms are keys in Redis (`heartbeat.py` writes
them); a node that stopped beating has no key, so it is never chosen."""

from __future__ import annotations

import redis.asyncio as aioredis

from media_server.errors import Unavailable
from signaling.cluster.heartbeat import NODE_KEY, ROOM_KEY, NodeInfo

ROOM_TTL_S = 60  # until the node's heartbeat takes the room over


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Placement:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        # Rooms this process placed since each node's last heartbeat: its load figures
        # do not show them yet, and a burst of new rooms must still spread.
        self._placed: dict[str, tuple[float, int]] = {}

    def _load(self, node: NodeInfo) -> tuple[int, int, str]:
        beat, placed = self._placed.get(node.id, (node.updated_at, 0))
        recent = placed if beat == node.updated_at else 0
        return (node.sessions + recent, node.speakers, node.id)

    def _count(self, node: NodeInfo) -> None:
        beat, placed = self._placed.get(node.id, (node.updated_at, 0))
        self._placed[node.id] = (node.updated_at, (placed if beat == node.updated_at else 0) + 1)

    async def live_nodes(self) -> dict[str, NodeInfo]:
        keys = [key async for key in self._client.scan_iter(match=NODE_KEY + "*", count=100)]
        values = await self._client.mget(keys) if keys else []
        nodes = [NodeInfo.from_json(_str(v)) for v in values if v]
        return {node.id: node for node in nodes}

    async def node(self, node_id: str) -> NodeInfo:
        value = await self._client.get(NODE_KEY + node_id)
        if not value:
            raise Unavailable("node_gone", "the media node of this session is gone")
        return NodeInfo.from_json(_str(value))

    async def node_for_room(self, room: str) -> NodeInfo:
        """The room's node; for a room nobody holds, the least-loaded live node."""
        nodes = await self.live_nodes()
        held = await self._client.get(ROOM_KEY + room)
        holder = _str(held) if held else None
        if holder and holder in nodes:
            return nodes[holder]
        candidates = [n for n in nodes.values() if not n.draining]
        if not candidates:
            raise Unavailable("no_media_node", "no media node is available")
        chosen = min(candidates, key=self._load)
        # Two signaling processes placing the same room at once: the first one wins.
        if holder:  # held by a node that is gone: take it over
            await self._client.set(ROOM_KEY + room, chosen.id, ex=ROOM_TTL_S)
        elif not await self._client.set(ROOM_KEY + room, chosen.id, ex=ROOM_TTL_S, nx=True):
            winner = await self._client.get(ROOM_KEY + room)
            return nodes.get(_str(winner) if winner else "", chosen)
        self._count(chosen)
        return chosen
