"""A collecting harness for the speaker chain: stands in for the speaker, the
interpreter and the room, and keeps, in order, what each stage handed on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from media_server.engines.translate.base import Translator
from media_server.interpretation import Outlets
from media_server.protocol import CaptionMessage, Interpretation, ServerMessage, SpeakerState
from media_server.simultaneous import SpokenTranslation
from media_server.speech_output import SpokenPart


@dataclass
class Collector:
    to_speaker: list[ServerMessage] = field(default_factory=list)  # errors
    states: list[SpeakerState] = field(default_factory=list)
    captions: list[CaptionMessage] = field(default_factory=list)  # as the pipeline made them
    # What reached the readers of each language, as a room would give it them.
    broadcast: dict[str, list[CaptionMessage]] = field(default_factory=dict)
    kept: list[tuple[CaptionMessage, dict[str, str]]] = field(default_factory=list)
    spoken: list[SpokenPart] = field(default_factory=list)
    readers: set[str] = field(default_factory=set)
    # The languages heard in each interpretation mode (every utterance alike).
    hearing: dict[Interpretation, set[str]] = field(default_factory=dict)
    _broadcast_happened: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        """Until `condition` holds, checked after each broadcast."""
        while not condition():
            self._broadcast_happened.clear()
            await self._broadcast_happened.wait()

    # -- the speaker ------------------------------------------------------------

    def send(self, message: ServerMessage) -> None:
        self.to_speaker.append(message)

    def speaker_state(self, state: SpeakerState) -> None:
        self.states.append(state)

    # -- the interpreter (a pipeline's sink) --------------------------------------

    async def on_caption(self, caption: CaptionMessage) -> None:
        self.captions.append(caption)

    # -- the room ------------------------------------------------------------------

    def outlets(self) -> Outlets:
        return Outlets(readers=lambda: set(self.readers), broadcast=self._broadcast,
                       tell_readers_of=lambda lang, message: self.send(message),
                       keep=lambda final, translations: self.kept.append((final, translations)),
                       wall_time=lambda room_ms: 0.0)

    def spoken_translation(self, translator_for: Callable[[str, str], Translator | None],
                           speaker_id: str = "") -> SpokenTranslation:
        return SpokenTranslation(
            speaker_id, translator_for=translator_for,
            heard_in=lambda mode, speaker, utterance: set(self.hearing.get(mode, set())),
            speak=self._speak, wall_time=lambda room_ms: room_ms / 1000)

    def _speak(self, part: SpokenPart) -> None:
        self.spoken.append(part)
        self._broadcast_happened.set()

    def _broadcast(self, original: CaptionMessage | None,
                   translated: dict[str, CaptionMessage]) -> None:
        for lang in self.readers:
            caption = translated.get(lang, original)
            if caption is not None:
                self.broadcast.setdefault(lang, []).append(caption)
        self._broadcast_happened.set()
