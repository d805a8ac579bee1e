"""A member of a room as the room sees them: who they are, the language they read and
hear, whether spoken translation reaches them, their return track and their side of
the data channel. The peer connection that carries all this lives in `peer.py`."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass

from history.records import SessionDescription
from media_server.channel import MessageChannel
from media_server.echo_guard import EchoGuard
from media_server.metrics import SPEECH_DELAY
from media_server.playout import Clip, PlayoutTrack
from media_server.protocol import (
    Interpretation,
    ParticipantInfo,
    PlayoutState,
    PlayoutStateMessage,
    ServerMessage,
    SpeakerState,
    SpeakerStateMessage,
    SpeechMessage,
    StateMessage,
)

log = logging.getLogger(__name__)
_MODES_KEPT = 64  # utterances whose interpretation mode is remembered


@dataclass(frozen=True)
class SessionInfo:
    id: str  # the session's secret id: only its owner knows it
    room: str
    name: str
    source_lang: str
    target_lang: str
    speak: bool
    participant_id: str  # public: what others see in captions and participant messages
    monitor: bool  # hear the spoken translation of one's own speech
    stt_model: str = ""  # the speech provider's model; empty for its default
    kind: str = "webrtc"  # or "whip", "whep"
    said_before: int = 0  # utterances said before this session was resumed
    owner: str = ""  # whose it is (a token's subject, or the token); empty under --dev
    meeting: str = ""  # the room's meeting this session is part of


class Participant:
    def __init__(self, info: SessionInfo, clock_ms: Callable[[], int], *,
                 clip_gap_ms: int = 300, max_clip_delay_s: float = 10.0,
                 interpretation: Interpretation = "simultaneous") -> None:
        self.info = info
        self.target_lang = info.target_lang
        self.monitor = info.monitor
        self.tts_enabled = True
        self.interpretation: Interpretation = interpretation
        self._modes: OrderedDict[str, Interpretation] = OrderedDict()  # by utterance
        self.channel = MessageChannel()
        self._clock_ms = clock_ms  # the room's clock, as caption offsets
        # Whoever hears the interpretation through a loudspeaker can feed it back.
        self.echo_guard = EchoGuard(lambda: self.tts_enabled)
        self.playout = PlayoutTrack(self, gap_ms=clip_gap_ms, max_delay_s=max_clip_delay_s)

    @property
    def id(self) -> str:
        return self.info.participant_id

    def describe(self) -> ParticipantInfo:
        return ParticipantInfo(self.id, self.info.name, self.info.source_lang,
                               self.target_lang, self.info.speak)

    def description(self) -> SessionDescription:
        """What history keeps and a resumed session starts from, with the language read
        now (the participant may have changed it)."""
        info = self.info
        return SessionDescription(
            session_id=info.id, room=info.room, participant_id=info.participant_id,
            name=info.name, source_lang=info.source_lang, target_lang=self.target_lang,
            speak=info.speak, kind=info.kind, meeting=info.meeting)

    def send(self, message: ServerMessage) -> None:
        self.channel.send(message)

    # -- the two client states (and the one-field `state` of earlier releases) ------

    def speaker_state(self, state: SpeakerState) -> None:
        self.send(SpeakerStateMessage(state))
        self.send(StateMessage(state))

    def playout_state(self, state: PlayoutState) -> None:
        self.send(PlayoutStateMessage(state))
        self.send(StateMessage(state))

    def connected(self) -> None:
        """The connection is up: both machines start idle."""
        self.send(SpeakerStateMessage("idle"))
        self.send(PlayoutStateMessage("idle"))
        self.send(StateMessage("idle"))

    def hears(self, lang: str, speaker_id: str, *, utterance_id: str,
              modes: Collection[Interpretation]) -> bool:
        """Would a clip in `lang` of this speaker's utterance, made for listeners in
        `modes`, reach this participant? Nobody hears their own words back unless they
        asked to (`monitor`)."""
        return (self.tts_enabled and self.target_lang == lang
                and (speaker_id != self.id or self.monitor)
                and self.mode_for(utterance_id) in modes)

    def mode_for(self, utterance_id: str) -> Interpretation:
        """How this participant hears an utterance: the mode they had when its speech
        first reached them (a switch takes effect with the next utterance, so none is
        heard twice or in part)."""
        mode = self._modes.get(utterance_id)
        if mode is None:
            mode = self._modes[utterance_id] = self.interpretation
            if len(self._modes) > _MODES_KEPT:
                self._modes.popitem(last=False)
        return mode

    def play(self, clip: Clip) -> None:
        self.playout.enqueue(clip)

    def set_tts(self, enabled: bool) -> None:
        self.tts_enabled = enabled
        if not enabled:
            self.playout.clear()

    def close(self) -> None:
        self.playout.stop()
        self.channel.close()

    # -- what the return track tells (PlayoutEvents) ------------------------------

    def clip_started(self, clip: Clip, starts_at: float, *, duration_ms: int,
                     cut_ms: int = 0) -> None:
        SPEECH_DELAY.observe(max(0.0, starts_at - clip.ends_at))
        self.echo_guard.clip_started(duration_ms / 1000, clip.source_text)
        self.send(self._speech_message(clip, starts_at, duration_ms=duration_ms,
                                       cut_ms=cut_ms))
        self.playout_state("speaking")

    def clip_completed(self, clip: Clip, starts_at: float, *, duration_ms: int,
                       cut_ms: int = 0) -> None:
        self.echo_guard.clip_grew(duration_ms / 1000)
        self.send(self._speech_message(clip, starts_at, duration_ms=duration_ms,
                                       cut_ms=cut_ms))

    def clip_cut(self, clip: Clip, cut_ms: int) -> None:
        log.warning("speech clip cut short: too far behind the speaker", extra={
            "utterance_id": clip.utterance_id, "participant": self.id, "cut_ms": cut_ms})

    def idle(self) -> None:
        self.playout_state("idle")

    def frame_sent(self, pcm: bytes) -> None:
        self.echo_guard.played(pcm)

    def _speech_message(self, clip: Clip, starts_at: float, *, duration_ms: int,
                        cut_ms: int) -> SpeechMessage:
        # On the room's clock, when its first frame is due (made now, maybe a little late).
        start_ms = self._clock_ms() - round((time.monotonic() - starts_at) * 1000)
        return SpeechMessage(clip.utterance_id, clip.lang, start_ms, duration_ms,
                             clip.speaker_id, clip.complete, chunk=clip.chunk,
                             text=clip.text, source=clip.source_text, cut_ms=cut_ms)
