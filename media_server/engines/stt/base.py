"""Speech-to-text interfaces: streaming recognisers and the batch recognisers behind them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import numpy as np


class SpeechStreamFailed(RuntimeError):
    """A stream's provider gave up (after its own retries): another must take over."""


class SpeechRequestRefused(SpeechStreamFailed):
    """The provider refused what this stream asked for (a model it lacks there, say):
    the session's error, which says nothing of the provider's health."""


class SpeechEventKind(StrEnum):
    START = "start"  # speech began (an utterance opens)
    INTERIM = "interim"  # a revisable hypothesis of the open utterance
    FINAL = "final"  # the utterance's last word; the next event opens a new one
    END = "end"  # the stream is over; no event follows
    PACE = "pace"  # how often this stream's interims come now changed (`pace`)


class InterimPace(StrEnum):
    """How often a stream's interims are decoded: at the normal cadence, thinned (every
    other one) or paused (finals only) while more voices speak at once than the
    recogniser carries."""

    LIVE = "live"
    THINNED = "thinned"
    PAUSED = "paused"


@dataclass(frozen=True, slots=True)
class SpeechEvent:
    kind: SpeechEventKind
    text: str = ""
    start_ms: int = 0  # from the start of the stream's audio
    end_ms: int = 0
    stability: float = 0.0  # share of `text` that later interims keep (0..1)
    stable_chars: int = 0  # the first `stable_chars` characters of `text` will not change
    pace: InterimPace | None = None  # PACE events: the stream's interims from now on


class SpeechEvents:
    """A stream's events on their way to its one consumer: events, then the end
    (`close`) or a failure (`fail`), which the consumer's loop raises."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[SpeechEvent | BaseException | None] = asyncio.Queue()

    def put(self, event: SpeechEvent) -> None:
        self._queue.put_nowait(event)

    def fail(self, error: BaseException) -> None:
        self._queue.put_nowait(error)

    def close(self) -> None:
        self._queue.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[SpeechEvent]:
        while (item := await self._queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item


class SpeechStream(Protocol):
    """One speaker's audio in, speech events out."""

    def push(self, pcm: bytes) -> None:
        """Add 16-bit mono PCM at the stream's sample rate. Never blocks."""

    def end(self) -> None:
        """No more audio: finish the open utterance, then yield END."""

    async def aclose(self) -> None:
        """Stop at once, dropping pending work."""

    def __aiter__(self) -> AsyncIterator[SpeechEvent]: ...


class SpeechToText(Protocol):
    name: str

    def languages(self) -> frozenset[str]: ...

    def open_stream(
        self, language: str, sample_rate: int = 16000, *, model: str = "",
        failover: bool = False,
    ) -> SpeechStream:
        """`model`: a provider's model name; empty for its default. `failover`: another
        provider stands by, so a stream that hangs should fail at once (the chain moves
        on) rather than spend the time restarting on this provider."""


@dataclass(frozen=True, slots=True)
class DecodeRequest:
    audio: np.ndarray  # float32 mono, 16 kHz
    language: str
    final: bool  # finals may use a costlier search than interims
    context: str = ""  # what the speaker said just before: conditions the decoder


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    no_speech_prob: float = 0.0


class BatchRecognizer(Protocol):
    """A non-streaming recogniser (Whisper): whole utterances in, text out.

    `transcribe` blocks and is CPU-heavy: callers run it in a worker thread.
    """

    name: str

    def final_like_interim(self, audio_s: float) -> bool:
        """Is a final of this much audio decoded exactly as an interim of it (same
        search, same window)? Then an interim that heard all of an utterance's speech
        serves as its final."""

    def languages(self) -> frozenset[str]: ...

    def transcribe(self, requests: Sequence[DecodeRequest]) -> list[Transcript]: ...
