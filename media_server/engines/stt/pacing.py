"""Who speaks now, in the order they started, and the pace their interims get.

A voice is a stream whose VAD hears speech (an utterance is open). The recogniser
carries `voices` of them at once at full quality (`capacity.VoiceCapacity`): the
voices that started first keep the normal interim cadence; past that, the next voice
gets every other interim (thinned) and any later one none (paused), and every voice
past capacity is paused while a final has waited longer than a pass. The voice that
started last degrades first; as earlier voices end, later ones move up and their
interims come back. Finals are never touched: they are decoded, oldest first, for
every voice. A silent participant is no voice and costs the recogniser nothing.
"""

from __future__ import annotations

from collections.abc import Hashable

from media_server.engines.stt.base import InterimPace
from media_server.metrics import STT_VOICES_SPEAKING


class SpeakingVoices:
    def __init__(self) -> None:
        self._order: dict[Hashable, None] = {}  # insertion order: who started first

    def started(self, stream: Hashable) -> None:
        self._order.pop(stream, None)  # a new utterance queues behind those speaking now
        self._order[stream] = None
        STT_VOICES_SPEAKING.set(len(self._order))

    def ended(self, stream: Hashable) -> None:
        if stream in self._order:
            del self._order[stream]
            STT_VOICES_SPEAKING.set(len(self._order))

    def pace(self, stream: Hashable, *, voices: int, finals_behind: bool) -> InterimPace:
        """`voices`: how many the recogniser carries now; `finals_behind`: a final has
        waited for the decoder longer than a pass."""
        rank = next((n for n, s in enumerate(self._order) if s == stream), 0)
        if rank < voices:
            return InterimPace.LIVE
        if rank == voices and not finals_behind:
            return InterimPace.THINNED
        return InterimPace.PAUSED
