"""Spoken translation for a room: each part to be spoken (a final's translation, or in
simultaneous interpretation a chunk of it) is synthesised once per language, and the
clip goes to the return track of every participant listening in that language, in
the mode the part is for, who wants to hear it (never the speaker, unless they
turned `monitor` on).

One worker per language keeps clips of a language in order and bounds the work a
room can queue; a language's queue that is full skips the clip (the caption has
gone out already: captions are never dropped, only their spoken form). When synthesis
falls behind, the parts of one utterance waiting together are said as one clip
(fewer, longer clips: one voice, no gaps). A clip goes to its listeners with its
first audio (a sentence, for voices that synthesise sentence by sentence) and grows
as the voice goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from media_server.audio import resample_pcm
from media_server.engines.catalog import EngineCatalog
from media_server.metrics import (
    SPEECH_MERGED,
    SPEECH_QUEUE,
    SPEECH_QUEUE_TIME,
    SYNTHESES,
    SYNTHESIS_TIME,
)
from media_server.participant import Participant
from media_server.playout import RATE as PLAYOUT_RATE
from media_server.playout import Clip
from media_server.protocol import INTERPRETATIONS, ErrorMessage, Interpretation
from media_server.tasks import cancel_and_wait

log = logging.getLogger(__name__)
QUEUE_PER_LANGUAGE = 16
BOTH_MODES: frozenset[Interpretation] = frozenset(INTERPRETATIONS)
_NUMBERED_UTTERANCES = 64  # chunk numbers are kept for this many recent utterances


@dataclass(frozen=True)
class SpokenPart:
    """Words to be said in one language: what a listener in one of `modes` hears."""

    utterance_id: str
    speaker_id: str
    lang: str
    text: str  # in `lang`
    source_text: str  # the words it translates (the echo guard knows them coming back)
    ends_at: float  # when their speech ended (monotonic): listeners hear clips in this order
    modes: frozenset[Interpretation] = BOTH_MODES

    def joined(self, after: SpokenPart) -> SpokenPart:
        """This part and the one after it, said as one."""
        return SpokenPart(self.utterance_id, self.speaker_id, self.lang,
                          f"{self.text} {after.text}",
                          f"{self.source_text} {after.source_text}", after.ends_at, self.modes)


@dataclass(frozen=True)
class _Request:
    part: SpokenPart
    queued_at: float = field(default_factory=time.monotonic)


class SpeechOutput:
    def __init__(self, catalog: EngineCatalog,
                 participants: Callable[[], Iterable[Participant]]) -> None:
        self._catalog = catalog
        self._participants = participants
        self._queues: dict[str, deque[_Request]] = {}
        self._queued: dict[str, asyncio.Event] = {}
        self._workers: list[asyncio.Task[None]] = []
        # The clips made so far per (utterance, language, modes): the next's chunk number.
        self._chunks: OrderedDict[tuple[str, str, frozenset[Interpretation]], int] = (
            OrderedDict())

    def heard_in(self, mode: Interpretation, speaker_id: str, utterance_id: str) -> set[str]:
        """The languages in which someone hears this speaker's utterance in `mode`."""
        return {p.target_lang for p in self._participants()
                if p.hears(p.target_lang, speaker_id, utterance_id=utterance_id, modes=(mode,))}

    def speak(self, part: SpokenPart) -> None:
        if not self._listeners(part):
            return  # nobody would hear it
        queue = self._queues.get(part.lang)
        if queue is None:
            queue = self._queues[part.lang] = deque()
            queued = self._queued[part.lang] = asyncio.Event()
            self._workers.append(asyncio.create_task(self._work(queue, queued),
                                                     name=f"speech-{part.lang}"))
        if len(queue) >= QUEUE_PER_LANGUAGE:
            log.warning("speech queue full; clip skipped",
                        extra={"utterance_id": part.utterance_id, "lang": part.lang})
            return
        queue.append(_Request(part))
        self._queued[part.lang].set()
        SPEECH_QUEUE.inc()

    async def aclose(self) -> None:
        await cancel_and_wait(*self._workers)

    def _listeners(self, part: SpokenPart) -> list[Participant]:
        return [p for p in self._participants() if p.hears(
            part.lang, part.speaker_id, utterance_id=part.utterance_id, modes=part.modes)]

    async def _work(self, queue: deque[_Request], queued: asyncio.Event) -> None:
        while True:
            while not queue:
                queued.clear()
                await queued.wait()
            request = queue.popleft()
            SPEECH_QUEUE.dec()
            SPEECH_QUEUE_TIME.observe(time.monotonic() - request.queued_at)
            part = request.part
            while queue and (queue[0].part.utterance_id, queue[0].part.modes) == (
                    part.utterance_id, part.modes):
                part = part.joined(queue.popleft().part)
                SPEECH_QUEUE.dec()
                SPEECH_MERGED.inc()
            await self._say(part)

    def _chunk_number(self, part: SpokenPart) -> int:
        key = (part.utterance_id, part.lang, part.modes)
        number = self._chunks.pop(key, 0) + 1
        self._chunks[key] = number
        while len(self._chunks) > _NUMBERED_UTTERANCES:
            self._chunks.popitem(last=False)
        return number

    async def _say(self, part: SpokenPart) -> None:
        voice = self._catalog.voice_for(part.lang)
        if voice is None:
            self._tell(part, ErrorMessage("no_voice",
                                          f"no voice speaks {part.lang!r} on this server"))
            return
        SYNTHESES.inc()
        started = time.monotonic()
        clip = Clip(b"", part.utterance_id, part.lang, part.source_text, part.speaker_id,
                    part.ends_at, complete=False, chunk=self._chunk_number(part),
                    text=part.text)
        try:
            async for chunk in voice.synthesize(part.text, part.lang):
                first = not clip.pcm
                clip.append(resample_pcm(chunk.pcm, chunk.sample_rate, PLAYOUT_RATE))
                if first and clip.pcm:
                    for listener in self._listeners(part):
                        listener.play(clip)
        except Exception as exc:
            log.warning("synthesis failed", extra={"error": repr(exc), "provider": voice.name,
                                                   "utterance_id": part.utterance_id})
            self._tell(part, ErrorMessage("tts_failed", "the spoken translation failed"))
        finally:
            clip.finish()  # what was synthesised plays; the track ends the clip there
        SYNTHESIS_TIME.observe(time.monotonic() - started)

    def _tell(self, part: SpokenPart, message: ErrorMessage) -> None:
        for listener in self._listeners(part):
            listener.send(message)
