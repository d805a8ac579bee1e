"""Errors a client can cause in a session, with a stable code and the HTTP status that
fits them (the HTTP layer's own are in `signaling/errors.py`)."""

from __future__ import annotations


class InterpreterError(Exception):
    status = 400

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class BadRequest(InterpreterError):
    status = 400


class NotFound(InterpreterError):
    status = 404


class Conflict(InterpreterError):
    status = 409


class TooManyRequests(InterpreterError):
    """This caller holds or asks for more than its share; later, or fewer, will do."""

    status = 429


class Unavailable(InterpreterError):
    """The server cannot take this now (not ready, at capacity); retrying later may work."""

    status = 503

