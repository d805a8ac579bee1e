"""A participant's message channel (the `captions` data channel, or a WebSocket's text
frames): messages before it opens wait in a small outbox (interims excepted), and
interims give way when the client does not keep up."""

from __future__ import annotations

from typing import Protocol

from media_server.metrics import INTERIMS_DROPPED
from media_server.protocol import CaptionMessage, ServerMessage

# Past this much unsent data on the channel the client is not keeping up: interims wait.
MAX_BUFFERED_BYTES = 256 * 1024
# A client that never opens its channel costs no more than this; enough for the room's
# roster (`present` messages) and what follows while a newcomer connects.
OUTBOX_MESSAGES = 256


def _is_interim(message: ServerMessage) -> bool:
    return isinstance(message, CaptionMessage) and message.status == "interim"


class MessageSink(Protocol):
    """What messages go out through: an RTCDataChannel, or a WebSocket's writer."""

    @property
    def readyState(self) -> str: ...  # (the data channel's names)

    @property
    def bufferedAmount(self) -> int: ...

    def send(self, data: str) -> None: ...


class MessageChannel:
    def __init__(self) -> None:
        self._channel: MessageSink | None = None
        self._outbox: list[ServerMessage] = []
        self._closed = False

    @property
    def attached(self) -> bool:
        return self._channel is not None

    def attach(self, channel: MessageSink) -> None:
        """Messages go out through `channel`: now if it is open, else once `flush()` is
        called as it opens."""
        self._channel = channel
        self.flush()

    def send(self, message: ServerMessage) -> None:
        if self._closed:
            return
        channel = self._channel
        if channel is None or channel.readyState != "open":
            if not _is_interim(message):
                self._outbox.append(message)
                del self._outbox[:-OUTBOX_MESSAGES]
            return
        if _is_interim(message) and channel.bufferedAmount > MAX_BUFFERED_BYTES:
            INTERIMS_DROPPED.inc()
            return  # latest-wins: the next interim or the final replaces it
        channel.send(message.to_json())

    def close(self) -> None:
        self._closed = True
        self._channel = None
        self._outbox.clear()

    def flush(self) -> None:
        outbox, self._outbox = self._outbox, []
        for message in outbox:
            self.send(message)
