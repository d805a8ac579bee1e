"""What a client says on its message channel (the WebRTC data channel, or a
WebSocket's text frames): rate-limited, parsed, and applied to its participant."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from media_server.engines.catalog import EngineCatalog
from media_server.errors import InterpreterError
from media_server.metrics import CHANNEL_MESSAGES_REFUSED
from media_server.participant import Participant
from media_server.protocol import (
    Bye,
    ErrorMessage,
    Ping,
    PongMessage,
    ProtocolError,
    SetInterpretation,
    SetLanguage,
    SetMonitor,
    SetTts,
    parse_client_message,
)
from media_server.room import Room
from media_server.token_bucket import TokenBucket

log = logging.getLogger(__name__)

# A client's messages: this many a second, sustained, and at once; past them, dropped,
# with an error at most every SLOW_DOWN_EVERY_S.
MESSAGES_PER_S, MESSAGE_BURST, SLOW_DOWN_EVERY_S = 20.0, 40.0, 5.0


class ClientMessages:
    def __init__(self, participant: Participant, room: Room, *, catalog: EngineCatalog,
                 max_message_bytes: int, bye: Callable[[], None]) -> None:
        self._participant = participant
        self._room = room
        self._catalog = catalog
        self._max_bytes = max_message_bytes
        self._bye = bye
        self._bucket = TokenBucket(MESSAGES_PER_S, MESSAGE_BURST)
        self._told_to_slow_down_at = -SLOW_DOWN_EVERY_S

    def take(self, raw: str | bytes) -> None:
        participant = self._participant
        if not self._bucket.take():
            CHANNEL_MESSAGES_REFUSED.inc()
            now = time.monotonic()
            if now - self._told_to_slow_down_at >= SLOW_DOWN_EVERY_S:
                self._told_to_slow_down_at = now  # not once per message
                participant.send(ErrorMessage("rate_limited", "too many messages; at most "
                                              f"{MESSAGES_PER_S:g} a second"))
            return
        try:
            message = parse_client_message(raw, self._max_bytes)
        except ProtocolError as exc:
            log.info("bad client message", extra={"code": exc.code})
            participant.send(ErrorMessage(exc.code, exc.message))
            return
        if isinstance(message, Ping):
            participant.send(PongMessage())
        elif isinstance(message, Bye):
            self._bye()
        elif isinstance(message, SetLanguage):
            self._set_language(message.target)
        elif isinstance(message, SetTts):
            participant.set_tts(message.enabled)
        elif isinstance(message, SetMonitor):
            participant.monitor = message.enabled
        elif isinstance(message, SetInterpretation):
            participant.interpretation = message.mode

    def _set_language(self, target: str) -> None:
        participant = self._participant
        try:
            self._catalog.check_languages(participant.info.source_lang, target,
                                          participant.info.speak)
        except InterpreterError as exc:
            participant.send(ErrorMessage(exc.code, exc.message))
            return
        if target != participant.target_lang:
            participant.target_lang = target  # the next caption is in it
            self._room.changed(participant)
