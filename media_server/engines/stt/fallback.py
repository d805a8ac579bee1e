"""Speech-to-text failover: a stream fed to one provider at a time. When it fails, the
next provider's stream opens and first hears again the audio no final covers yet,
so the utterance in flight is finished there, not lost. After each final, a
preferred provider that is back in service takes over again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from media_server.audio import STT_SAMPLE_RATE, ms_to_samples, samples_to_ms
from media_server.engines.health import ProviderHealth, fell_back, in_order
from media_server.engines.stt.base import (
    SpeechEvent,
    SpeechEventKind,
    SpeechRequestRefused,
    SpeechStream,
    SpeechStreamFailed,
    SpeechToText,
)
from media_server.engines.stt.recognize_stream import RecognizeStream
from media_server.engines.stt.uncovered_audio import ReplayWindow

log = logging.getLogger(__name__)

# What a substitute hears again. Outside an utterance: speech the failed provider may
# have left unreported (a hung provider is found out after at most twice its stall
# timeout; Google: 2 x 5 s by default, 1 x when a substitute stands by).
REPLAY = ReplayWindow(quiet_ms=12000, speaking_ms=30000)
REPLAY_SLICE_MS = 1000  # replayed audio goes in slices, letting the event loop breathe


class FallbackSpeech:
    def __init__(self, entries: Sequence[tuple[SpeechToText, ProviderHealth]]) -> None:
        self._entries = list(entries)
        self.name = self._entries[0][0].name

    def languages(self) -> frozenset[str]:
        return frozenset().union(*(p.languages() for p, _ in self._entries))

    def open_stream(self, language: str, sample_rate: int = STT_SAMPLE_RATE,
                    *, model: str = "", failover: bool = False) -> FallbackSpeechStream:
        entries = [e for e in self._entries if language in e[0].languages()]
        if not entries:
            raise ValueError(f"no speech provider supports {language!r}")
        return FallbackSpeechStream(entries, language, sample_rate=sample_rate, model=model)


class FallbackSpeechStream(RecognizeStream):
    def __init__(self, entries: list[tuple[SpeechToText, ProviderHealth]], language: str,
                 *, sample_rate: int, model: str) -> None:
        super().__init__(REPLAY, name="stt-fallback")
        self._entries = entries
        self._open_args = (language, sample_rate, model)
        self._utterance_open = False
        self._replaying = False  # new audio waits in the backlog while a substitute catches up
        self._failures_in_row = 0
        self._refused_by: set[str] = set()  # providers that refused this stream's request
        self._current = in_order(entries)[0]
        self._origin = 0  # the sample where the current provider's stream began
        self._inner: SpeechStream = self._open(self._current[0])

    @property
    def provider(self) -> str:
        return self._current[0].name

    def _open(self, provider: SpeechToText) -> SpeechStream:
        language, rate, model = self._open_args
        return provider.open_stream(language, rate, model=model, failover=len(self._entries) > 1)

    def _pushed(self, pcm: bytes) -> None:
        if self._replaying:
            return  # the substitute hears it after the replay
        self._audio.keep_window(utterance_open=self._utterance_open)
        self._inner.push(pcm)

    def _ending(self) -> None:
        self._inner.end()

    async def _closing(self) -> None:
        await self._inner.aclose()

    # -- following the current provider ---------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                finished = await self._follow()
            except Exception as exc:
                self._failures_in_row += 1
                if not await self._take_over(exc):
                    raise SpeechStreamFailed(f"speech recognition: {exc!r}") from exc
                continue
            if finished:
                return
            await self._switch(self._preferred())  # back to a provider that recovered

    async def _follow(self) -> bool:
        """Pass the current stream's events on; True at its END, False when a preferred
        provider is back and a final has just made it a good moment to switch."""
        origin_ms = samples_to_ms(self._origin)
        async for event in self._inner:
            if event.kind is SpeechEventKind.END:
                self._events.put(event)
                return True
            event = SpeechEvent(event.kind, event.text, event.start_ms + origin_ms,
                                event.end_ms + origin_ms, event.stability, event.stable_chars)
            if event.kind is SpeechEventKind.START:
                if self._utterance_open:
                    continue  # a substitute hearing the open utterance again
                self._utterance_open = True
            elif not self._utterance_open:
                self._utterance_open = True
                self._events.put(SpeechEvent(SpeechEventKind.START,
                                                    start_ms=event.start_ms))
            self._events.put(event)
            self._failures_in_row = 0
            if event.kind is SpeechEventKind.FINAL:
                self._utterance_open = False
                self._audio.cover(ms_to_samples(event.end_ms))
                if self._preferred() is not self._current and not self._ended:
                    return False
        raise SpeechStreamFailed("the stream stopped without END")

    def _usable(self) -> list[tuple[SpeechToText, ProviderHealth]]:
        """The providers in order, less those that refused this stream (they would again)."""
        return [e for e in in_order(self._entries) if e[0].name not in self._refused_by]

    def _preferred(self) -> tuple[SpeechToText, ProviderHealth]:
        return (self._usable() or [self._current])[0]

    async def _take_over(self, exc: Exception) -> bool:
        """The current provider failed: the next one in service hears the backlog."""
        failed = self._current
        if isinstance(exc, SpeechRequestRefused):
            self._refused_by.add(failed[0].name)
        candidates = [e for e in self._usable() if e is not failed]
        # Every provider has failed on this stream with nothing heard in between: stop.
        following = candidates[0] if candidates and \
            self._failures_in_row < len(self._entries) else None
        if isinstance(exc, SpeechRequestRefused):  # this stream's request, not the provider
            log.warning("speech provider refused this stream's request", extra={
                "provider": failed[0].name, "error": str(exc),
                "to": following[0].name if following else None})
        else:
            fell_back("stt", failed[1], reason=repr(exc),
                      next_name=following[0].name if following else None)
        if following is None:
            return False
        await self._switch(following)
        return True

    async def _switch(self, entry: tuple[SpeechToText, ProviderHealth]) -> None:
        old = self._inner
        self._current = entry
        self._origin = self._audio.replay_from(self._audio.covered)
        self._inner = self._open(entry[0])
        log.info("speech provider for this stream", extra={
            "provider": entry[0].name,
            "replay_ms": samples_to_ms(self._audio.end - self._origin)})
        self._replaying = True
        try:
            await old.aclose()
            replayed = self._origin
            while replayed < self._audio.end:  # audio pushed meanwhile is included
                last = min(self._audio.end, replayed + ms_to_samples(REPLAY_SLICE_MS))
                self._inner.push(self._audio.slice(replayed, last))
                replayed = last
                await asyncio.sleep(0)
        finally:
            self._replaying = False
        if self._ended:
            self._inner.end()
