"""The HTTP access log, without secrets: a token in a query string (old page links,
`?token=`) is logged as `token=…`; headers (`Authorization`) are never logged."""

from __future__ import annotations

import re

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

_SECRET_IN_QUERY = re.compile(r"((?:^|[?&;])(?:token|access_token|secret)=)[^&;#]*",
                              re.IGNORECASE)


def redact(path_qs: str) -> str:
    return _SECRET_IN_QUERY.sub(r"\1…", path_qs)


class AccessLog(AbstractAccessLogger):
    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info("%s %s %s", request.method, redact(request.path_qs), response.status,
                         extra={"remote": request.remote, "status": response.status,
                                "duration_ms": round(time * 1000, 1)})
