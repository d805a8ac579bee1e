"""How a kind of WebSocket carries audio and messages.

`RawFraming` (`GET /ws/{room}`): binary frames are audio, text frames the data
channel's JSON. `TwilioFraming` (`GET /twilio/{room}`): Twilio's bidirectional Media
Streams, JSON text frames only: `media` (base64 µ-law 8 kHz), `mark`, `dtmf`, `stop`
from Twilio; `media`, `mark` (a clip finished) and `clear` back (audio was dropped
for a reader too far behind: what Twilio still holds to play is stale). Captions are not Twilio's to
carry: a phone caller's go to the room's other participants and caption streams."""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from media_server.playout import Clip

log = logging.getLogger(__name__)

# RFC 6455 close codes for what a client sent.
CLOSE_UNSUPPORTED, CLOSE_BAD_DATA, CLOSE_POLICY = 1003, 1007, 1008


class FramingError(Exception):
    """The client broke its protocol: the socket is closed with `code`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class StreamStopped(Exception):
    """The client said the stream is over."""


class Framing(Protocol):
    carries_messages: bool  # our JSON messages go to the client

    def inbound(self, data: str | bytes) -> bytes | str | None:
        """A frame from the client -> audio, a client message, or nothing to act on."""

    def audio(self, payload: bytes) -> str | bytes:
        """A frame of audio in the client's encoding, as it goes on the wire."""

    def played(self, clip: Clip) -> str | None:
        """What tells the client that `clip` has been sent in full, if anything."""

    def stale(self) -> str | None:
        """What tells the client to drop the audio it holds, if anything."""


class RawFraming:
    carries_messages = True

    def inbound(self, data: str | bytes) -> bytes | str | None:
        return data

    def audio(self, payload: bytes) -> str | bytes:
        return payload

    def played(self, clip: Clip) -> str | None:
        return None

    def stale(self) -> str | None:
        return None


@dataclass(frozen=True)
class TwilioStart:
    stream_sid: str
    call_sid: str
    parameters: dict[str, str]  # the <Parameter>s of the <Stream>


def _event(data: str | bytes) -> dict[str, Any]:
    if isinstance(data, bytes):
        raise FramingError(CLOSE_UNSUPPORTED, "Twilio Media Streams send JSON text frames")
    try:
        message = json.loads(data)
    except ValueError as exc:
        raise FramingError(CLOSE_BAD_DATA, "a frame that is not JSON") from exc
    if not isinstance(message, dict) or not isinstance(message.get("event"), str):
        raise FramingError(CLOSE_BAD_DATA, "a message without an 'event'")
    return message


def twilio_start(data: str | bytes) -> TwilioStart | None:
    """`connected` -> None; `start` -> what it says; anything else before it: refused."""
    message = _event(data)
    event = message["event"]
    if event == "connected":
        return None
    if event != "start":
        raise FramingError(CLOSE_POLICY, f"'{event}' before 'start'")
    start = message.get("start")
    if not isinstance(start, dict):
        raise FramingError(CLOSE_BAD_DATA, "'start' without its 'start' object")
    media = start.get("mediaFormat") or {}
    if (media.get("encoding"), media.get("sampleRate"), media.get("channels")) != (
            "audio/x-mulaw", 8000, 1):
        raise FramingError(CLOSE_UNSUPPORTED, "only audio/x-mulaw at 8000 Hz, mono")
    stream_sid = message.get("streamSid") or start.get("streamSid")
    parameters = start.get("customParameters") or {}
    if not isinstance(stream_sid, str) or not stream_sid or not isinstance(parameters, dict):
        raise FramingError(CLOSE_BAD_DATA, "'start' without a streamSid")
    return TwilioStart(stream_sid, str(start.get("callSid", "")),
                       {str(k): str(v) for k, v in parameters.items()})


@dataclass
class TwilioFraming:
    start: TwilioStart
    carries_messages = False
    marks_played: list[str] = field(default_factory=list)  # as Twilio reported them

    def inbound(self, data: str | bytes) -> bytes | str | None:
        message = _event(data)
        event = message["event"]
        if event == "media":
            media = message.get("media")
            if not isinstance(media, dict) or not isinstance(media.get("payload"), str):
                raise FramingError(CLOSE_BAD_DATA, "'media' without a payload")
            if media.get("track", "inbound") != "inbound":
                return None  # (only the caller's side is interpreted)
            try:
                return base64.b64decode(media["payload"], validate=True)
            except binascii.Error as exc:
                raise FramingError(CLOSE_BAD_DATA, "a media payload that is not base64") from exc
        if event == "stop":
            raise StreamStopped
        if event == "mark":
            name = (message.get("mark") or {}).get("name", "")
            self.marks_played.append(str(name))
        elif event == "dtmf":
            log.info("caller pressed a key")
        return None  # (`connected`, `start` again, or an event added since: nothing to do)

    def audio(self, payload: bytes) -> str | bytes:
        return json.dumps({"event": "media", "streamSid": self.start.stream_sid,
                           "media": {"payload": base64.b64encode(payload).decode()}})

    def played(self, clip: Clip) -> str | None:
        return json.dumps({"event": "mark", "streamSid": self.start.stream_sid,
                           "mark": {"name": f"{clip.utterance_id}/{clip.chunk}"}})

    def stale(self) -> str | None:
        return json.dumps({"event": "clear", "streamSid": self.start.stream_sid})
