"""Who may do what: a room token (`tokens.py`) as `Authorization: Bearer`, for the
room concerned, with the `speaker` role to speak. Off under `serve --dev` only."""

from __future__ import annotations

import logging

from aiohttp import web

from media_server.errors import InterpreterError
from signaling.errors import Forbidden, Unauthorized
from signaling.tokens import RoomToken, verify

log = logging.getLogger(__name__)


SUBPROTOCOL = "live-interpreter"  # a browser's WebSocket offers it and `bearer.<token>`


def _bearer(request: web.Request) -> str | None:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and given.strip():
        return given.strip()
    if request.headers.get("Upgrade", "").lower() == "websocket":
        offered = request.headers.get("Sec-WebSocket-Protocol", "").split(",")
        for protocol in (p.strip() for p in offered):
            if protocol.startswith("bearer.") and len(protocol) > len("bearer."):
                return protocol.removeprefix("bearer.")
    return None


class Access:
    def __init__(self, secret: bytes | None) -> None:
        self._secret = secret  # None: development, nothing is checked

    @property
    def enabled(self) -> bool:
        return self._secret is not None

    def check(self, request: web.Request, room: str, speaking: bool = False
              ) -> RoomToken | None:
        """The caller's token, if it lets them into `room` (None under `--dev`)."""
        return self.check_token(_bearer(request), room, speaking)

    def check_token(self, given: str | None, room: str, speaking: bool = False
                    ) -> RoomToken | None:
        """`check` for a token given otherwise than in a header (a Twilio stream's
        parameters)."""
        if self._secret is None:
            return None
        if given is None:
            raise Unauthorized("token_missing",
                               "this needs a room token: 'Authorization: Bearer <token>' (on a "
                               "WebSocket, or the subprotocol 'bearer.<token>')")
        token = verify(self._secret, given)
        if token.room != room:
            raise Forbidden("token_wrong_room", "the token is for another room")
        if speaking and token.role != "speaker":
            raise Forbidden("role_forbidden", "a listener's token cannot speak")
        return token

    def token_of(self, request: web.Request) -> RoomToken | None:
        """The caller's token if it is a valid one, whatever room it is for; no error."""
        given = _bearer(request)
        if self._secret is None or given is None:
            return None
        try:
            return verify(self._secret, given)
        except InterpreterError:
            return None


ACCESS = web.AppKey("access", Access)


def check_owner(token: RoomToken | None, owner: str) -> None:
    """A session is its creator's: the same subject, or for a token without one, the
    same token. (Under `--dev`, with no tokens, anyone's.)"""
    if token is not None and token.owner != owner:
        raise Forbidden("session_forbidden", "this session belongs to someone else: use "
                        "a token of the subject that created it")


def check(request: web.Request, room: str, speaking: bool = False) -> RoomToken | None:
    return request.app[ACCESS].check(request, room, speaking)
