"""One participant on a WebSocket (`GET /ws/{room}`): a phone bridge, a meeting bot or
any server that has PCM. The same participant, room, speaker chain, messages and
admission as a WebRTC peer: binary frames carry audio both ways, in the client's
format (`socket_audio.py`), the spoken translation paced in real time; text frames
carry the data channel's JSON messages both ways.

A client sending audio faster than real time loses what is past the allowance (told
so); a slow reader loses interims and stale audio (`socket_writer.py`), and one that
reads nothing at all is closed (4008) with the session ended cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web
from aiortc.mediastreams import MediaStreamError

from media_server.audio import PcmResampler, mono_frame
from media_server.client_messages import SLOW_DOWN_EVERY_S, ClientMessages
from media_server.engines.catalog import EngineCatalog
from media_server.errors import InterpreterError
from media_server.log import session_id_var
from media_server.metrics import AUDIO_DROPPED, AUDIO_RECEIVED, SOCKET_AUDIO_DROPPED
from media_server.participant import Participant
from media_server.peer import AUDIO_BURST_S, MAX_AUDIO_SPEED, PeerConfig
from media_server.playout import Clip
from media_server.protocol import ErrorMessage
from media_server.room import Room
from media_server.socket_audio import SocketAudio, audio_format
from media_server.socket_framing import Framing, FramingError, RawFraming, StreamStopped
from media_server.socket_writer import SocketWriter
from media_server.speaker_chain import SpeakerChain, speaker_chain
from media_server.tasks import cancel_and_wait
from media_server.token_bucket import TokenBucket

log = logging.getLogger(__name__)

FRAME_MS = 20  # the spoken translation goes out in frames this long
MAX_AUDIO_BEHIND_S = 1.0  # spoken translation a slow reader may have unread; then dropped
CLOSE_NOT_READING = 4008
CLOSE_REFUSED, CLOSE_TRY_LATER = 1008, 1013  # RFC 6455: policy violation; try again later
CLOSE_TIMEOUT_S = 2.0


class SocketPeer:
    def __init__(
        self,
        participant: Participant,
        room: Room,
        *,
        catalog: EngineCatalog,
        limits: PeerConfig,
        on_closed: Callable[[SocketPeer], Awaitable[None]],
        admit: Callable[[SocketPeer], None] = lambda peer: None,
    ) -> None:
        self.participant = participant
        self.info = participant.info
        self.room = room
        self._catalog = catalog
        self._limits = limits
        self._on_closed = on_closed
        self._admit = admit
        self._messages = ClientMessages(participant, room, catalog=catalog,
                                        max_message_bytes=limits.max_message_bytes,
                                        bye=lambda: self._spawn(self.close("bye"), "close"))
        self._ws: web.WebSocketResponse | None = None
        self._chain: SpeakerChain | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self.closed = asyncio.Event()
        self.close_reason = ""
        self.started_at = time.time()
        self._real_time = TokenBucket(MAX_AUDIO_SPEED, AUDIO_BURST_S)
        self._told_at: dict[str, float] = {}  # error code -> when last told
        self._samples_in = 0
        self._audio = SocketAudio()
        self._audio_fixed = False  # audio went one way or the other: no new format

    @property
    def chain(self) -> SpeakerChain | None:
        return self._chain

    @property
    def utterances_said(self) -> int:
        return self._chain.captions.said if self._chain is not None else self.info.said_before

    @property
    def connection_state(self) -> str:
        if self._closing:
            return "closed"
        return "connected" if self._ws is not None else "new"

    async def serve(self, ws: web.WebSocketResponse, audio: SocketAudio,
                    framing: Framing | None = None) -> None:
        """Until the client goes (or says `bye`, or stops its stream), stays silent past
        the idle timeout, breaks its protocol, or the session is closed from elsewhere."""
        session_id_var.set(self.info.id)
        self._ws = ws
        self._audio = audio
        framing = framing or RawFraming()
        writer = SocketWriter(ws, max_audio_s=MAX_AUDIO_BEHIND_S,
                              carries_messages=framing.carries_messages,
                              gave_up=lambda: self._spawn(self._give_up(), "give-up"))
        self.participant.channel.attach(writer)
        try:
            self._admit(self)
        except InterpreterError as exc:  # (no speaker slot after all: a race)
            await writer.aclose()
            await self._close_socket(CLOSE_TRY_LATER if exc.status == 503 else CLOSE_REFUSED,
                                     f"{exc.code}: {exc.message}")
            await self.close(f"refused: {exc.code}")
            return
        self.participant.connected()
        if self.info.speak:
            self._chain = speaker_chain(
                self.participant, self.room, catalog=self._catalog,
                interim_interval_ms=self._limits.interim_translation_interval_ms)
            self._spawn(self._chain.pipeline.run(), "pipeline")
        self._spawn(self._play(writer, framing), "play")
        try:
            await self._read(ws, framing)
        finally:
            if self._chain is not None:
                self._chain.pipeline.end()
            await writer.aclose()
            await self.close(self.close_reason or "socket closed")

    async def _read(self, ws: web.WebSocketResponse, framing: Framing) -> None:
        while not self._closing:
            try:
                message = await ws.receive(timeout=self._limits.idle_timeout_s)
            except TimeoutError:
                log.info("socket silent", extra={"idle_s": self._limits.idle_timeout_s})
                self.close_reason = "inactive"
                await self._close_socket(1000, "inactive")
                return
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                return  # closing, closed or an error (aiohttp answers protocol errors)
            try:
                item = framing.inbound(message.data)
            except StreamStopped:
                self.close_reason = "stream stopped"
                return
            except FramingError as exc:
                log.info("socket protocol broken", extra={"reason": exc.reason})
                self.close_reason = exc.reason
                await self._close_socket(exc.code, exc.reason)
                return
            if isinstance(item, bytes):
                self._audio_fixed = True
                self._audio_in(item, self._audio)
            elif item is not None and not self._declared(item):
                self._messages.take(item)

    def _declared(self, text: str) -> bool:
        """A raw socket's audio format, declared in a message before any audio instead of
        in the query: `{"type": "audio_format", "encoding": "mulaw", "rate": 8000}`.
        True if `text` was such a message."""
        try:
            message = json.loads(text)
        except ValueError:
            return False
        if not isinstance(message, dict) or message.get("type") != "audio_format":
            return False
        if self._audio_fixed:
            self.participant.send(ErrorMessage("audio_format_late", "the audio format is "
                                               "declared before any audio, either way"))
            return True
        try:
            self._audio = audio_format(message.get("encoding", "pcm16"),
                                       message.get("rate", 16000))
        except InterpreterError as exc:
            self.participant.send(ErrorMessage(exc.code, exc.message))
        return True

    def _audio_in(self, payload: bytes, audio: SocketAudio) -> None:
        if self._chain is None:
            self._tell_once("not_a_speaker", "this session only listens: audio is ignored")
            return
        if len(payload) % audio.sample_bytes:
            self.participant.send(ErrorMessage(
                "bad_audio", f"{audio.encoding} audio comes in whole {audio.sample_bytes}-byte"
                " samples; this frame was dropped"))
            return
        seconds = audio.seconds(payload)
        AUDIO_RECEIVED.inc(seconds)
        if not self._real_time.take(seconds):
            AUDIO_DROPPED.inc(seconds)
            self._tell_once("too_fast", "audio is arriving faster than real time; what "
                            "is past the allowance is dropped")
            return
        pcm = audio.decode(payload)
        self._chain.pipeline.push_frame(mono_frame(pcm, audio.rate, self._samples_in))
        self._samples_in += len(pcm) // 2

    def _tell_once(self, code: str, message: str) -> None:
        """An error that a client repeats with every frame is told every few seconds."""
        now = time.monotonic()
        if now - self._told_at.get(code, -SLOW_DOWN_EVERY_S) >= SLOW_DOWN_EVERY_S:
            self._told_at[code] = now
            self.participant.send(ErrorMessage(code, message))

    async def _play(self, writer: SocketWriter, framing: Framing) -> None:
        """The return track's clips, frame by frame as they are due, to the client in
        its format (not the silence between them), and what the framing says as each
        clip ends."""
        playout = self.participant.playout
        audio = self._audio
        resampler = PcmResampler(audio.rate)
        frame_bytes = audio.rate * FRAME_MS // 1000 * 2
        pending = b""  # resampled PCM, cut into whole frames
        playing: Clip | None = None
        dropping = False  # audio is being dropped: the client is too far behind
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await playout.recv()
                clip = playout.last_frame_clip
                if playing is not None and clip is not playing:
                    done = framing.played(playing)
                    if done is not None:
                        writer.send_control(done)
                playing = clip
                if clip is None:
                    continue
                self._audio_fixed = True  # the format is what it is from now on
                if audio is not self._audio:  # declared after this task began
                    audio = self._audio
                    resampler = PcmResampler(audio.rate)
                    frame_bytes = audio.rate * FRAME_MS // 1000 * 2
                pending += resampler.convert(frame)
                while len(pending) >= frame_bytes:
                    payload = audio.encode(pending[:frame_bytes])
                    pending = pending[frame_bytes:]
                    sent = writer.send_audio(framing.audio(payload), FRAME_MS / 1000)
                    if not sent:
                        SOCKET_AUDIO_DROPPED.inc(FRAME_MS / 1000)
                        if not dropping and (clear := framing.stale()) is not None:
                            # After the backlog, before what comes next: the client
                            # drops what it holds, which is by now stale.
                            writer.send_control(clear)
                    dropping = not sent

    async def _give_up(self) -> None:
        log.warning("socket client not reading; closed")
        self.close_reason = "not reading"
        await self._close_socket(CLOSE_NOT_READING, "not reading: too much unread")
        await self.close("not reading")

    async def _close_socket(self, code: int, reason: str) -> None:
        ws = self._ws
        if ws is None or ws.closed:
            return
        # A client that reads nothing never takes the close frame either.
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await ws.close(code=code, message=reason.encode()[:120])

    def _spawn(self, coro: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(f"{name}:{self.info.id[:8]}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, reason: str) -> None:
        if self._closing:
            await self.closed.wait()
            return
        self._closing = True
        self.close_reason = self.close_reason or reason
        log.info("closing session", extra={"reason": reason})
        current = asyncio.current_task()
        await cancel_and_wait(*(t for t in self._tasks if t is not current))
        if self._chain is not None:
            await self._chain.aclose()
        self.participant.close()
        await self._close_socket(1000, reason)
        try:
            await self._on_closed(self)
        finally:
            self.closed.set()
