"""Translation failover: the providers serving a pair, tried in order within the
chain's deadlines (`engines/health.py`)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from media_server.engines.health import Deadlines, ProviderHealth, attempts
from media_server.engines.translate.base import TranslationFailed, Translator
from media_server.metrics import ENGINE_TIME


class FallbackTranslator:
    def __init__(self, entries: Sequence[tuple[Translator, ProviderHealth]],
                 deadlines: Deadlines) -> None:
        self._entries = list(entries)
        self._deadlines = deadlines
        self.name = self._entries[0][0].name

    def pairs(self) -> frozenset[tuple[str, str]]:
        return frozenset().union(*(t.pairs() for t, _ in self._entries))

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        serving = [e for e in self._entries if (source, target) in e[0].pairs()]
        for attempt in attempts("translate", serving, self._deadlines):
            translator = attempt.provider
            try:
                async with asyncio.timeout_at(attempt.ends_at):
                    with ENGINE_TIME.labels("translate", translator.name).time():
                        return await translator.translate(texts, source, target)
            except Exception as exc:
                attempt.failed(exc)
                if attempt.following is None:
                    raise TranslationFailed(f"every provider failed: {exc!r}") from exc
        raise TranslationFailed(f"no provider translates {source}->{target}")
