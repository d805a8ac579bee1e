"""One participant's RTCPeerConnection: offer/answer, tracks, data channel, clean-up.

Everything a peer starts (tasks, the speech stream, its speaker slot) is released
by `close()`, whichever way the peer ends: DELETE, a `bye` on the data channel,
ICE failure, or silence past the inactivity timeout (a closed tab is otherwise
only noticed by aiortc after ~30 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCIceCandidate,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcdatachannel import RTCDataChannel
from aiortc.sdp import candidate_from_sdp

from media_server.audio import resample_pcm
from media_server.captions import CaptionBuilder
from media_server.echo_guard import EchoGuard
from media_server.engines.catalog import EngineCatalog
from media_server.engines.stt.base import SpeechToText
from media_server.errors import BadRequest, Conflict, InterpreterError
from media_server.interpretation import Interpreter
from media_server.log import session_id_var
from media_server.pipeline import SpeakerPipeline
from media_server.playout import RATE as PLAYOUT_RATE
from media_server.playout import Clip, PlayoutTrack
from media_server.protocol import (
    CHANNEL_LABEL,
    Bye,
    CaptionMessage,
    ErrorMessage,
    Ping,
    PongMessage,
    ProtocolError,
    ServerMessage,
    SetLanguage,
    SetMonitor,
    SetTts,
    SpeechMessage,
    StateMessage,
    parse_client_message,
)

log = logging.getLogger(__name__)

# Past this much unsent data on the channel the client is not keeping up: interims wait.
MAX_BUFFERED_BYTES = 256 * 1024
WATCHDOG_PERIOD_S = 0.5


@dataclass(frozen=True)
class SessionInfo:
    id: str
    room: str
    name: str
    source_lang: str
    target_lang: str
    speak: bool
    participant_id: str
    monitor: bool  # hear the spoken translation of one's own speech
    stt_model: str = ""  # the speech provider's model; empty for its default


@dataclass(frozen=True)
class PeerConfig:
    idle_timeout_s: float
    connect_timeout_s: float
    max_message_bytes: int
    interim_translation_interval_ms: int = 300
    clip_gap_ms: int = 300
    tts_max_delay_s: float = 10.0


def _parse_candidate(entry: dict[str, Any]) -> RTCIceCandidate | None:
    """A trickled `RTCIceCandidateInit` -> aiortc's candidate; None for end-of-candidates."""
    line, mid, index = entry.get("candidate"), entry.get("sdpMid"), entry.get("sdpMLineIndex")
    index_ok = index is None or (isinstance(index, int) and not isinstance(index, bool))
    if not isinstance(line, str) or not isinstance(mid, str | None) or not index_ok:
        raise BadRequest("bad_candidate",
                         "a candidate is {candidate: str, sdpMid?: str, sdpMLineIndex?: int}")
    if not line:
        return None
    try:
        # aiortc's parser fails with asserts and assorted errors on bad input.
        candidate = candidate_from_sdp(line.removeprefix("candidate:"))
    except Exception as exc:
        raise BadRequest("bad_candidate", f"unparsable candidate: {line[:80]!r}") from exc
    candidate.sdpMid = mid
    candidate.sdpMLineIndex = index
    return candidate


class Peer:
    def __init__(
        self,
        info: SessionInfo,
        stt: SpeechToText | None,
        catalog: EngineCatalog,
        limits: PeerConfig,
        on_closed: Callable[[Peer], Awaitable[None]],
        rtc_config: RTCConfiguration,
    ) -> None:
        self.info = info
        self.target_lang = info.target_lang
        self.monitor = info.monitor
        self.tts_enabled = True
        self._stt = stt
        self._catalog = catalog
        self._limits = limits
        self._on_closed = on_closed
        self._rtc_config = rtc_config
        self.pc = RTCPeerConnection(rtc_config)
        self._offered = False
        self._connected = False
        self._closing = False
        self.closed = asyncio.Event()
        self.close_reason = ""
        self._created = time.monotonic()
        self._last_activity = self._created
        self._channel: RTCDataChannel | None = None
        self._outbox: list[ServerMessage] = []  # state and finals sent before the channel opens
        self._pipeline: SpeakerPipeline | None = None
        # Only someone who hears their own interpretation can feed it back.
        self._echo_guard = EchoGuard(lambda: self.monitor and self.tts_enabled)
        self._playout = PlayoutTrack(self._on_clip_start, self._on_playout_idle,
                                     self._on_clip_dropped, self._echo_guard.played,
                                     limits.clip_gap_ms, limits.tts_max_delay_s)
        self._to_speak: asyncio.Queue[CaptionMessage] = asyncio.Queue(maxsize=32)
        self._tasks: set[asyncio.Task[Any]] = set()
        session_id_var.set(info.id)
        self._spawn(self._watchdog(), "watchdog")
        self._spawn(self._synthesize_queued(), "tts")

    # -- signaling ------------------------------------------------------------

    async def answer(self, sdp: str, kind: str) -> RTCSessionDescription:
        if kind != "offer":
            raise BadRequest("bad_sdp", f"expected an SDP of type 'offer', got {kind!r}")
        if self._offered:
            raise Conflict("offer_exists", "this session already has a peer connection")
        if not sdp.lstrip().startswith("v="):
            raise BadRequest("bad_sdp", "the offer is not an SDP session description")
        if self.info.speak and "m=audio" not in sdp:
            raise BadRequest("no_audio", "a speaking session's offer must have an audio track")
        self._offered = True
        self._wire(self.pc)
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            if "m=audio" in sdp:
                self.pc.addTrack(self._playout)  # the return track, before the answer
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        except Exception as exc:
            # aiortc raises many kinds of errors on bad SDP. Start over with a fresh
            # connection so that a corrected offer can follow on the same session.
            log.info("offer rejected", extra={"error": repr(exc)})
            self.pc.remove_all_listeners()  # its "closed" state must not end the session
            await self.pc.close()
            self.pc = RTCPeerConnection(self._rtc_config)
            self._offered = False
            raise BadRequest("bad_sdp", f"the offer SDP could not be used: {exc}") from exc
        return self.pc.localDescription

    async def add_ice_candidates(self, candidates: list[dict[str, Any]]) -> None:
        if not self._offered:
            raise Conflict("no_offer", "send the offer before ICE candidates")
        for entry in candidates:
            candidate = _parse_candidate(entry)
            if candidate is None:
                continue  # end-of-candidates
            try:
                await self.pc.addIceCandidate(candidate)
            except Exception as exc:
                raise BadRequest("bad_candidate", f"unusable candidate: {exc}") from exc

    def _wire(self, pc: RTCPeerConnection) -> None:
        @pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            if channel.label != CHANNEL_LABEL or self._channel is not None:
                channel.close()
                return
            self._channel = channel
            channel.on("message", self._on_message)
            if channel.readyState == "open":
                self._flush_outbox()
            else:
                channel.on("open", self._flush_outbox)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio" and self.info.speak and self._pipeline is None:
                self._start_pipeline(track)
            else:
                self._spawn(self._drain(track), "drain")

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            state = pc.connectionState
            log.info("connection state", extra={"state": state})
            if state == "connected":
                self._connected = True
                self._last_activity = time.monotonic()
                self.send(StateMessage("idle"))
            elif state in ("failed", "closed"):
                await self.close(f"connection {state}")

    # -- media --------------------------------------------------------------------

    def _start_pipeline(self, track: MediaStreamTrack) -> None:
        assert self._stt is not None
        stream = self._stt.open_stream(self.info.source_lang, model=self.info.stt_model)
        captions = CaptionBuilder(self.info.participant_id, self.info.name, self.info.source_lang)
        interpreter = Interpreter(self._catalog, captions, lambda: self.target_lang, self.send,
                                  self._speak, self._limits.interim_translation_interval_ms)
        self._pipeline = SpeakerPipeline(stream, captions, self.send, interpreter,
                                         self._echo_guard)
        self._spawn(self._pipeline.run(), "pipeline")
        self._spawn(self._receive(track, self._pipeline), "receive")

    async def _receive(self, track: MediaStreamTrack, pipeline: SpeakerPipeline) -> None:
        try:
            while True:
                frame = await track.recv()
                self._last_activity = time.monotonic()
                pipeline.push_frame(frame)
        except MediaStreamError:
            pipeline.end()

    async def _drain(self, track: MediaStreamTrack) -> None:
        """Consume a track we do not use: aiortc queues its frames without bound otherwise."""
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                self._last_activity = time.monotonic()

    # -- data channel ------------------------------------------------------------

    def _on_message(self, raw: str | bytes) -> None:
        self._last_activity = time.monotonic()
        try:
            message = parse_client_message(raw, self._limits.max_message_bytes)
        except ProtocolError as exc:
            log.info("bad data-channel message", extra={"code": exc.code})
            self.send(ErrorMessage(exc.code, exc.message))
            return
        if isinstance(message, Ping):
            self.send(PongMessage())
        elif isinstance(message, Bye):
            self._spawn(self.close("bye"), "close")
        elif isinstance(message, SetLanguage):
            self._set_language(message.target)
        elif isinstance(message, SetTts):
            self.tts_enabled = message.enabled
            if not message.enabled:
                self._playout.clear()
        elif isinstance(message, SetMonitor):
            self.monitor = message.enabled

    def _set_language(self, target: str) -> None:
        try:
            self._catalog.check_pair(self.info.source_lang, target)
        except InterpreterError as exc:
            self.send(ErrorMessage(exc.code, exc.message))
            return
        self.target_lang = target  # the next caption is in it

    def send(self, message: ServerMessage) -> None:
        channel = self._channel
        if channel is None or channel.readyState != "open":
            if not (isinstance(message, CaptionMessage) and message.status == "interim"):
                self._outbox.append(message)
                del self._outbox[:-64]  # bounded: a client that never opens the channel
            return
        if (isinstance(message, CaptionMessage) and message.status == "interim"
                and channel.bufferedAmount > MAX_BUFFERED_BYTES):
            return  # latest-wins: the next interim or the final replaces it
        channel.send(message.to_json())

    def _flush_outbox(self) -> None:
        outbox, self._outbox = self._outbox, []
        for message in outbox:
            self.send(message)

    # -- spoken translation ------------------------------------------------------

    def _speak(self, caption: CaptionMessage) -> None:
        if not (self.tts_enabled and self.monitor and caption.translation):
            return
        try:
            self._to_speak.put_nowait(caption)
        except asyncio.QueueFull:
            log.warning("speech queue full; clip skipped",
                        extra={"utterance_id": caption.utterance_id})

    async def _synthesize_queued(self) -> None:
        while True:
            caption = await self._to_speak.get()
            assert caption.translation is not None
            lang, text = caption.translation.lang, caption.translation.text
            voice = self._catalog.voice_for(lang)
            if voice is None:
                self.send(ErrorMessage("no_voice", f"no voice speaks {lang!r} on this server"))
                continue
            try:
                chunks = [chunk async for chunk in voice.synthesize(text, lang)]
            except Exception as exc:
                log.warning("synthesis failed", extra={"error": repr(exc),
                                                       "provider": voice.name})
                self.send(ErrorMessage("tts_failed", "the spoken translation failed"))
                continue
            pcm = b"".join(resample_pcm(c.pcm, c.sample_rate, PLAYOUT_RATE) for c in chunks)
            self._playout.enqueue(Clip(pcm, caption.utterance_id, lang, caption.text))

    def _on_clip_start(self, clip: Clip, track_ms: int) -> None:
        session_ms = self._pipeline.audio_ms if self._pipeline is not None else track_ms
        self._echo_guard.clip_started(clip.duration_ms / 1000, clip.source_text)
        self.send(SpeechMessage(clip.utterance_id, clip.lang, session_ms, clip.duration_ms))
        self.send(StateMessage("speaking"))

    def _on_playout_idle(self) -> None:
        self.send(StateMessage("idle"))

    def _on_clip_dropped(self, clip: Clip) -> None:
        log.warning("stale speech clip dropped", extra={"utterance_id": clip.utterance_id})

    # -- lifecycle ---------------------------------------------------------------

    def _spawn(self, coro: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(f"{name}:{self.info.id[:8]}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(WATCHDOG_PERIOD_S)
            now = time.monotonic()
            if not self._connected and now - self._created > self._limits.connect_timeout_s:
                await self.close("not connected in time")
                return
            if self._connected and now - self._last_activity > self._limits.idle_timeout_s:
                await self.close("inactive")
                return

    async def close(self, reason: str) -> None:
        if self._closing:
            await self.closed.wait()
            return
        self._closing = True
        self.close_reason = reason
        log.info("closing session", extra={"reason": reason})
        current = asyncio.current_task()
        others = [t for t in self._tasks if t is not current]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        if self._pipeline is not None:
            await self._pipeline.aclose()
        self._playout.stop()
        await self.pc.close()
        self._channel = None
        self._outbox.clear()
        try:
            await self._on_closed(self)
        finally:
            self.closed.set()
