"""Frames to one WebSocket, in order, by one task. What the client has not read yet is
counted, so that a slow reader loses what can be lost, as on the data channel:
interims (`channel.py`) and audio more than `max_audio_s` behind give way; finals,
other messages and control frames never do. On a socket that does not carry our
messages (Twilio's), `send` drops them. A client that reads nothing at all is given
up on (`gave_up` is called once) when one frame waits `SEND_STALL_S` for the socket
to take it, or past `MAX_UNREAD_BYTES` queued. The socket's own send buffer is kept small
(`SEND_BUFFER_BYTES`) so that audio waits here, where stale audio can be dropped,
rather than in the kernel."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable

from aiohttp import web

from media_server.tasks import cancel_and_wait

MAX_UNREAD_BYTES = 4 * 1024 * 1024
SEND_STALL_S = 5.0
SEND_BUFFER_BYTES = 32 * 1024


class SocketWriter:
    def __init__(self, ws: web.WebSocketResponse, *, max_audio_s: float,
                 carries_messages: bool = True, gave_up: Callable[[], None]) -> None:
        self._ws = ws
        self._max_audio_s = max_audio_s
        self._carries_messages = carries_messages
        self._gave_up = gave_up
        self._queue: deque[tuple[str | bytes, float]] = deque()  # (frame, audio seconds)
        self._queued_bytes = 0
        self._audio_s = 0.0  # queued
        self._ready = asyncio.Event()
        self._open = True
        self._task = asyncio.create_task(self._run(), name="socket-writer")

    @property
    def readyState(self) -> str:  # (the data channel's names)
        return "open" if self._open else "closed"

    @property
    def bufferedAmount(self) -> int:
        return self._queued_bytes

    def send(self, data: str) -> None:
        """One of our JSON messages."""
        if self._carries_messages:
            self._put(data, 0.0)

    def send_control(self, data: str) -> None:
        """A frame of the socket's own protocol (a Twilio `mark`)."""
        self._put(data, 0.0)

    def send_audio(self, frame: str | bytes, seconds: float) -> bool:
        """Queue audio unless the client is behind by more than the audio allowed."""
        if not self._open or self._audio_s + seconds > self._max_audio_s + 1e-6:
            return False
        self._audio_s += seconds
        self._put(frame, seconds)
        return True

    async def aclose(self) -> None:
        self._open = False
        await cancel_and_wait(self._task)

    def _put(self, item: str | bytes, seconds: float) -> None:
        if not self._open:
            return
        self._queue.append((item, seconds))
        self._queued_bytes += len(item)
        self._ready.set()
        if self._queued_bytes > MAX_UNREAD_BYTES:
            self._give_up()

    def _give_up(self) -> None:
        if self._open:
            self._open = False
            self._gave_up()

    async def _run(self) -> None:
        with contextlib.suppress(ConnectionError):
            while True:
                while not self._queue:
                    self._ready.clear()
                    await self._ready.wait()
                item, seconds = self._queue.popleft()
                try:
                    async with asyncio.timeout(SEND_STALL_S):
                        if isinstance(item, bytes):
                            await self._ws.send_bytes(item)
                        else:
                            await self._ws.send_str(item)
                except TimeoutError:
                    self._give_up()
                    return
                self._audio_s -= seconds
                self._queued_bytes -= len(item)
