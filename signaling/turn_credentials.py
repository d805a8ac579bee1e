"""ICE servers for clients, with TURN REST API credentials (the scheme coturn's
`use-auth-secret` checks): username `<expiry>:<id>`, password
base64(HMAC-SHA1(secret, username)). They expire by themselves; nothing is stored.

coturn checks them when a client allocates, not after: they need to live only
while the session connects (`OFFER_TIMEOUT_S`, plus a margin for a slow start), and
never past the room token they were given for. A client that reconnects resumes
its session and gets fresh ones. So credentials handed out are of little use to
anyone who farms them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

from media_server.metrics import TURN_CREDENTIALS
from media_server.settings import Settings
from signaling.tokens import RoomToken

CONNECT_MARGIN_S = 60


def turn_password(secret: str, username: str) -> str:
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def turn_username(ttl_s: int, user_id: str) -> str:
    return f"{int(time.time()) + ttl_s}:{user_id}"


def credential_ttl_s(settings: Settings, token: RoomToken | None) -> int:
    ttl_s = min(settings.turn_credential_ttl_s, int(settings.offer_timeout_s) + CONNECT_MARGIN_S)
    if token is not None:
        ttl_s = min(ttl_s, int(token.expires_at - time.time()))
    return max(ttl_s, 1)


def ice_servers(settings: Settings, user_id: str, token: RoomToken | None = None
                ) -> list[dict[str, Any]]:
    """What a client gets: our STUN and TURN (UDP, TCP, TLS) with credentials valid
    while it connects, plus any other STUN servers configured."""
    servers: list[dict[str, Any]] = [{"urls": [url]} for url in settings.stun_urls]
    if settings.turn_host:
        host = settings.turn_host
        username = turn_username(credential_ttl_s(settings, token), user_id)
        servers.append({"urls": [f"stun:{host}:{settings.turn_port}"]})
        servers.append({
            "urls": [f"turn:{host}:{settings.turn_port}?transport=udp",
                     f"turn:{host}:{settings.turn_port}?transport=tcp",
                     f"turns:{host}:{settings.turn_tls_port}?transport=tcp"],
            "username": username,
            "credential": turn_password(settings.turn_secret, username),
        })
        TURN_CREDENTIALS.inc()
    return servers
