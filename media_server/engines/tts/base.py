"""Text-to-speech interface."""

from __future__ import annotations

import struct
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


def pcm_from_wav(wav: bytes) -> PcmChunk:
    """The PCM of a 16-bit mono WAV. Reads the format, then takes everything after the
    `data` header: streamed WAVs (espeak-ng) carry placeholder sizes."""
    if wav[:4] != b"RIFF" or wav[8:12] != b"WAVE":
        raise SynthesisFailed("not a WAV file")
    (rate,) = struct.unpack("<I", wav[24:28])
    data = wav.find(b"data", 12)
    if data < 0:
        raise SynthesisFailed("a WAV without data")
    pcm = wav[data + 8:]
    return PcmChunk(pcm[: len(pcm) - len(pcm) % 2], rate)
