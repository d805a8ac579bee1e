"""`live-interpreter turn-check`: what a network admin runs against a deployed coturn,
with credentials minted exactly as clients get them: a real allocation (the relayed
address comes back), and, given `--peer`, whether coturn would relay to that address
(a private or metadata address must be refused). The peer check binds a channel
only: coturn answers from its deny list and nothing is ever sent to the peer."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

from aioice.stun import TransactionFailed
from aioice.turn import (
    DEFAULT_ALLOCATION_LIFETIME,
    DEFAULT_CHANNEL_REFRESH_TIME,
    TurnClientMixin,
    TurnClientTcpProtocol,
    TurnClientUdpProtocol,
)

from signaling.turn_credentials import turn_password, turn_username

FIRST_CHANNEL = 0x4000


@dataclass(frozen=True)
class TurnCheck:
    relayed: tuple[str, int]  # the allocation's relayed transport address
    peer_refused: str | None = None  # coturn's refusal of the peer, if it refused


async def check_turn(host: str, port: int, *, secret: str, transport: str = "udp",
                     peer: tuple[str, int] | None = None, username: str | None = None,
                     password: str | None = None, ttl_s: int = 600,
                     tls: ssl.SSLContext | None = None) -> TurnCheck:
    """Allocate on `host:port` over `transport` ("udp", "tcp" or "tls"; raises
    `TransactionFailed` when coturn refuses the credentials) and, with `peer`, ask for
    a channel to it. `username`/`password` override the minted ones (to see that wrong
    ones are refused); `tls` overrides the default certificate checks."""
    username = username or turn_username(ttl_s, "turn-check")
    password = password or turn_password(secret, username)
    loop = asyncio.get_running_loop()
    settings = ((host, port), username, password, DEFAULT_ALLOCATION_LIFETIME,
                DEFAULT_CHANNEL_REFRESH_TIME)
    client: TurnClientMixin
    connection: asyncio.BaseTransport
    if transport in ("tcp", "tls"):
        connection, client = await loop.create_connection(
            lambda: TurnClientTcpProtocol(*settings), host=host, port=port,
            ssl=(tls or ssl.create_default_context()) if transport == "tls" else None)
    else:
        connection, client = await loop.create_datagram_endpoint(
            lambda: TurnClientUdpProtocol(*settings), remote_addr=(host, port))
    try:
        relayed = await client.connect()
        refused = None
        if peer is not None:
            try:
                await client.channel_bind(FIRST_CHANNEL, peer)
            except TransactionFailed as exc:
                refused = str(exc)
        await client.delete()
        return TurnCheck(relayed, refused)
    finally:
        connection.close()
