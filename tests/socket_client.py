"""A participant over `GET /ws/{room}` with the `websockets` library, as a phone bridge
or a server would be: speaks PCM in real time, keeps what comes back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import numpy as np
import websockets
from websockets.asyncio.client import ClientConnection

from media_server.audio import resample_pcm
from media_server.socket_audio import SocketAudio, mulaw_decode, mulaw_encode

FRAME_S = 0.1  # what a bridge sends at a time


def socket_url(http_url: str, room: str, **query: str) -> str:
    return f"{http_url.replace('http://', 'ws://')}/ws/{room}?{urlencode(query)}"


def encoded(audio48: np.ndarray, audio: SocketAudio) -> bytes:
    pcm = resample_pcm(audio48.astype("<i2").tobytes(), 48000, audio.rate)
    return mulaw_encode(pcm) if audio.encoding == "mulaw" else pcm


@dataclass
class SocketClient:
    ws: ClientConnection
    audio: SocketAudio
    messages: list[dict[str, Any]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # each message's arrival
    audio_t0: float | None = None  # when the first audio frame was sent
    clips: list[tuple[float, bytes]] = field(default_factory=list)  # arrival, payload
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def open(cls, url: str, audio: SocketAudio, *, read: bool = True,
                   **connect: Any) -> SocketClient:
        """Connected, pinging every second (a silent socket is closed as idle) and,
        unless `read` is False, reading everything that comes."""
        client = cls(await websockets.connect(url, **connect), audio)
        client._tasks.append(asyncio.create_task(client._ping()))
        if read:
            client._tasks.append(asyncio.create_task(client._read()))
        return client

    async def _ping(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await asyncio.sleep(1.0)
                await self.ws.send('{"type": "ping"}')

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in self.ws:
                if isinstance(message, str):
                    self.messages.append(json.loads(message))
                    self.arrivals.append(time.monotonic())
                else:
                    self.clips.append((time.monotonic(), message))

    async def speak(self, payload: bytes, *, silence_after_s: float = 0.0) -> None:
        """`payload` (in the client's format) in frames of 100 ms, in real time."""
        frame = round(FRAME_S * self.audio.rate) * self.audio.sample_bytes
        payload += self.audio.encode(bytes(round(silence_after_s * self.audio.rate) * 2))
        start = time.monotonic()
        self.audio_t0 = self.audio_t0 or start
        for n, at in enumerate(range(0, len(payload), frame)):
            await asyncio.sleep(max(0.0, start + n * FRAME_S - time.monotonic()))
            await self.ws.send(payload[at:at + frame])

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]

    def finals(self) -> list[dict[str, Any]]:
        return [m for m in self.of_type("caption") if m["status"] == "final" and m["text"]]

    def pcm(self) -> np.ndarray:
        """The spoken translation received, as int16 samples at the client's rate."""
        payload = b"".join(p for _, p in self.clips)
        pcm = mulaw_decode(payload) if self.audio.encoding == "mulaw" else payload
        return np.frombuffer(pcm, dtype="<i2")

    async def until(self, done: Any, within: float, what: str) -> None:
        deadline = time.monotonic() + within
        while not done():
            assert time.monotonic() < deadline, f"{what}: not in {within} s; got {self.messages}"
            await asyncio.sleep(0.1)

    async def close(self) -> None:
        self._tasks[0].cancel()
        await self.ws.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def small_receive_buffer(host: str, port: int) -> socket.socket:
    """A connected socket that holds little unread: a client that stops reading is
    noticed by the server after a few hundred milliseconds of audio, not minutes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, port))
    sock.setblocking(False)
    return sock
