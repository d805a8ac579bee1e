"""One participant's RTCPeerConnection: offer/answer, tracks, data channel, clean-up.

Everything a peer starts (tasks, the speech stream, its speaker slot, its place in
the room) is released by `close()`, whichever way the peer ends: DELETE, a `bye`
on the data channel, ICE failure, or silence past the inactivity timeout (a
closed tab is otherwise only noticed by aiortc after ~30 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import av
from aiortc import (
    RTCConfiguration,
    RTCIceCandidate,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcdatachannel import RTCDataChannel
from aiortc.sdp import candidate_from_sdp

from media_server.client_messages import ClientMessages
from media_server.engines.catalog import EngineCatalog
from media_server.errors import BadRequest, Conflict
from media_server.ice_addresses import announce
from media_server.log import session_id_var
from media_server.metrics import AUDIO_DROPPED, AUDIO_RECEIVED
from media_server.offer import check_offer
from media_server.participant import Participant
from media_server.pipeline import SpeakerPipeline
from media_server.protocol import CHANNEL_LABEL
from media_server.remote_candidates import MAX_CANDIDATES, RemoteCandidates
from media_server.return_track import EncodedReturnTrack
from media_server.room import Room
from media_server.speaker_chain import SpeakerChain, speaker_chain
from media_server.tasks import cancel_and_wait
from media_server.token_bucket import TokenBucket

log = logging.getLogger(__name__)

WATCHDOG_PERIOD_S = 0.5
# Audio beyond this multiple of real time is dropped (a sender faster than its clock
# would otherwise grow every buffer behind it); the burst covers jitter and an
# event-loop stall, after which what the socket held arrives at once.
MAX_AUDIO_SPEED, AUDIO_BURST_S = 1.2, 3.0


@dataclass(frozen=True)
class PeerConfig:
    idle_timeout_s: float
    connect_timeout_s: float
    max_message_bytes: int
    interim_translation_interval_ms: int = 300
    announced_address: str = ""  # what clients are told our host candidates' address is
    offer_wait_s: float = 10.0  # a session with no offer by then is closed
    allowed_networks: tuple[str, ...] = ()  # remote candidates' private networks allowed


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
        participant: Participant,
        room: Room,
        *,
        catalog: EngineCatalog,
        limits: PeerConfig,
        on_closed: Callable[[Peer], Awaitable[None]],
        rtc_config: RTCConfiguration,
        admit: Callable[[Peer], None] = lambda peer: None,
    ) -> None:
        self.participant = participant
        self.info = participant.info
        self.room = room
        self._catalog = catalog
        self._limits = limits
        self._on_closed = on_closed
        self._rtc_config = rtc_config
        self._admit = admit  # raises if the offer may not be taken now (speaker slots)
        self._candidates = RemoteCandidates(limits.allowed_networks)
        self._messages = ClientMessages(participant, room, catalog=catalog,
                                        max_message_bytes=limits.max_message_bytes,
                                        bye=lambda: self._spawn(self.close("bye"), "close"))
        self.pc = RTCPeerConnection(rtc_config)
        self._offered = False
        self._connected = False
        self._closing = False
        self.closed = asyncio.Event()
        self.close_reason = ""
        self._created = time.monotonic()
        self.started_at = time.time()
        self._last_activity = self._created
        # Inactivity is judged only on what shows activity: a data channel (pings) or
        # incoming media. A WHEP player has neither; ICE consent checks end it.
        self._watch_activity = False
        self._chain: SpeakerChain | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        session_id_var.set(self.info.id)
        self._spawn(self._watchdog(), "watchdog")

    @property
    def chain(self) -> SpeakerChain | None:
        """The speaker chain, once the speaker's audio track has arrived."""
        return self._chain

    @property
    def connection_state(self) -> str:
        return self.pc.connectionState

    @property
    def utterances_said(self) -> int:
        """Including those said before a resume: where the numbering goes on."""
        return self._chain.captions.said if self._chain is not None else self.info.said_before

    # -- signaling ------------------------------------------------------------

    async def answer(self, sdp: str, kind: str) -> RTCSessionDescription:
        if kind != "offer":
            raise BadRequest("bad_sdp", f"expected an SDP of type 'offer', got {kind!r}")
        if self._offered:
            raise Conflict("offer_exists", "this session already has a peer connection")
        if not sdp.lstrip().startswith("v="):
            raise BadRequest("bad_sdp", "the offer is not an SDP session description")
        check_offer(sdp, needs_audio=self.info.speak or self.info.kind == "whep")
        self._admit(self)
        self._offered = True
        self._wire(self.pc)
        sdp = self._candidates.filter_sdp(sdp)
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            if "m=audio" in sdp:
                # The return track, before the answer; encoded here (silence for free).
                self.pc.addTrack(EncodedReturnTrack(self.participant.playout))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        except Exception as exc:
            # aiortc raises many kinds of errors on bad SDP. Start over with a fresh
            # connection so that a corrected offer can follow on the same session.
            log.info("offer rejected", extra={"error": repr(exc)})
            broken, self.pc = self.pc, RTCPeerConnection(self._rtc_config)
            self._offered = False
            await _discard(broken)
            raise BadRequest("bad_sdp", f"the offer SDP could not be used: {exc}") from exc
        local = self.pc.localDescription
        return RTCSessionDescription(announce(local.sdp, self._limits.announced_address),
                                     local.type)

    async def add_ice_candidates(self, candidates: list[dict[str, Any]]) -> None:
        if not self._offered:
            raise Conflict("no_offer", "send the offer before ICE candidates")
        for entry in candidates:
            candidate = _parse_candidate(entry)
            if candidate is None:
                continue  # end-of-candidates
            if self._candidates.refusal(candidate.ip) == "too_many":
                raise BadRequest("too_many_candidates", "a session may use at most "
                                 f"{MAX_CANDIDATES} remote candidates")
            if not self._candidates.take(candidate.ip):
                continue  # not an address the node sends checks to
            try:
                await self.pc.addIceCandidate(candidate)
            except Exception as exc:
                raise BadRequest("bad_candidate", f"unusable candidate: {exc}") from exc

    def _wire(self, pc: RTCPeerConnection) -> None:
        @pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            if channel.label != CHANNEL_LABEL or self.participant.channel.attached:
                channel.close()
                return
            channel.on("message", self._on_message)
            channel.on("open", self.participant.channel.flush)
            self.participant.channel.attach(channel)
            self._watch_activity = True

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._watch_activity = True
            if track.kind == "audio" and self.info.speak and self._chain is None:
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
                self.participant.connected()
            elif state in ("failed", "closed"):
                await self.close(f"connection {state}")

    # -- media --------------------------------------------------------------------

    def _start_pipeline(self, track: MediaStreamTrack) -> None:
        chain = self._chain = speaker_chain(
            self.participant, self.room, catalog=self._catalog,
            interim_interval_ms=self._limits.interim_translation_interval_ms)
        self._spawn(chain.pipeline.run(), "pipeline")
        self._spawn(self._receive(track, chain.pipeline), "receive")

    async def _receive(self, track: MediaStreamTrack, pipeline: SpeakerPipeline) -> None:
        real_time = TokenBucket(MAX_AUDIO_SPEED, AUDIO_BURST_S)
        try:
            while True:
                frame = await track.recv()
                self._last_activity = time.monotonic()
                if not isinstance(frame, av.AudioFrame):
                    continue
                seconds = frame.samples / frame.sample_rate
                AUDIO_RECEIVED.inc(seconds)
                if not real_time.take(seconds):
                    AUDIO_DROPPED.inc(seconds)
                    continue
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
        self._messages.take(raw)

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
            if not self._offered and now - self._created > self._limits.offer_wait_s:
                await self.close("no offer in time")
                return
            if not self._connected and now - self._created > self._limits.connect_timeout_s:
                await self.close("not connected in time")
                return
            idle_s = now - self._last_activity
            if self._connected and self._watch_activity and idle_s > self._limits.idle_timeout_s:
                log.info("peer silent", extra={"idle_s": round(idle_s, 3)})
                await self.close("inactive")
                return

    async def close(self, reason: str) -> None:
        if self._closing:
            await self.closed.wait()
            return
        self._closing = True
        self.close_reason = reason
        log.info("closing session", extra={"reason": reason})
        await cancel_and_wait(*self._tasks)
        if self._chain is not None:
            await self._chain.aclose()
        self.participant.close()
        await self.pc.close()
        try:
            await self._on_closed(self)
        finally:
            self.closed.set()


async def _discard(pc: RTCPeerConnection) -> None:
    """Close a connection an offer broke. Its "closed" state must not end the session;
    and aiortc's close stops at a section it never finished setting up, so what it
    did not reach is stopped here, one transport at a time."""
    pc.remove_all_listeners()
    try:
        await pc.close()
    except Exception as exc:
        log.info("closing a broken connection", extra={"error": repr(exc)})
        dtls = {t.receiver.transport for t in pc.getTransceivers()}
        if pc.sctp is not None:
            dtls.add(pc.sctp.transport)
        for transport in dtls - {None}:
            with contextlib.suppress(Exception):
                await transport.stop()
            with contextlib.suppress(Exception):
                await transport.transport.stop()
