"""The live sessions of this process, by id."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import Callable

from aiortc import RTCConfiguration, RTCIceServer

from cache.memory import MemoryKeyValue
from history.records import Archiver, SessionRecord, keep_nothing
from media_server.admission import NewRooms, SpeakerSlots
from media_server.engines.catalog import EngineCatalog
from media_server.engines.health import HealthChange
from media_server.engines.loader import Engines
from media_server.errors import BadRequest, Conflict, NotFound, Unavailable
from media_server.metrics import ACTIVE_ROOMS, ACTIVE_SESSIONS, ACTIVE_SPEAKERS, ROOM_VOICES
from media_server.participant import Participant, SessionInfo
from media_server.peer import Peer, PeerConfig
from media_server.protocol import (
    EngineMessage,
    ErrorMessage,
    Interpretation,
    ProtocolError,
    interpretation,
)
from media_server.resumable import ResumableSessions, ResumeState
from media_server.room import ROOM_NAME, Publisher, Room, Rooms, publish_nothing
from media_server.settings import Settings
from media_server.socket_peer import SocketPeer

log = logging.getLogger(__name__)

_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
Authorize = Callable[[str, bool, str], None]  # (room, speak, owner): raises if not allowed
MAX_NAME_CHARS = 64
Session = Peer | SocketPeer  # over WebRTC (browsers, WHIP/WHEP) or a WebSocket
SOCKET_KINDS = ("socket", "twilio")


class SessionRegistry:
    def __init__(self, settings: Settings, engines: Engines, *, archive: Archiver = keep_nothing,
                 states: ResumableSessions | None = None,
                 publish: Publisher = publish_nothing) -> None:
        self._settings = settings
        self._engines = engines
        self._archive = archive
        # Where a dropped session waits to be resumed.
        self._states = states or ResumableSessions(MemoryKeyValue(), settings.session_grace_s)
        self._peers: dict[str, Session] = {}
        self._empty = asyncio.Event()  # set while no session is open
        self._empty.set()
        self.speakers = SpeakerSlots(settings.max_speakers)  # the operator's cap, if any
        self.rooms = Rooms(engines.catalog, settings.max_room_participants, archive=archive,
                           publish=publish)
        self.new_rooms = NewRooms(self.rooms, engines.scheduler)
        ROOM_VOICES.set_function(self.rooms.voices_heard)  # read as /metrics is scraped
        self._limits = PeerConfig(
            idle_timeout_s=settings.peer_idle_timeout_s,
            connect_timeout_s=settings.offer_timeout_s,
            max_message_bytes=settings.max_message_bytes,
            interim_translation_interval_ms=settings.interim_translation_interval_ms,
            announced_address=settings.ice_announced_address,
            offer_wait_s=settings.offer_wait_s,
            allowed_networks=settings.ice_allowed_networks,
        )
        # The server's own ICE: no STUN unless configured (a media server with a
        # public address needs none, and an unreachable one delays every answer by 5 s).
        self._rtc_config = RTCConfiguration(
            iceServers=[RTCIceServer(urls=url) for url in settings.stun_urls]
        )
        engines.board.subscribe(self._engine_changed)

    def __len__(self) -> int:
        return len(self._peers)

    @property
    def catalog(self) -> EngineCatalog:
        return self._engines.catalog

    def create(
        self, room: str, *, name: str, source_lang: str, target_lang: str, speak: bool,
        monitor: bool | None = None, stt_model: str = "", kind: str = "webrtc",
        interpretation: str = "", owner: str = "", resumed: ResumeState | None = None,
    ) -> Session:
        mode = _interpretation(interpretation or self._settings.interpretation)
        self._check(room, name=name, langs=(source_lang, target_lang), stt_model=stt_model)
        self.catalog.check_languages(source_lang, target_lang, speak)
        if len(self._peers) >= self._settings.max_sessions:
            raise Unavailable("too_many_sessions", "the server has no room for another session")
        joining = self.rooms.admit(room)
        if not len(joining):
            self.new_rooms.check()  # a new call, if the recogniser has room for it
        if speak:
            self.speakers.check()  # the slot itself is taken with the offer
        if resumed is not None and resumed.session.meeting:
            joining.continue_meeting(resumed.session.meeting)
        session_id = resumed.session.session_id if resumed else self._new_session_id()
        info = SessionInfo(
            id=session_id, room=room, name=name.strip(), source_lang=source_lang,
            target_lang=target_lang, speak=speak,
            participant_id=(resumed.session.participant_id if resumed
                            else _participant_id(joining)),
            # Alone, one hears one's own words interpreted; with others, by choice.
            monitor=not len(joining) if monitor is None else monitor,
            stt_model=stt_model, kind=kind, said_before=resumed.utterances if resumed else 0,
            owner=owner, meeting=joining.meeting,
        )
        participant = Participant(info, joining.clock_ms,
                                  clip_gap_ms=self._settings.tts_clip_gap_ms,
                                  max_clip_delay_s=self._settings.tts_max_delay_s,
                                  interpretation=mode)
        if resumed is not None:
            participant.tts_enabled = resumed.tts
            if resumed.room_clock_origin is not None:
                joining.continue_clock(resumed.room_clock_origin)
        peer: Session
        if kind in SOCKET_KINDS:
            peer = SocketPeer(participant, joining, catalog=self.catalog, limits=self._limits,
                              on_closed=self._forget, admit=self._take_slot)
        else:
            peer = Peer(participant, joining, catalog=self.catalog, limits=self._limits,
                        on_closed=self._forget, rtc_config=self._rtc_config,
                        admit=self._take_slot)
        for change in self._engines.board.degraded():  # said again once the channel opens
            participant.send(_engine_message(change))
        self._peers[session_id] = peer
        self.rooms.join(joining, participant)
        self._archive(_session_record(peer))
        self._count()
        log.info("session resumed" if resumed else "session created",
                 extra={"session_id": session_id, "room": room, "speak": speak,
                        "source_lang": source_lang, "participant": info.participant_id})
        return peer

    def _check(self, room: str, *, name: str, langs: tuple[str, str], stt_model: str) -> None:
        """What a client asked for is well formed (whether it is served is the catalog's)."""
        if not ROOM_NAME.fullmatch(room):
            raise BadRequest("bad_room", "room must be 1-64 ASCII letters, digits, '.', '_' "
                             "or '-', and not '.' or '..'")
        if not name.strip() or len(name) > MAX_NAME_CHARS or not name.isprintable():
            raise BadRequest("bad_name", f"name must be 1-{MAX_NAME_CHARS} printable "
                             "characters (no line breaks or control characters)")
        for lang in langs:
            if not _LANG.match(lang):
                raise BadRequest("bad_language", f"{lang!r} is not a language code")
        if stt_model and stt_model not in self._settings.google_stt_models:
            raise BadRequest("bad_model", f"{stt_model!r} is not one of this server's speech "
                             f"models: {', '.join(self._settings.google_stt_models)}")

    async def resume(self, session_id: str,
                     authorize: Authorize = lambda room, speak, owner: None) -> Session:
        """The session again, for a client that lost its connection: same participant,
        numbering on from where it was. A connection still open here is replaced.
        `authorize(room, speak, owner)` raises if the caller may not (before anything
        changes)."""
        live = self._peers.get(session_id)
        if live is not None:
            authorize(live.info.room, live.info.speak, live.info.owner)
            await live.close("resumed")  # its state is kept as it closes
        state = await self._states.take(session_id)
        if state is None:
            raise NotFound("unknown_session", "no session to resume: it never existed, was "
                           "ended by its client, or its grace period has passed")
        session = state.session
        try:
            authorize(session.room, session.speak, state.owner)
            return self.create(session.room, name=session.name,
                               source_lang=session.source_lang,
                               target_lang=session.target_lang, speak=session.speak,
                               monitor=state.monitor, stt_model=state.stt_model,
                               interpretation=state.interpretation, owner=state.owner,
                               resumed=state)
        except Exception:
            await self._states.keep(state)  # refused (room full, no token...): not lost
            raise

    def _take_slot(self, peer: Session) -> None:
        """As a speaker's offer arrives: its slot under `MAX_SPEAKERS`, or 503."""
        if peer.info.speak:
            self.speakers.acquire(peer.info.id)
            self._count()

    def get(self, session_id: str) -> Session:
        peer = self._peers.get(session_id)
        if peer is None:
            raise NotFound("unknown_session", "no such session")
        return peer

    async def close(self, session_id: str, reason: str) -> None:
        """Ended by its client: not to be resumed."""
        await self.get(session_id).close(reason)
        await self._states.forget(session_id)

    async def close_all(self) -> None:
        self._engines.board.unsubscribe(self._engine_changed)
        await asyncio.gather(*(p.close("server shutdown") for p in list(self._peers.values())))

    def _engine_changed(self, change: HealthChange) -> None:
        """Every client hears when a provider is taken out or comes back."""
        for peer in list(self._peers.values()):
            if not change.healthy:
                peer.participant.send(ErrorMessage(
                    "engine_degraded", f"the {change.kind} provider {change.provider!r} "
                    "is failing; a fallback serves until it recovers"))
            peer.participant.send(_engine_message(change))

    def _new_session_id(self) -> str:
        """144 random bits; on a media node, after its name (`<node>.<random>`), which is
        how signaling knows where to send the session's requests."""
        random = secrets.token_urlsafe(18)
        return f"{self._settings.node_id}.{random}" if self._settings.node_id else random

    @property
    def speaking(self) -> int:
        return sum(p.info.speak for p in self._peers.values())

    async def emptied(self) -> None:
        """Return once no session is open (a draining node waits for this)."""
        await self._empty.wait()

    def _count(self) -> None:
        if self._peers:
            self._empty.clear()
        else:
            self._empty.set()
        ACTIVE_SESSIONS.set(len(self._peers))
        ACTIVE_SPEAKERS.set(self.speaking)
        ACTIVE_ROOMS.set(len(self.rooms))

    async def _forget(self, peer: Session) -> None:
        participant = peer.participant
        clock_origin = peer.room.clock_origin()
        try:
            # Kept before the session leaves the registry: whoever sees it gone (a
            # client coming back at once) finds it to resume.
            await self._states.keep(ResumeState(
                participant.description(), monitor=participant.monitor,
                tts=participant.tts_enabled, interpretation=participant.interpretation,
                stt_model=peer.info.stt_model,
                utterances=peer.utterances_said, room_clock_origin=clock_origin,
                owner=peer.info.owner))
        finally:
            self._peers.pop(peer.info.id, None)
            self.speakers.release(peer.info.id)
            await self.rooms.leave(peer.room, participant)
            self._count()
            self._archive(_session_record(peer, ended_at=time.time()))


def webrtc(session: Session) -> Peer:
    """The session's peer connection, for the calls only WebRTC has (offer, ICE)."""
    if not isinstance(session, Peer):
        raise Conflict("not_webrtc", "this session is on a WebSocket: it has no offer, "
                       "answer or ICE candidates")
    return session


def _interpretation(mode: str) -> Interpretation:
    try:
        return interpretation(mode)
    except ProtocolError as exc:
        raise BadRequest(exc.code, exc.message) from exc


def _participant_id(room: Room) -> str:
    taken = {p.id for p in room.participants()}
    while (candidate := secrets.token_hex(4)) in taken:
        pass
    return candidate


def _session_record(peer: Session, ended_at: float | None = None) -> SessionRecord:
    return SessionRecord(peer.participant.description(), peer.started_at, ended_at)


def _engine_message(change: HealthChange) -> EngineMessage:
    return EngineMessage(change.kind, change.provider,
                         "restored" if change.healthy else "degraded")
