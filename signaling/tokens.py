"""Room tokens: JWTs (HS256) naming one room and a role (`speaker` may speak and
listen, `listener` only listen), with an expiry. Minted by `live-interpreter token`
(or the app that embeds us, with the same secret); checked on every session call."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from media_server.errors import Unauthorized
from media_server.settings import Settings

ROLES = ("speaker", "listener")
_HEADER = {"alg": "HS256", "typ": "JWT"}


@dataclass(frozen=True)
class RoomToken:
    room: str
    role: str
    expires_at: int  # epoch seconds
    subject: str = ""  # who it was minted for, for the logs


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, signing_input: str) -> str:
    return _b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())


def mint(secret: bytes, room: str, role: str, ttl_s: int, subject: str = "") -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    now = int(time.time())
    claims: dict[str, Any] = {"room": room, "role": role, "iat": now, "exp": now + ttl_s}
    if subject:
        claims["sub"] = subject
    signing_input = (_b64(json.dumps(_HEADER).encode()) + "."
                     + _b64(json.dumps(claims).encode()))
    return signing_input + "." + _sign(secret, signing_input)


def verify(secret: bytes, token: str) -> RoomToken:
    """The token's claims, if its signature is ours and it has not expired."""
    parts = token.split(".")
    if len(parts) != 3 or not token.isascii():  # (compare_digest takes ASCII text only)
        raise Unauthorized("token_invalid", "the token is not a JWT")
    signing_input = parts[0] + "." + parts[1]
    if not hmac.compare_digest(_sign(secret, signing_input), parts[2]):
        raise Unauthorized("token_invalid", "the token's signature does not match")
    try:  # signed by us, yet maybe unreadable (a secret shared with an app that errs)
        header, claims = (json.loads(_unb64(part)) for part in parts[:2])
        token_claims = RoomToken(str(claims["room"]), str(claims["role"]), int(claims["exp"]),
                                 str(claims.get("sub", "")))
        algorithm = header.get("alg")
        expired = token_claims.expires_at <= time.time()
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError,
            RecursionError) as exc:
        raise Unauthorized("token_invalid", "the token's claims cannot be read") from exc
    if algorithm != "HS256" or token_claims.role not in ROLES:
        raise Unauthorized("token_invalid", "the token's algorithm or role is not ours")
    if expired:
        raise Unauthorized("token_expired", "the token has expired")
    return token_claims


def auth_secret(settings: Settings) -> bytes:
    """`AUTH_SECRET`, or one made on first use and kept in the data directory (readable
    by its owner only), so that `live-interpreter token` on the same machine mints
    tokens the server accepts."""
    if settings.auth_secret:
        return settings.auth_secret.encode()
    path = Path(settings.data_dir) / "auth-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with path.open("x") as created:  # two processes starting at once: one writes
                path.chmod(0o600)
                created.write(secrets.token_hex(32))
        except FileExistsError:
            pass
    return path.read_text().strip().encode()
