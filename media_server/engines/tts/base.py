"""Text-to-speech interface."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


class SynthesisFailed(RuntimeError):
    """A provider could not synthesise (a crashed process, no audio)."""


@dataclass(frozen=True, slots=True)
class PcmChunk:
    pcm: bytes  # s16 little-endian mono
    sample_rate: int


class TextToSpeech(Protocol):
    name: str

    def voices(self) -> dict[str, str]:
        """Language code -> the voice used for it."""

    def synthesize(self, text: str, language: str) -> AsyncIterator[PcmChunk]:
        """Audio for `text`, chunk by chunk (a sentence at a time where the engine can)."""
