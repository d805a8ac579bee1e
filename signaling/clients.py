"""Who is calling. The client's address: the peer's own, unless the peer is a proxy
we trust (`TRUSTED_PROXIES`), whose `X-Forwarded-For`/`Forwarded` is then read from
the right, past our own proxies, to the first address we do not trust — the one a
client cannot forge. On a media node, the caller must be signaling (it shows the
shared `NODE_SECRET`), which says whose request it forwards."""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Callable, Iterable

from aiohttp import web
from aiohttp.typedefs import Handler

from media_server.metrics import REQUESTS_REFUSED
from signaling.errors import json_error

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
NODE_SECRET_HEADER = "X-Live-Interpreter-Node"
FORWARDED_FOR = "X-Forwarded-For"
# What a node answers without the node secret: probes (kubelet, load balancers), and
# metrics, which have their own token (`METRICS_TOKEN`).
OPEN_PATHS = ("/healthz", "/readyz", "/metrics")
ClientOf = Callable[[web.Request], str]
CLIENT: web.AppKey[ClientOf] = web.AppKey("client_of")
_FORWARDED_FOR = re.compile(r'for="?\[?([^;,"\]]+)', re.IGNORECASE)


def networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _within(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def _hops(request: web.Request) -> list[str]:
    """The addresses a request passed through, as its proxies recorded them, oldest first."""
    if FORWARDED_FOR in request.headers:
        return [hop.strip() for value in request.headers.getall(FORWARDED_FOR)
                for hop in value.split(",") if hop.strip()]
    hops = [match.group(1) for value in request.headers.getall("Forwarded", [])
            for match in _FORWARDED_FOR.finditer(value)]
    # Forwarded may name a port (`for="192.0.2.7:4711"`); an IPv6 address has colons.
    return [hop.rsplit(":", 1)[0] if hop.count(":") == 1 else hop for hop in hops]


def behind_proxies(trusted_cidrs: Iterable[str]) -> Callable[[web.Request], str]:
    """The client's address as the peer, or the proxies we trust, say it is."""
    trusted = networks(trusted_cidrs)

    def client_of(request: web.Request) -> str:
        remote = request.remote or ""
        if not _within(remote, trusted):
            return remote
        hops = _hops(request)
        for hop in reversed(hops):
            if not _within(hop, trusted):
                return hop
        return hops[0] if hops else remote

    return client_of


def forwarded_by_signaling(request: web.Request) -> str:
    """On a media node (every call has shown the node secret): the client signaling
    forwarded, as signaling resolved it."""
    return request.headers.get(FORWARDED_FOR, "").strip() or request.remote or ""


def client_of(request: web.Request) -> str:
    resolve: ClientOf = request.app[CLIENT]
    return resolve(request)


def node_guard(secret: str) -> web.middleware:  # type: ignore[valid-type]
    """A media node answers only calls that carry the node secret (`OPEN_PATHS` aside)."""
    expected = secret.encode()

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get(NODE_SECRET_HEADER, "").encode(errors="replace")
        if request.path not in OPEN_PATHS and not hmac.compare_digest(given, expected):
            REQUESTS_REFUSED.labels("not_signaling").inc()
            return json_error(403, "node_only",
                              "a media node answers only its signaling servers")
        return await handler(request)

    return guard
