"""Which of a client's ICE candidates the node sends connectivity checks to. A client
names the addresses; unchecked, that makes the node probe whatever it is told: the
private network it runs in, the cloud's metadata address, its own loopback, or a
`.local` name it would resolve by multicast DNS. Only public unicast addresses are
used, plus the networks an operator allows (`ICE_ALLOWED_NETWORKS`; `serve --dev`
allows loopback and private ranges: a developer's own machine and LAN), and at most
`MAX_CANDIDATES` per session."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable

from media_server.metrics import ICE_CANDIDATES_REFUSED

log = logging.getLogger(__name__)
MAX_CANDIDATES = 32
# What `serve --dev` allows besides public addresses: never link-local (metadata).
LOCAL_NETWORKS = ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                  "100.64.0.0/10", "fc00::/7")


class RemoteCandidates:
    def __init__(self, allowed_networks: Iterable[str]) -> None:
        self._allowed = [ipaddress.ip_network(n, strict=False) for n in allowed_networks]
        self.taken = 0

    def refusal(self, address: str) -> str | None:
        """Why a candidate with this connection address is not used, or None."""
        if self.taken >= MAX_CANDIDATES:
            return "too_many"
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return "name"  # `.local` (mDNS) or any other name: nothing is resolved
        if not any(ip in network for network in self._allowed) and (
                not ip.is_global or ip.is_multicast):
            return "address"
        return None

    def take(self, address: str) -> bool:
        """Whether to use a candidate; counts it if so, and the refusal if not."""
        reason = self.refusal(address)
        if reason is not None:
            ICE_CANDIDATES_REFUSED.labels(reason).inc()
            log.info("remote candidate refused", extra={"reason": reason})
            return False
        self.taken += 1
        return True

    def filter_sdp(self, sdp: str) -> str:
        """The offer without the candidate lines it may not use."""
        kept = []
        for line in sdp.splitlines(keepends=True):
            if line.startswith("a=candidate:"):
                fields = line.split()
                if len(fields) < 6 or not self.take(fields[4]):
                    continue
            kept.append(line)
        return "".join(kept)
