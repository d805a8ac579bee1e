"""Spoken translation for a room: each final is synthesised once per language, and the
clip goes to the return track of every participant listening in that language who
wants to hear it (never the speaker, unless they turned `monitor` on).

One worker per language keeps clips of a language in order and bounds the work a
room can queue; a language's queue that is full skips the clip (the caption has
gone out already: captions are never dropped, only their spoken form). A clip goes
to its listeners with its first audio (a sentence, for voices that synthesise
sentence by sentence) and grows as the voice goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from media_server.audio import resample_pcm
from media_server.engines.catalog import EngineCatalog
from media_server.metrics import (
    SPEECH_QUEUE,
    SPEECH_QUEUE_TIME,
    SYNTHESES,
    SYNTHESIS_TIME,
)
from media_server.participant import Participant
from media_server.playout import RATE as PLAYOUT_RATE
from media_server.playout import Clip
from media_server.protocol import CaptionMessage, ErrorMessage
from media_server.tasks import cancel_and_wait

log = logging.getLogger(__name__)
QUEUE_PER_LANGUAGE = 16


@dataclass(frozen=True)
class _Request:
    caption: CaptionMessage  # a final with its translation
    ends_at: float  # when the speech ended (monotonic): listeners hear clips in this order
    queued_at: float = field(default_factory=time.monotonic)


class SpeechOutput:
    def __init__(self, catalog: EngineCatalog,
                 participants: Callable[[], Iterable[Participant]]) -> None:
        self._catalog = catalog
        self._participants = participants
        self._queues: dict[str, asyncio.Queue[_Request]] = {}
        self._workers: list[asyncio.Task[None]] = []

    def speak(self, caption: CaptionMessage, ends_at: float) -> None:
        assert caption.translation is not None
        lang = caption.translation.lang
        if not self._listeners(lang, caption.speaker_id):
            return  # nobody would hear it
        queue = self._queues.get(lang)
        if queue is None:
            queue = self._queues[lang] = asyncio.Queue(QUEUE_PER_LANGUAGE)
            self._workers.append(asyncio.create_task(self._work(lang, queue),
                                                     name=f"speech-{lang}"))
        try:
            queue.put_nowait(_Request(caption, ends_at))
            SPEECH_QUEUE.inc()
        except asyncio.QueueFull:
            log.warning("speech queue full; clip skipped",
                        extra={"utterance_id": caption.utterance_id, "lang": lang})

    async def aclose(self) -> None:
        await cancel_and_wait(*self._workers)

    def _listeners(self, lang: str, speaker_id: str) -> list[Participant]:
        return [p for p in self._participants() if p.hears(lang, speaker_id)]

    async def _work(self, lang: str, queue: asyncio.Queue[_Request]) -> None:
        while True:
            request = await queue.get()
            SPEECH_QUEUE.dec()
            await self._speak(request, lang)

    async def _speak(self, request: _Request, lang: str) -> None:
        caption = request.caption
        assert caption.translation is not None
        voice = self._catalog.voice_for(lang)
        if voice is None:
            self._tell(lang, caption.speaker_id,
                       ErrorMessage("no_voice", f"no voice speaks {lang!r} on this server"))
            return
        SYNTHESES.inc()
        started = time.monotonic()
        SPEECH_QUEUE_TIME.observe(started - request.queued_at)
        clip = Clip(b"", caption.utterance_id, lang, caption.text, caption.speaker_id,
                    request.ends_at, complete=False)
        try:
            async for chunk in voice.synthesize(caption.translation.text, lang):
                first = not clip.pcm
                clip.append(resample_pcm(chunk.pcm, chunk.sample_rate, PLAYOUT_RATE))
                if first and clip.pcm:
                    for listener in self._listeners(lang, clip.speaker_id):
                        listener.play(clip)
        except Exception as exc:
            log.warning("synthesis failed", extra={"error": repr(exc), "provider": voice.name,
                                                   "utterance_id": caption.utterance_id})
            self._tell(lang, caption.speaker_id,
                       ErrorMessage("tts_failed", "the spoken translation failed"))
        finally:
            clip.finish()  # what was synthesised plays; the track ends the clip there
        SYNTHESIS_TIME.observe(time.monotonic() - started)

    def _tell(self, lang: str, speaker_id: str, message: ErrorMessage) -> None:
        for listener in self._listeners(lang, speaker_id):
            listener.send(message)
