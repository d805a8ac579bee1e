"""Voice failover: the voices speaking a language, tried in order within the chain's
deadlines (`engines/health.py`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence

from media_server.engines.health import Deadlines, ProviderHealth, attempts
from media_server.engines.tts.base import PcmChunk, SynthesisFailed, TextToSpeech
from media_server.metrics import ENGINE_TIME


class FallbackTts:
    """A clip that fails before its first audio is retried on the next voice; one that
    fails midway is cut short (playing the start twice would be worse). The deadlines
    bound the wait for the first audio; each later chunk may take `attempt_s`."""

    def __init__(self, entries: Sequence[tuple[TextToSpeech, ProviderHealth]],
                 deadlines: Deadlines) -> None:
        self._entries = list(entries)
        self._deadlines = deadlines
        self.name = self._entries[0][0].name

    def voices(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for voice, _ in reversed(self._entries):  # the preferred provider wins
            merged.update(voice.voices())
        return merged

    async def synthesize(self, text: str, language: str) -> AsyncIterator[PcmChunk]:
        speaking = [e for e in self._entries if language in e[0].voices()]
        for attempt in attempts("tts", speaking, self._deadlines):
            voice = attempt.provider
            started = False
            began = time.monotonic()
            chunks = aiter(voice.synthesize(text, language))
            try:
                while True:
                    if started:  # the clip is playing: each chunk has a deadline of its own
                        ends = asyncio.get_running_loop().time() + self._deadlines.attempt_s
                    else:
                        ends = attempt.ends_at
                    async with asyncio.timeout_at(ends):
                        chunk = await anext(chunks, None)
                    if chunk is None:  # timed for the provider that actually spoke
                        ENGINE_TIME.labels("tts", voice.name).observe(time.monotonic() - began)
                        return
                    started = True
                    yield chunk
            except Exception as exc:
                attempt.failed(exc, fall_back=not started)
                if started or attempt.following is None:
                    raise SynthesisFailed(f"synthesis failed: {exc!r}") from exc
            finally:
                close = getattr(chunks, "aclose", None)
                if close is not None:
                    await close()
        raise SynthesisFailed(f"no voice speaks {language!r}")
