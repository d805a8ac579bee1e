"""A collecting harness for the speaker chain: stands in for the speaker, the
interpreter and the room, and keeps, in order, what each stage handed on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from media_server.interpretation import Outlets
from media_server.protocol import CaptionMessage, ServerMessage, SpeakerState


@dataclass
class Collector:
    to_speaker: list[ServerMessage] = field(default_factory=list)  # errors
    states: list[SpeakerState] = field(default_factory=list)
    captions: list[CaptionMessage] = field(default_factory=list)  # as the pipeline made them
    # What reached the readers of each language, as a room would give it them.
    broadcast: dict[str, list[CaptionMessage]] = field(default_factory=dict)
    kept: list[tuple[CaptionMessage, dict[str, str]]] = field(default_factory=list)
    spoken: list[CaptionMessage] = field(default_factory=list)
    readers: set[str] = field(default_factory=set)
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
                       speak=lambda caption, ends_at: self.spoken.append(caption),
                       wall_time=lambda room_ms: 0.0)

    def _broadcast(self, original: CaptionMessage | None,
                   translated: dict[str, CaptionMessage]) -> None:
        for lang in self.readers:
            caption = translated.get(lang, original)
            if caption is not None:
                self.broadcast.setdefault(lang, []).append(caption)
        self._broadcast_happened.set()
