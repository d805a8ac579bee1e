"""Room tokens: JWTs (HS256) naming one room and a role (`speaker` may speak and
listen, `listener` only listen), with an expiry; optionally a subject (`sub`: the
sessions a token creates are its subject's) and a `transcript` claim (`true`, or one
meeting's id: reading transcripts). Minted by `live-interpreter token` (or the app
that embeds us, with the same secret); checked on every session call."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from media_server.settings import Settings, SettingsError, secret_weakness
from signaling.errors import Unauthorized

ROLES = ("speaker", "listener")
_HEADER = {"alg": "HS256", "typ": "JWT"}


@dataclass(frozen=True)
class RoomToken:
    room: str
    role: str
    expires_at: int  # epoch seconds
    subject: str = ""  # who it was minted for: a session belongs to it
    token_id: str = ""  # this token's own name (a hash of its signature: no part of the
    # token itself is kept): rate limits count by it
    # May it read transcripts: False, True (of every meeting in the room), or the id
    # of the one meeting it may read.
    transcript: bool | str = False

    @property
    def owner(self) -> str:
        """Whose sessions this token's sessions are: its subject's, or the token's own."""
        return f"sub:{self.subject}" if self.subject else f"token:{self.token_id}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, signing_input: str) -> str:
    return _b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())


def _token_id(signature: str) -> str:
    return hashlib.sha256(signature.encode()).hexdigest()[:24]


def mint(secret: bytes, room: str, *, role: str, ttl_s: int, subject: str = "",
         transcript: bool = False, meeting: str = "") -> str:
    """A token for `room`. `transcript` lets it read the room's transcripts too — of
    one meeting only if `meeting` is given."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    now = int(time.time())
    claims: dict[str, Any] = {"room": room, "role": role, "iat": now, "exp": now + ttl_s}
    if subject:
        claims["sub"] = subject
    if transcript:
        claims["transcript"] = meeting or True
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
        transcript = claims.get("transcript", False)
        token_claims = RoomToken(str(claims["room"]), str(claims["role"]), int(claims["exp"]),
                                 str(claims.get("sub", "")), _token_id(parts[2]),
                                 transcript if isinstance(transcript, str) else transcript is True)
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
    tokens the server accepts. A weak one (short, empty, a placeholder) is refused."""
    if settings.auth_secret:
        secret, source = settings.auth_secret.encode(), "LIVE_INTERPRETER_AUTH_SECRET"
    else:
        path = Path(settings.data_dir) / "auth-secret"
        if not path.exists():
            _create_secret_file(path)
        secret, source = path.read_bytes().strip(), str(path)
    if weakness := secret_weakness(secret):
        raise SettingsError(f"{source} {weakness}"
                            + ("" if settings.auth_secret else " (or delete the file: "
                               "a new one is made)"))
    return secret


def _create_secret_file(path: Path) -> None:
    """Written whole under another name, then linked into place: the file is never seen
    empty or half-written, is its owner's only from the start, and when two processes
    start at once, one wins and both read its secret."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(32))
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
    finally:
        draft.unlink()
