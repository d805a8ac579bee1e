"""Captions -> the listener's language: finals translated before they go out, interims
sent at once and again with their translation (latest wins, at most every
`interval_ms`), final translations handed on to be spoken."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable

from media_server.captions import CaptionBuilder
from media_server.engines.catalog import EngineCatalog
from media_server.protocol import (
    CaptionMessage,
    ErrorMessage,
    ServerMessage,
    StateMessage,
    Translation,
)

log = logging.getLogger(__name__)
TRANSLATE_TIMEOUT_S = 5.0


class Interpreter:
    def __init__(
        self,
        catalog: EngineCatalog,
        captions: CaptionBuilder,
        target: Callable[[], str],
        send: Callable[[ServerMessage], None],
        speak: Callable[[CaptionMessage], None],
        interval_ms: int = 300,
    ) -> None:
        self._catalog = catalog
        self._captions = captions
        self._target = target
        self._send = send
        self._speak = speak
        self._interval = interval_ms / 1000
        self._latest: CaptionMessage | None = None
        self._wake = asyncio.Event()
        self._debouncer = asyncio.create_task(self._translate_interims(), name="interims")

    async def aclose(self) -> None:
        self._debouncer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._debouncer

    async def on_caption(self, caption: CaptionMessage) -> None:
        target = self._target()
        if target == caption.lang or not caption.text:
            self._send(caption)  # nothing to translate (an empty final closes an interim)
            return
        if caption.status == "interim":
            self._send(caption)
            self._latest = caption
            self._wake.set()
            return
        self._latest = None
        self._send(StateMessage("translating"))
        text = await self._translate(caption.text, caption.lang, target)
        translated = caption if text is None else dataclasses.replace(
            caption, translation=Translation(target, text))
        self._send(translated)
        if translated.translation is not None:
            self._speak(translated)

    async def _translate(self, text: str, source: str, target: str) -> str | None:
        translator = self._catalog.translator_for(source, target)
        if translator is None:
            return None  # the pair was refused at session creation / set_language
        try:
            [result] = await asyncio.wait_for(
                translator.translate([text], source, target), TRANSLATE_TIMEOUT_S)
        except Exception as exc:
            log.warning("translation failed", extra={"error": repr(exc),
                                                     "provider": translator.name})
            self._send(ErrorMessage("translation_failed",
                                    f"could not translate into {target!r}; showing the original"))
            return None
        return result

    async def _translate_interims(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            caption, self._latest = self._latest, None
            if caption is None:
                continue
            started = time.monotonic()
            target = self._target()
            if target != caption.lang:
                text = await self._translate(caption.text, caption.lang, target)
                if text is not None:
                    revised = self._captions.revise(caption, Translation(target, text))
                    if revised is not None:
                        self._send(revised)
            await asyncio.sleep(max(0.0, self._interval - (time.monotonic() - started)))
