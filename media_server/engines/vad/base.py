"""Voice activity detection interface."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class VadEventKind(StrEnum):
    START = "start"  # speech began at `sample`
    PAUSE = "pause"  # speech stopped at `sample`; not yet long enough to be an end
    RESUME = "resume"  # speech came back after a PAUSE: the utterance goes on
    END = "end"  # the PAUSE at `sample` lasted the minimum silence: the utterance is over


@dataclass(frozen=True, slots=True)
class VadEvent:
    kind: VadEventKind
    sample: int  # offset in samples from the start of the stream


class VoiceActivityDetector(Protocol):
    def feed(self, pcm: bytes) -> list[VadEvent]:
        """Take 16 kHz mono s16 PCM of any length; return the events it completes."""
