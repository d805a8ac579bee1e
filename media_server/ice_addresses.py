"""Pin the host addresses the media server gathers ICE candidates on.

By default aioice offers every interface but loopback. A media server usually
wants one known interface (a container's, a node's), and tests want loopback
only, so `LIVE_INTERPRETER_ICE_HOST_ADDRESSES` replaces aioice's enumeration.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import aioice.ice

_original = aioice.ice.get_host_addresses


def restrict_host_addresses(addresses: Sequence[str]) -> None:
    """Gather host candidates only on `addresses`; an empty list restores the default."""
    if not addresses:
        aioice.ice.get_host_addresses = _original
        return
    parsed = [ipaddress.ip_address(a) for a in addresses]

    def pinned(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [
            str(a) for a in parsed
            if (a.version == 4 and use_ipv4) or (a.version == 6 and use_ipv6)
        ]

    aioice.ice.get_host_addresses = pinned
