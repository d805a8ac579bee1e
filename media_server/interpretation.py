"""One speaker's captions -> every language read in the room.

Finals are translated (once per target language, concurrently) before they go
out, then kept (the store) and handed with their translations to the spoken side
(`simultaneous.py`), which also gets every interim with a stable prefix. Interims go
out at once in the original and again with their translations (latest wins, at most
every `interval_ms`). A translation that fails on every provider (the chain's
deadlines included) leaves its readers with the original and an error saying so.
Every caption leaves through this class's `CaptionRevisions`, the one place that
numbers them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from media_server.captions import CaptionRevisions
from media_server.engines.translate.base import Translator
from media_server.metrics import (
    CAPTION_OVERHEAD,
    TRANSLATED_LAG,
    TRANSLATION_TIME,
    TRANSLATIONS,
)
from media_server.pipeline import Speaker
from media_server.protocol import CaptionMessage, ErrorMessage, ServerMessage, Translation
from media_server.simultaneous import SpokenTranslation
from media_server.tasks import cancel_and_wait

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outlets:
    """Where an interpreter's work goes: in a session, the room's."""

    readers: Callable[[], set[str]]  # the languages read now
    # Each reader gets the version in their language, else the original (None: nothing).
    broadcast: Callable[[CaptionMessage | None, dict[str, CaptionMessage]], None]
    tell_readers_of: Callable[[str, ServerMessage], None]  # (language, message)
    keep: Callable[[CaptionMessage, dict[str, str]], None]  # a final and its translations
    wall_time: Callable[[int], float]  # the monotonic time of a point on the room's clock


class Interpreter:
    def __init__(self, speaker: Speaker, outlets: Outlets, *,
                 translator_for: Callable[[str, str], Translator | None],
                 spoken: SpokenTranslation, interval_ms: int = 300) -> None:
        self._speaker = speaker
        self._out = outlets
        self._spoken = spoken
        self._translator_for = translator_for
        self._interval = interval_ms / 1000
        self._revisions = CaptionRevisions()
        self._latest: CaptionMessage | None = None
        self._wake = asyncio.Event()
        self._debouncer = asyncio.create_task(self._translate_interims(), name="interims")

    async def aclose(self) -> None:
        """Stop; an utterance still open (the speaker left mid-sentence) is closed on
        everyone's screen."""
        await cancel_and_wait(self._debouncer)
        closing = self._revisions.close()
        if closing is not None:
            self._out.broadcast(closing, {})

    async def on_caption(self, caption: CaptionMessage) -> None:
        targets = self._out.readers() - {caption.lang}
        if not caption.text or caption.status == "interim":
            # An interim goes out at once and its translations follow, latest first; an
            # empty final closes what is on screen.
            self._out.broadcast(self._revisions.number(caption), {})
            if caption.text and targets:
                self._latest = caption
                self._wake.set()
                self._spoken.interim(caption)
            return
        self._latest = None
        final = self._revisions.number(caption)  # translated interims of it are now late
        if targets:
            self._speaker.speaker_state("translating")
        translations = await self._translate(final, targets)
        translated_at = time.monotonic()
        translated = {lang: dataclasses.replace(final, translation=Translation(lang, text))
                      for lang, text in translations.items()}
        self._out.broadcast(final, translated)
        CAPTION_OVERHEAD.observe(time.monotonic() - translated_at)
        ends_at = self._out.wall_time(caption.end_ms)
        if translated:
            TRANSLATED_LAG.observe(max(0.0, time.monotonic() - ends_at))
        self._out.keep(final, translations)
        self._spoken.final(final, translations, ends_at)

    async def _translate(self, caption: CaptionMessage, targets: set[str]) -> dict[str, str]:
        """The caption's text in each target language that could be translated."""
        langs = sorted(targets)
        results = await asyncio.gather(*(self._translate_one(caption, lang) for lang in langs))
        return {lang: text for lang, text in zip(langs, results, strict=True) if text is not None}

    async def _translate_one(self, caption: CaptionMessage, target: str) -> str | None:
        translator = self._translator_for(caption.lang, target)
        if translator is None:
            return None  # nobody serves the pair: its readers get the original
        TRANSLATIONS.labels(caption.status).inc()
        started = time.monotonic()
        try:  # (the chain owns the deadline: failing over needs all of it)
            [result] = await translator.translate([caption.text], caption.lang, target)
        except Exception as exc:
            log.warning("translation failed", extra={
                "error": repr(exc), "provider": translator.name, "target": target,
                "utterance_id": caption.utterance_id})
            self._out.tell_readers_of(target, ErrorMessage(
                "translation_failed", f"could not translate into {target!r}; showing the original"))
            return None
        if caption.status == "final":
            TRANSLATION_TIME.observe(time.monotonic() - started)
        return result

    async def _translate_interims(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            caption, self._latest = self._latest, None
            if caption is None:
                continue
            started = time.monotonic()
            targets = self._out.readers() - {caption.lang}
            translations = await self._translate(caption, targets)
            revised = {}
            for lang, text in translations.items():
                revision = self._revisions.translated(caption, Translation(lang, text))
                if revision is not None:
                    revised[lang] = revision
            self._out.broadcast(None, revised)
            await asyncio.sleep(max(0.0, self._interval - (time.monotonic() - started)))
