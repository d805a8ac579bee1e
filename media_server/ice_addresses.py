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


def announce(sdp: str, address: str) -> str:
    """The SDP with the address of its host candidates (and connection lines) replaced by
    `address`: where clients reach a media server whose interface address is private
    (a container with published ports, a cloud VM behind 1:1 NAT). The ports stay: the
    published or forwarded ones must be the same numbers."""
    if not address:
        return sdp
    version = ipaddress.ip_address(address).version
    lines = []
    for line in sdp.split("\r\n"):
        fields = line.split(" ")
        if line.startswith("a=candidate:") and len(fields) > 7 and fields[7] == "host":
            fields[4] = address
            line = " ".join(fields)
        elif line.startswith("c=IN "):
            line = f"c=IN IP{version} {address}"
        lines.append(line)
    return "\r\n".join(lines)
