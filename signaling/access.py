"""Who may do what: a room token (`tokens.py`) as `Authorization: Bearer`, for the
room concerned, with the `speaker` role to speak. Off under `serve --dev` only."""

from __future__ import annotations

import logging

from aiohttp import web

from media_server.errors import Forbidden, Unauthorized
from signaling.tokens import RoomToken, verify

log = logging.getLogger(__name__)


class Access:
    def __init__(self, secret: bytes | None) -> None:
        self._secret = secret  # None: development, nothing is checked

    @property
    def enabled(self) -> bool:
        return self._secret is not None

    def check(self, request: web.Request, room: str, speaking: bool = False) -> None:
        if self._secret is None:
            return
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise Unauthorized("token_missing",
                               "this needs a room token: 'Authorization: Bearer <token>'")
        token: RoomToken = verify(self._secret, given.strip())
        if token.room != room:
            raise Forbidden("token_wrong_room", "the token is for another room")
        if speaking and token.role != "speaker":
            raise Forbidden("role_forbidden", "a listener's token cannot speak")


ACCESS = web.AppKey("access", Access)


def check(request: web.Request, room: str, speaking: bool = False) -> None:
    request.app[ACCESS].check(request, room, speaking)
