"""Translation interface."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class TranslationFailed(RuntimeError):
    """A provider could not translate (a crashed process, a bad answer)."""


class Translator(Protocol):
    name: str

    def pairs(self) -> frozenset[tuple[str, str]]:
        """The (source, target) language pairs this provider serves."""

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        """Translate each text; the result keeps the order. Never blocks the event loop."""
