"""Provider health and the order of a failover chain: ordered providers of one kind;
one that fails (an error or a timeout) is taken out, the next serves the same request
(`attempts`), and the failed one is probed in the background and brought back once it
answers again. The chains themselves live with their kind: `stt/fallback.py`,
`translate/fallback.py`, `tts/fallback.py`.

Deadlines belong to the chain and to nobody else (`Deadlines`): each provider tried
gets `attempt_s`, its own retries included; the call as a whole gets `budget_s`, and
the last provider tried gets what is left of it. A caller never wraps a chain in a
shorter deadline of its own: a hung provider would then time the caller out before
the chain could ask the next one.

`HealthBoard` keeps the state of every provider and tells subscribers (the
sessions, which tell their clients) when one goes out or comes back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from media_server.metrics import ENGINE_ERRORS, ENGINE_FALLBACKS, ENGINE_UP
from media_server.tasks import cancel_and_wait

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 10.0
P = TypeVar("P")


@dataclass(frozen=True)
class Deadlines:
    attempt_s: float  # one provider, its own retries included; then the next one
    budget_s: float  # the whole call, across providers

    def __post_init__(self) -> None:
        if not 0 < self.attempt_s < self.budget_s:
            raise ValueError(f"need 0 < attempt_s < budget_s (got {self})")

    def attempt_ends(self, call_ends: float, last: bool) -> float:
        """When the attempt starting now must give up (`loop.time()` clock): the last
        provider tried may use the rest of the call's budget."""
        if last:
            return call_ends
        return min(call_ends, asyncio.get_running_loop().time() + self.attempt_s)

    def call_ends(self) -> float:
        return asyncio.get_running_loop().time() + self.budget_s


@dataclass(frozen=True)
class HealthChange:
    kind: str  # "stt", "translate" or "tts"
    provider: str
    healthy: bool
    reason: str = ""


class ProviderHealth:
    def __init__(self, board: HealthBoard, kind: str, *, provider: str,
                 probe: Callable[[], Awaitable[None]]) -> None:
        self._board = board
        self.kind = kind
        self.provider = provider
        self._probe = probe
        self.healthy = True
        self._prober: asyncio.Task[None] | None = None
        ENGINE_UP.labels(kind, provider).set(1)
        # Its counters exist from the start (at 0): a dashboard's rate() of them, and an
        # alert on their increase, see the first error as one.
        ENGINE_ERRORS.labels(kind, provider)
        ENGINE_FALLBACKS.labels(kind, provider)

    def failed(self, reason: str) -> None:
        """A call failed: count it; take the provider out if it was in service."""
        ENGINE_ERRORS.labels(self.kind, self.provider).inc()
        if not self.healthy:
            return
        self.healthy = False
        ENGINE_UP.labels(self.kind, self.provider).set(0)
        log.warning("engine provider taken out", extra={
            "kind": self.kind, "provider": self.provider, "reason": reason})
        self._board.changed(HealthChange(self.kind, self.provider, False, reason))
        self._prober = asyncio.create_task(self._probe_until_healthy(),
                                           name=f"probe-{self.kind}-{self.provider}")

    async def _probe_until_healthy(self) -> None:
        while not self.healthy:
            await asyncio.sleep(self._board.probe_interval_s)
            try:
                async with asyncio.timeout(PROBE_TIMEOUT_S):
                    await self._probe()
            except Exception as exc:
                log.info("engine provider still failing", extra={
                    "kind": self.kind, "provider": self.provider, "reason": repr(exc)})
                continue
            self.healthy = True
            ENGINE_UP.labels(self.kind, self.provider).set(1)
            log.warning("engine provider back in service",
                        extra={"kind": self.kind, "provider": self.provider})
            self._board.changed(HealthChange(self.kind, self.provider, True))

    async def close(self) -> None:
        await cancel_and_wait(self._prober)


class HealthBoard:
    def __init__(self, probe_interval_s: float = 30.0) -> None:
        self.probe_interval_s = probe_interval_s
        self._providers: list[ProviderHealth] = []
        self._listeners: list[Callable[[HealthChange], None]] = []

    def register(self, kind: str, provider: str,
                 probe: Callable[[], Awaitable[None]]) -> ProviderHealth:
        health = ProviderHealth(self, kind, provider=provider, probe=probe)
        self._providers.append(health)
        return health

    def subscribe(self, listener: Callable[[HealthChange], None]) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[HealthChange], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def changed(self, change: HealthChange) -> None:
        for listener in self._listeners:
            listener(change)

    def degraded(self) -> list[HealthChange]:
        return [HealthChange(h.kind, h.provider, False) for h in self._providers
                if not h.healthy]

    async def close(self) -> None:
        await asyncio.gather(*(h.close() for h in self._providers))


def in_order(entries: Sequence[tuple[P, ProviderHealth]]) -> list[tuple[P, ProviderHealth]]:
    """Providers in service first, in their order; those taken out after, as a last resort."""
    return [e for e in entries if e[1].healthy] + [e for e in entries if not e[1].healthy]


def fell_back(kind: str, failed: ProviderHealth, *, reason: str, next_name: str | None) -> None:
    failed.failed(reason)
    if next_name is not None:
        ENGINE_FALLBACKS.labels(kind, failed.provider).inc()
        log.warning("falling back", extra={"kind": kind, "from": failed.provider,
                                           "to": next_name})


class Named(Protocol):
    name: str


N = TypeVar("N", bound=Named)


@dataclass(frozen=True)
class Attempt(Generic[N]):
    """One provider's turn at a call: its deadline and who would be next."""

    kind: str
    provider: N
    health: ProviderHealth
    ends_at: float  # `loop.time()` clock
    following: str | None  # the next provider's name; None for the last one

    def failed(self, exc: Exception, *, fall_back: bool = True) -> None:
        """Take the provider out; `fall_back=False` when the call cannot go on elsewhere
        (a clip already playing)."""
        fell_back(self.kind, self.health, reason=repr(exc),
                  next_name=self.following if fall_back else None)


def attempts(kind: str, entries: Sequence[tuple[N, ProviderHealth]],
             deadlines: Deadlines) -> Iterator[Attempt[N]]:
    """The providers to try for one call, in order, each with its deadline (made as its
    turn comes: the last one tried gets what is left of the call's budget)."""
    ordered = in_order(entries)
    call_ends = deadlines.call_ends()
    for index, (provider, health) in enumerate(ordered):
        last = index + 1 == len(ordered)
        yield Attempt(kind, provider, health, deadlines.attempt_ends(call_ends, last),
                      None if last else ordered[index + 1][0].name)
