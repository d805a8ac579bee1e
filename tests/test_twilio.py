"""A phone call through Twilio's bidirectional Media Streams (`GET /twilio/{room}`),
with the `websockets` library playing Twilio: `connected`, `start` with the stream's
parameters, µ-law `media` every 20 ms in real time, `stop`; the translation comes back
as `media` and each clip's end as a `mark`."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from typing import Any, cast

import aiohttp
import numpy as np
import pytest
import websockets
from aiohttp import web

from media_server.engines.catalog import EngineCatalog
from media_server.engines.loader import Engines
from media_server.metrics import REGISTRY
from media_server.participant import Participant, SessionInfo
from media_server.peer import PeerConfig
from media_server.playout import Clip
from media_server.room import Room
from media_server.settings import Settings
from media_server.socket_audio import SocketAudio, mulaw_decode
from media_server.socket_framing import TwilioFraming, TwilioStart
from media_server.socket_peer import MAX_AUDIO_BEHIND_S, SocketPeer
from media_server.socket_writer import SocketWriter
from signaling import tokens
from tests.conftest import JFK_TEXT, Server, start_server, wer
from tests.socket_client import SocketClient, encoded, socket_url

MULAW = SocketAudio("mulaw", 8000)
FRAME = 160  # 20 ms of µ-law at 8 kHz, as Twilio sends it


def start_message(**parameters: str) -> str:
    return json.dumps({
        "event": "start", "sequenceNumber": "1", "streamSid": "MZ0123456789abcdef",
        "start": {"accountSid": "AC01", "streamSid": "MZ0123456789abcdef", "callSid": "CA01",
                  "tracks": ["inbound"], "customParameters": parameters,
                  "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000,
                                  "channels": 1}}})


def _media(payload: bytes, n: int) -> str:
    return json.dumps({"event": "media", "sequenceNumber": str(n + 2),
                       "streamSid": "MZ0123456789abcdef",
                       "media": {"track": "inbound", "chunk": str(n + 1),
                                 "timestamp": str(n * 20),
                                 "payload": base64.b64encode(payload).decode()}})


def _url(server: Server, room: str) -> str:
    return f"{server.url.replace('http://', 'ws://')}/twilio/{room}"


class FakeTwilio:
    """What Twilio does on a call: streams the caller and keeps what comes back."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.events: list[tuple[float, dict[str, Any]]] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.ws:
                self.events.append((time.monotonic(), json.loads(raw)))

    async def call(self, mulaw: bytes) -> None:
        start = time.monotonic()
        for n, at in enumerate(range(0, len(mulaw), FRAME)):
            await asyncio.sleep(max(0.0, start + n * 0.02 - time.monotonic()))
            await self.ws.send(_media(mulaw[at:at + FRAME].ljust(FRAME, b"\xff"), n))

    async def until_quiet(self, quiet_s: float = 1.5, within: float = 30.0) -> None:
        """Until no audio came for `quiet_s`: the translation has been said."""
        deadline = time.monotonic() + within
        while not self.of("media") or time.monotonic() - self.of("media")[-1][0] < quiet_s:
            assert time.monotonic() < deadline, "the translation never ended"
            await asyncio.sleep(0.1)

    def of(self, event: str) -> list[tuple[float, dict[str, Any]]]:
        return [(t, e) for t, e in self.events if e["event"] == event]

    async def hang_up(self) -> None:
        await self.ws.send(json.dumps({"event": "stop", "sequenceNumber": "999",
                                       "streamSid": "MZ0123456789abcdef",
                                       "stop": {"accountSid": "AC01", "callSid": "CA01"}}))
        await self._reader


async def test_a_caller_is_interpreted_and_hears_the_translation(
        server: Server, jfk48: np.ndarray) -> None:
    ws = await websockets.connect(_url(server, "hotline"))
    twilio = FakeTwilio(ws)
    await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
    await ws.send(start_message(source_lang="en", target_lang="pt", name="Caller"))
    # Someone in the room reads the call's captions.
    reader = await SocketClient.open(socket_url(server.url, "hotline", speak="false",
                                                target_lang="pt"), SocketAudio())
    try:
        silence = b"\xff" * 8000 * 12  # Twilio goes on streaming the line's silence
        await twilio.call(encoded(jfk48, MULAW) + silence)
        await twilio.until_quiet()
        caller = [f for f in reader.finals() if f["speaker"] == "Caller"]
        assert wer(JFK_TEXT, " ".join(f["text"] for f in caller)) <= 0.15, caller
        assert all(f["translation"]["lang"] == "pt" for f in caller)
        media = twilio.of("media")
        assert media and {e["streamSid"] for _, e in media} == {"MZ0123456789abcdef"}
        payloads = [base64.b64decode(e["media"]["payload"]) for _, e in media]
        assert {len(p) for p in payloads} == {FRAME}
        pcm = np.frombuffer(mulaw_decode(b"".join(payloads)), dtype="<i2") / 32768
        assert float(np.sqrt(np.mean(pcm**2))) > 0.02  # audible on the call
        start = media[0][0]
        for n, (arrived, _) in enumerate(media):  # paced as it plays, not in a burst
            assert arrived - start >= n * 0.02 - 0.5
        marks = twilio.of("mark")
        assert marks, "no clip's end was marked"
        names = [e["mark"]["name"] for _, e in marks]
        assert all("/" in name for name in names) and len(set(names)) == len(names)
        assert marks[-1][0] >= media[-1][0] - 0.1  # the last mark after the last audio
    finally:
        await twilio.hang_up()
        await reader.close()
    assert ws.close_code == 1000  # `stop` ends the call's session


SECRET = "twilio-test-secret-3e9a1c7d5b2f8046a9d1"


async def test_a_broken_or_unauthorised_stream_is_closed_with_a_reason(
        settings: Settings, engines: Engines, http: aiohttp.ClientSession) -> None:
    server, runner = await start_server(settings.replace(auth_secret=SECRET), engines,
                                        dev=False)
    token = tokens.mint(SECRET.encode(), "hotline", role="speaker", ttl_s=60)
    other = tokens.mint(SECRET.encode(), "elsewhere", role="speaker", ttl_s=60)
    listener = tokens.mint(SECRET.encode(), "hotline", role="listener", ttl_s=60)
    mulaw8k = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    wrong_format = json.loads(start_message(token=token))
    wrong_format["start"]["mediaFormat"] = {**mulaw8k, "sampleRate": 16000}
    try:
        cases: list[tuple[list[str | bytes], int, str]] = [
            ([_media(b"\xff" * FRAME, 0)], 1008, "'media' before 'start'"),
            (["not json"], 1007, "a frame that is not JSON"),
            ([b"\x00" * FRAME], 1003, "Twilio Media Streams send JSON text frames"),
            ([json.dumps(wrong_format)], 1003, "only audio/x-mulaw at 8000 Hz, mono"),
            ([start_message()], 1008, "token_missing"),
            ([start_message(token=other)], 1008, "token_wrong_room"),
            ([start_message(token=listener)], 1008, "role_forbidden"),
            ([start_message(token=token, source_lang="xx-YY")], 1008, "unsupported_language"),
        ]
        for frames, code, reason in cases:
            async with websockets.connect(_url(server, "hotline")) as ws:
                for frame in frames:
                    await ws.send(frame)
                with pytest.raises(websockets.ConnectionClosed):
                    while True:
                        await ws.recv()
                assert ws.close_code == code, (frames, ws.close_reason)
                assert (ws.close_reason or "").startswith(reason), ws.close_reason
        async with http.get(f"{server.url}/twilio/hotline") as plain:
            assert plain.status == 400
        assert len(server.registry) == 0  # nothing was left open
        # ...and a good call is taken, then its media after `start`.
        async with websockets.connect(_url(server, "hotline")) as ws:
            await ws.send(start_message(token=token, source_lang="en", target_lang="es"))
            await ws.send(_media(b"\xff" * FRAME, 0))
            deadline = time.monotonic() + 10
            while not len(server.registry):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
    finally:
        await runner.cleanup()


class _GatedSocket:
    """A WebSocket whose reader stops reading while the gate is shut."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.sent: list[dict[str, Any]] = []

    async def send_str(self, data: str) -> None:
        await self.gate.wait()
        self.sent.append(json.loads(data))

    async def send_bytes(self, data: bytes) -> None:
        raise AssertionError("Twilio gets text frames only")


async def test_a_call_that_falls_behind_is_told_to_clear_what_it_holds() -> None:
    info = SessionInfo(id="s", room="r", name="Caller", source_lang="en", target_lang="pt",
                       speak=True, participant_id="p", monitor=True, kind="twilio")
    caller = Participant(info, lambda: 0)
    peer = SocketPeer(caller, cast(Room, None), catalog=cast(EngineCatalog, None),
                      limits=PeerConfig(idle_timeout_s=5, connect_timeout_s=5,
                                        max_message_bytes=4096),
                      on_closed=lambda peer: asyncio.sleep(0))
    ws = _GatedSocket()
    writer = SocketWriter(cast(web.WebSocketResponse, ws), max_audio_s=MAX_AUDIO_BEHIND_S,
                          carries_messages=False, gave_up=lambda: None)
    framing = TwilioFraming(TwilioStart("MZ1", "CA1", {}))
    tone = (np.sin(np.arange(3 * 48000) * 2 * np.pi * 300 / 48000) * 8000).astype("<i2")
    caller.play(Clip(tone.tobytes(), "u-1", "pt", complete=True))
    dropped = REGISTRY.get_sample_value("live_interpreter_socket_audio_dropped_seconds_total")
    peer._audio = MULAW  # as serve() sets it
    playing = asyncio.create_task(peer._play(writer, framing))
    try:
        await asyncio.sleep(2.0)  # Twilio reads nothing meanwhile
        ws.gate.set()
        deadline = time.monotonic() + 10
        while not any(m["event"] == "mark" for m in ws.sent):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    finally:
        playing.cancel()
        await asyncio.gather(playing, return_exceptions=True)
        await writer.aclose()
        caller.close()
    events = [m["event"] for m in ws.sent]
    # The second of audio it was behind by, then `clear`, then the audio that goes on.
    first_clear = events.index("clear")
    assert events.count("clear") == 1
    assert first_clear == MAX_AUDIO_BEHIND_S / 0.02 and "media" in events[first_clear:]
    assert events[-1] == "mark"
    after = REGISTRY.get_sample_value("live_interpreter_socket_audio_dropped_seconds_total")
    assert (after or 0) - (dropped or 0) >= 0.5
