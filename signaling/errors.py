"""Every failed request answers `{"error": {"code", "message"}}` with the right status."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from media_server.errors import InterpreterError

log = logging.getLogger(__name__)


class Unauthorized(InterpreterError):
    status = 401


class Forbidden(InterpreterError):
    status = 403


class PreconditionFailed(InterpreterError):
    status = 412


class UnsupportedMediaType(InterpreterError):
    status = 415


class Unprocessable(InterpreterError):
    status = 422

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


RETRY_AFTER_S = 5  # what a 503 (not ready, at capacity) suggests


def json_error(status: int, code: str, message: str) -> web.Response:
    response = web.json_response({"error": {"code": code, "message": message}}, status=status)
    if status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except InterpreterError as exc:
        return json_error(exc.status, exc.code, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        message = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason
        return json_error(exc.status, code, message)
    except Exception:
        log.exception("unhandled error", extra={"path": request.path})
        return json_error(500, "internal", "internal server error")
