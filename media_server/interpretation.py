"""One speaker's captions -> every language read in the room.

Finals are translated (once per target language, concurrently) before they go
out, then archived (the store) and spoken. Interims go out at once in the original
and again with their translations (latest wins, at most every `interval_ms`). A
translation that fails on every provider (the chain's deadlines included) leaves its
readers with the original and an error saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time

from media_server.captions import CaptionBuilder
from media_server.engines.catalog import EngineCatalog
from media_server.metrics import (
    CAPTION_OVERHEAD,
    TRANSLATED_LAG,
    TRANSLATION_TIME,
    TRANSLATIONS,
)
from media_server.participant import Participant
from media_server.protocol import CaptionMessage, ErrorMessage, StateMessage, Translation
from media_server.room import Room
from media_server.store.records import UtteranceRecord

log = logging.getLogger(__name__)


class Interpreter:
    def __init__(
        self,
        catalog: EngineCatalog,
        captions: CaptionBuilder,
        room: Room,
        speaker: Participant,
        interval_ms: int = 300,
        engine: str = "",
    ) -> None:
        self._catalog = catalog
        self._engine = engine  # the speech provider, kept with each final
        self._captions = captions
        self._room = room
        self._speaker = speaker
        self._interval = interval_ms / 1000
        self._latest: CaptionMessage | None = None
        self._wake = asyncio.Event()
        self._debouncer = asyncio.create_task(self._translate_interims(), name="interims")

    async def aclose(self) -> None:
        self._debouncer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._debouncer

    async def on_caption(self, caption: CaptionMessage) -> None:
        targets = self._room.target_languages() - {caption.lang}
        if not caption.text:
            self._room.broadcast(caption, {})  # an empty final closes what is on screen
            return
        if caption.status == "interim":
            self._room.broadcast(caption, {})
            if targets:  # its translations follow, latest first
                self._latest = caption
                self._wake.set()
            return
        self._latest = None
        if targets:
            self._speaker.send(StateMessage("translating"))
        translations = await self._translate(caption, targets)
        translated_at = time.monotonic()
        translated = {lang: dataclasses.replace(caption, translation=Translation(lang, text))
                      for lang, text in translations.items()}
        self._room.broadcast(caption, translated)
        CAPTION_OVERHEAD.observe(time.monotonic() - translated_at)
        ends_at = self._room.wall_time(caption.end_ms)
        if translated:
            TRANSLATED_LAG.observe(max(0.0, time.monotonic() - ends_at))
        self._room.archive(UtteranceRecord(
            session_id=self._speaker.info.id, utterance_id=caption.utterance_id,
            room=self._room.name, speaker_id=caption.speaker_id, speaker=caption.speaker,
            lang=caption.lang, text=caption.text, start_ms=caption.start_ms,
            end_ms=caption.end_ms, engine=self._engine, created_at=time.time(),
            translations=translations))
        for version in translated.values():
            self._room.speech.speak(version, ends_at)

    async def _translate(self, caption: CaptionMessage, targets: set[str]) -> dict[str, str]:
        """The caption's text in each target language that could be translated."""
        langs = sorted(targets)
        results = await asyncio.gather(*(self._translate_one(caption, lang) for lang in langs))
        return {lang: text for lang, text in zip(langs, results, strict=True) if text is not None}

    async def _translate_one(self, caption: CaptionMessage, target: str) -> str | None:
        translator = self._catalog.translator_for(caption.lang, target)
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
            self._room.tell_readers_of(target, ErrorMessage(
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
            targets = self._room.target_languages() - {caption.lang}
            translations = await self._translate(caption, targets)
            revised = {}
            for lang, text in translations.items():
                revision = self._captions.revise(caption, Translation(lang, text))
                if revision is not None:
                    revised[lang] = revision
            self._room.broadcast(None, revised)
            await asyncio.sleep(max(0.0, self._interval - (time.monotonic() - started)))
