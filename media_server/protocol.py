"""Data-channel protocol (label `captions`, one JSON object per message).

Server -> client messages are dataclasses with a `to_json()`; client -> server
messages are parsed and validated by `parse_client_message`, which raises
`ProtocolError` with a code the client can act on.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

CHANNEL_LABEL = "captions"

SpeakerState = Literal["idle", "listening", "translating"]  # my words, being recognised
PlayoutState = Literal["idle", "speaking"]  # what I hear: a clip playing on my return track
# How often my interims come: as usual, or thinned / paused while more people speak at
# once than the recogniser carries (my finals always come).
RecognitionState = Literal["live", "thinned", "paused"]
# How a listener hears spoken translation: chunk by chunk while the speaker goes on,
# or each sentence once it is finished.
Interpretation = Literal["simultaneous", "consecutive"]
INTERPRETATIONS: tuple[Interpretation, ...] = ("simultaneous", "consecutive")
# The one-field state of earlier releases, sent beside the two above for one release.
LegacyState = Literal["idle", "listening", "translating", "speaking"]


class _Wire:
    """What every server message shares: its JSON form on the data channel."""

    __slots__ = ()

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)  # type: ignore[call-overload]


@dataclass(frozen=True, slots=True)
class Translation:
    lang: str
    text: str


@dataclass(frozen=True, slots=True)
class CaptionMessage(_Wire):
    utterance_id: str
    revision: int
    status: Literal["interim", "final"]
    speaker: str  # the speaker's display name
    lang: str
    text: str
    start_ms: int
    end_ms: int
    stable_chars: int = 0  # interims: this many leading characters will not change
    translation: Translation | None = None
    speaker_id: str = ""  # the speaker's participant id
    type: Literal["caption"] = field(default="caption", init=False)



@dataclass(frozen=True, slots=True)
class SpeakerStateMessage(_Wire):
    """Where recognition of my speech is: listening to an utterance, translating its
    final, or idle."""

    state: SpeakerState
    type: Literal["speaker_state"] = field(default="speaker_state", init=False)


@dataclass(frozen=True, slots=True)
class PlayoutStateMessage(_Wire):
    """Whether spoken translation is playing on my return track."""

    state: PlayoutState
    type: Literal["playout_state"] = field(default="playout_state", init=False)


@dataclass(frozen=True, slots=True)
class RecognitionMessage(_Wire):
    """My interims changed pace: thinned or paused while more people speak at once than
    the server's recogniser carries at full quality, live again once it does. Finals
    are never held back. Sent on every change; a session starts `live`."""

    state: RecognitionState
    type: Literal["recognition"] = field(default="recognition", init=False)


@dataclass(frozen=True, slots=True)
class StateMessage(_Wire):
    """Deprecated: the last change of either state above, in one field (clients written
    for earlier releases read it); to be removed in the release after next."""

    state: LegacyState
    type: Literal["state"] = field(default="state", init=False)



@dataclass(frozen=True, slots=True)
class ErrorMessage(_Wire):
    code: str
    message: str
    type: Literal["error"] = field(default="error", init=False)



@dataclass(frozen=True, slots=True)
class SpeechMessage(_Wire):
    """A clip of spoken translation starts on the return track now; a clip that started
    while still being synthesised is announced again, complete, once it is. In
    simultaneous interpretation an utterance is spoken in several clips (chunks 1..n,
    the last with `last`); in consecutive interpretation in one."""

    utterance_id: str
    lang: str
    start_ms: int  # room time (as caption offsets) when the clip starts playing
    duration_ms: int  # as it plays (sped up when the listener is behind), so far
    speaker_id: str = ""  # whose words these are
    complete: bool = True  # False: more audio follows, and a complete message with it
    chunk: int = 1  # which clip of the utterance this is, from 1
    last: bool = True  # the utterance's last clip
    text: str = ""  # what it says (in `lang`)
    source: str = ""  # the words of the original it translates
    cut_ms: int = 0  # left out at its end: it started too far behind the speaker
    type: Literal["speech"] = field(default="speech", init=False)



@dataclass(frozen=True, slots=True)
class EngineMessage(_Wire):
    """A provider of an engine kind was taken out (the next serves) or is back."""

    kind: str  # "stt", "translate" or "tts"
    provider: str
    status: Literal["degraded", "restored"]
    type: Literal["engine"] = field(default="engine", init=False)


@dataclass(frozen=True, slots=True)
class ParticipantInfo:
    id: str
    name: str
    source_lang: str  # what they speak
    target_lang: str  # what they read and hear
    speak: bool  # False for a listener without a microphone


@dataclass(frozen=True, slots=True)
class ParticipantMessage(_Wire):
    """Who is in the room: `present` (on joining, one per participant already there,
    oneself included), then `joined`, `left` and `changed` (languages) as they happen."""

    event: Literal["present", "joined", "left", "changed"]
    participant: ParticipantInfo
    type: Literal["participant"] = field(default="participant", init=False)


@dataclass(frozen=True, slots=True)
class PongMessage(_Wire):
    type: Literal["pong"] = field(default="pong", init=False)



ServerMessage = (CaptionMessage | SpeakerStateMessage | PlayoutStateMessage | StateMessage
                 | RecognitionMessage | ErrorMessage | SpeechMessage | EngineMessage
                 | ParticipantMessage | PongMessage)


# -- client -> server -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetLanguage:
    target: str


@dataclass(frozen=True, slots=True)
class SetTts:
    enabled: bool


@dataclass(frozen=True, slots=True)
class SetMonitor:
    """Hear the spoken translation of one's own speech (on by default when alone)."""

    enabled: bool


@dataclass(frozen=True, slots=True)
class SetInterpretation:
    """Hear spoken translation simultaneously or consecutively (from the next utterance)."""

    mode: Interpretation


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class Bye:
    """The page is going away (sent on unload): close the session now."""


ClientMessage = SetLanguage | SetTts | SetMonitor | SetInterpretation | Ping | Bye


class ProtocolError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _field(data: dict[str, Any], name: str, kind: type) -> Any:
    value = data.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ProtocolError("bad_message", f"'{name}' must be a {kind.__name__}")
    return value


def interpretation(mode: str) -> Interpretation:
    """A client's interpretation mode, checked."""
    for known in INTERPRETATIONS:
        if mode == known:
            return known
    raise ProtocolError("bad_interpretation",
                        f"interpretation must be one of {', '.join(INTERPRETATIONS)}, "
                        f"not {mode!r}")


def parse_json(raw: str | bytes) -> Any:
    """JSON from a client. Nesting too deep for the parser (`[[[[...`) is refused as
    bad JSON like any other (ValueError), not a RecursionError for whoever called."""
    try:
        return json.loads(raw)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc


def parse_client_message(raw: str | bytes, max_bytes: int) -> ClientMessage:
    size = len(raw.encode() if isinstance(raw, str) else raw)
    if size > max_bytes:
        raise ProtocolError("message_too_large", f"message of {size} bytes exceeds {max_bytes}")
    try:
        data = parse_json(raw)
    except ValueError as exc:
        raise ProtocolError("bad_message", "message is not valid JSON") from exc
    if not isinstance(data, dict):
        raise ProtocolError("bad_message", "message must be a JSON object")
    kind = data.get("type")
    if kind == "set_language":
        return SetLanguage(_field(data, "target", str))
    if kind == "set_tts":
        return SetTts(_field(data, "enabled", bool))
    if kind == "set_monitor":
        return SetMonitor(_field(data, "enabled", bool))
    if kind == "set_interpretation":
        return SetInterpretation(interpretation(_field(data, "mode", str)))
    if kind == "ping":
        return Ping()
    if kind == "bye":
        return Bye()
    raise ProtocolError("unknown_type", f"unknown message type {kind!r}")
