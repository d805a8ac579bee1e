"""The shape of a speech stream run by a background task (LiveKit's
`RecognizeStream` is the model): the base owns the audio no final covers yet, the
events channel and the task; a provider writes `_run`, which reads `self._audio`,
puts events and returns at the end (or raises `SpeechStreamFailed`)."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator

from media_server.engines.stt.base import SpeechEvent, SpeechEvents, SpeechStreamFailed
from media_server.engines.stt.uncovered_audio import ReplayWindow, UncoveredAudio
from media_server.tasks import cancel_and_wait

log = logging.getLogger(__name__)


class RecognizeStream(ABC):
    def __init__(self, window: ReplayWindow, *, name: str) -> None:
        self._audio = UncoveredAudio(window)
        self._events = SpeechEvents()
        self._ended = False  # no more audio comes (end() or aclose())
        self._task = asyncio.create_task(self._main(), name=name)

    # -- the SpeechStream protocol ----------------------------------------------

    def push(self, pcm: bytes) -> None:
        if not self._ended:
            self._audio.append(pcm)
            self._pushed(pcm)

    def end(self) -> None:
        self._ended = True
        self._ending()

    async def aclose(self) -> None:
        self._ended = True
        await cancel_and_wait(self._task)
        await self._closing()
        self._events.close()

    def __aiter__(self) -> AsyncIterator[SpeechEvent]:
        return aiter(self._events)

    # -- what a provider writes -------------------------------------------------

    @abstractmethod
    async def _run(self) -> None:
        """Recognise until the audio is all heard after `end()`."""

    @abstractmethod
    def _pushed(self, pcm: bytes) -> None:
        """New audio was kept in `self._audio`."""

    @abstractmethod
    def _ending(self) -> None:
        """`end()` was called: no more audio comes."""

    @abstractmethod
    async def _closing(self) -> None:
        """After the task has stopped, in `aclose()`: release what the provider holds."""

    async def _main(self) -> None:
        try:
            await self._run()
        except SpeechStreamFailed as exc:
            self._events.fail(exc)
        except Exception as exc:  # a bug: the consumer hears of it rather than waiting on
            log.exception("speech stream stopped")
            self._events.fail(SpeechStreamFailed(f"speech stream stopped: {exc!r}"))
        else:
            self._events.close()
