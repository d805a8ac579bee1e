"""Requests per caller: a token bucket each (`RATE_LIMIT_PER_S` sustained,
`RATE_LIMIT_BURST` at once) on the API, WHIP and WHEP; past it, 429 with
`Retry-After`. A caller is its room token when it shows a valid one (people behind
one NAT or proxy do not share a bucket), else its address (`clients.py`). The
buckets not used for a while are forgotten, so memory stays bounded whoever knocks."""

from __future__ import annotations

import math
import time
from collections import OrderedDict

from aiohttp import web
from aiohttp.typedefs import Handler

from media_server.metrics import REQUESTS_REFUSED
from signaling.access import ACCESS
from signaling.clients import client_of
from signaling.cors import API_PREFIXES
from signaling.errors import json_error

MAX_ADDRESSES = 100_000


class RateLimiter:
    def __init__(self, per_s: float, burst: int) -> None:
        self._per_s = per_s
        self._burst = burst
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    def take(self, address: str) -> float:
        """0 when the request may go ahead, else the seconds until it could."""
        now = time.monotonic()
        tokens, at = self._buckets.pop(address, (float(self._burst), now))
        tokens = min(self._burst, tokens + (now - at) * self._per_s)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / self._per_s
        self._buckets[address] = (tokens - 1 if not wait else tokens, now)  # newest last
        while len(self._buckets) > MAX_ADDRESSES:
            self._buckets.popitem(last=False)
        return wait

    def middleware(self) -> web.middleware:  # type: ignore[valid-type]
        @web.middleware
        async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path.startswith(API_PREFIXES):
                wait = self.take(caller(request))
                if wait:
                    REQUESTS_REFUSED.labels("rate_limit").inc()
                    response = json_error(429, "rate_limited", "too many requests; slow down")
                    response.headers["Retry-After"] = str(math.ceil(wait))
                    return response
            return await handler(request)

        return rate_limit


def caller(request: web.Request) -> str:
    """Whose bucket a request takes from: its valid token's, else its address's (an
    invalid token is no way to a fresh bucket)."""
    token = request.app[ACCESS].token_of(request)
    return f"token:{token.token_id}" if token is not None else f"address:{client_of(request)}"
