"""What a client can make a media node do, bounded: ICE checks go to allowed addresses
only and to a bounded number of them; data-channel messages and audio are held to a
rate; names and rooms that would forge exports or look like another room are refused;
sessions belong to meetings, whose transcripts need their own claim."""

from __future__ import annotations

import asyncio
import fractions
import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import av
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack

from history import export
from history.records import UtteranceRecord
from media_server.client_messages import MESSAGE_BURST
from media_server.engines.loader import Engines
from media_server.metrics import REGISTRY
from media_server.peer import AUDIO_BURST_S, MAX_AUDIO_SPEED, Peer
from media_server.registry import webrtc
from media_server.remote_candidates import MAX_CANDIDATES, RemoteCandidates
from media_server.settings import Settings
from signaling import tokens
from tests.conftest import Server, start_server
from tests.rtc_client import CaptionClient
from tests.scripted_speech import scripted_engines
from tests.test_durability import bursts

SECRET = "media-limits-secret-6f2d9b4e8a1c3057d1a6"


def bearer(room: str, role: str = "speaker", **claims: Any) -> dict[str, str]:
    token = tokens.mint(SECRET.encode(), room, role=role, ttl_s=600, **claims)
    return {"Authorization": f"Bearer {token}"}


def _metric(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


@pytest.fixture
async def locked(settings: Settings, engines: Engines) -> AsyncIterator[Server]:
    """Tokens on; of loopback, only 127.0.0.1 is an allowed ICE target."""
    scripted = scripted_engines(engines, ["A meeting's words"], min_silence_ms=250)
    configured = settings.replace(auth_secret=SECRET, ice_allowed_networks=("127.0.0.1/32",),
                                  rate_limit_per_s=1000, rate_limit_burst=1000)
    server, runner = await start_server(configured, scripted, dev=False)
    yield server
    await runner.cleanup()
    await scripted.close()


def _remote_candidates(peer: Peer) -> set[tuple[str, int]]:
    """The addresses the node's ICE agent would send checks to."""
    transports = {t.receiver.transport for t in peer.pc.getTransceivers()}
    if peer.pc.sctp is not None:
        transports.add(peer.pc.sctp.transport)
    return {(c.host, c.port) for t in transports if t is not None
            for c in t.transport._connection.remote_candidates}


def test_only_public_or_allowed_addresses_are_ice_targets() -> None:
    candidates = RemoteCandidates(["192.168.10.0/24"])
    refused = {address: candidates.refusal(address) for address in (
        "10.0.0.5", "172.16.3.4", "192.168.1.1", "169.254.169.254", "127.0.0.1", "::1",
        "fe80::1", "fd00:ec2::254", "100.64.0.1", "224.0.0.251", "0.0.0.0",
        "4f3c2a1e-77b1-4d0e-9a6a-2f1d3c4b5a69.local", "example.com")}
    assert refused == {**{a: "address" for a in refused}, "example.com": "name",
                       "4f3c2a1e-77b1-4d0e-9a6a-2f1d3c4b5a69.local": "name"}
    assert candidates.refusal("192.168.10.7") is None  # an allowed network
    assert candidates.refusal("8.8.8.8") is None and candidates.refusal("2001:4860::8888") \
        is None  # public addresses (classified only: nothing is sent)
    for _ in range(MAX_CANDIDATES):
        assert candidates.take("192.168.10.7")
    assert candidates.refusal("8.8.8.8") == "too_many"


async def test_ice_candidates_are_filtered_and_capped(locked: Server) -> None:
    async with aiohttp.ClientSession(headers=bearer("ice")) as http:
        async with http.post(locked.url + "/api/sessions",
                             json={"room": "ice", "speak": False}) as resp:
            session = (await resp.json())["session_id"]
        refused_before = _metric("live_interpreter_ice_candidates_refused_total",
                                 {"reason": "address"})
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.createDataChannel("captions")
        pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        # The offer as a client could send it: with candidates of its choosing.
        lines = pc.localDescription.sdp.split("\r\n")
        at = next(i for i, line in enumerate(lines) if line.startswith("a=candidate:"))
        extra = [f"a=candidate:{n} 1 udp 2130706431 127.0.0.{n} 9 typ host" for n in (2, 3, 4)]
        offer = "\r\n".join(lines[:at] + extra + lines[at:])
        async with http.post(f"{locked.url}/api/sessions/{session}/offer",
                             json={"sdp": offer, "type": "offer"}) as resp:
            await pc.setRemoteDescription(RTCSessionDescription(**await resp.json()))
        peer = locked.registry.get(session)
        assert {host for host, _ in _remote_candidates(webrtc(peer))} == {"127.0.0.1"}
        assert _metric("live_interpreter_ice_candidates_refused_total",
                       {"reason": "address"}) - refused_before == 3
        # Trickled: refused ones are skipped (204, not used); past the cap, 400.
        ice = f"{locked.url}/api/sessions/{session}/ice"
        trickled = [{"candidate": f"candidate:7 1 udp 1 127.0.0.9 {9000 + n} typ host",
                     "sdpMid": "0"} for n in range(3)]
        async with http.patch(ice, json={"candidates": trickled}) as resp:
            assert resp.status == 204
        assert "127.0.0.9" not in {host for host, _ in _remote_candidates(webrtc(peer))}
        many = [{"candidate": f"candidate:8 1 udp 1 127.0.0.1 {20000 + n} typ host",
                 "sdpMid": "0"} for n in range(MAX_CANDIDATES)]
        async with http.patch(ice, json={"candidates": many}) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["code"] == "too_many_candidates"
        assert len(_remote_candidates(webrtc(peer))) <= MAX_CANDIDATES
        await pc.close()


async def test_a_flood_of_channel_messages_is_dropped_with_one_error(
        locked: Server) -> None:
    async with aiohttp.ClientSession(headers=bearer("flood")) as http:
        client = CaptionClient(locked.url, http)
        await client.start(None, room="flood", speak=False)
        await client.wait_for(lambda m: m["type"] == "pong")  # the client's own pinger
        dropped_before = _metric("live_interpreter_channel_messages_refused_total")
        for _ in range(200):
            client.send({"type": "ping"})
        error = await client.wait_for(lambda m: m["type"] == "error")
        assert error["code"] == "rate_limited"
        await asyncio.sleep(1.5)  # what was sent has arrived; the bucket refills
        client.send({"type": "set_language", "target": "pt"})
        await client.wait_for(lambda m: m["type"] == "participant"
                              and m["participant"]["target_lang"] == "pt")
        pongs = sum(1 for r in client.received if r.message["type"] == "pong")
        errors = [r.message for r in client.received if r.message["type"] == "error"]
        assert pongs <= MESSAGE_BURST + 10  # the burst, what refilled, the pinger's
        assert len(errors) == 1  # once per flood, not once per message
        assert _metric("live_interpreter_channel_messages_refused_total") - dropped_before \
            >= 200 - MESSAGE_BURST - 10
        await client.close()


class Hurried(AudioStreamTrack):
    """A microphone that sends its audio as fast as it can be encoded."""

    def __init__(self, pcm: np.ndarray) -> None:
        super().__init__()
        self._pcm, self._at = pcm, 0

    async def recv(self) -> av.AudioFrame:
        chunk = self._pcm[self._at:self._at + 960]
        if len(chunk) < 960:
            chunk = np.zeros(960, dtype=np.int16)
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts = 48000, self._at
        frame.time_base = fractions.Fraction(1, 48000)
        self._at += 960
        await asyncio.sleep(0.002)  # 20 ms of audio every 2 ms: about 10x real time
        return frame


async def test_audio_faster_than_real_time_is_dropped(
        locked: Server, jfk48: np.ndarray) -> None:
    dropped_before = _metric("live_interpreter_audio_dropped_seconds_total")
    async with aiohttp.ClientSession(headers=bearer("hurry")) as http:
        async with http.post(locked.url + "/api/sessions", json={"room": "hurry"}) as resp:
            session = (await resp.json())["session_id"]
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.createDataChannel("captions")
        pc.addTrack(Hurried(np.tile(jfk48, 10)))  # 110 s of speech
        await pc.setLocalDescription(await pc.createOffer())
        async with http.post(f"{locked.url}/api/sessions/{session}/offer", json={
                "sdp": pc.localDescription.sdp, "type": "offer"}) as resp:
            await pc.setRemoteDescription(RTCSessionDescription(**await resp.json()))
        connected = time.monotonic()
        peer = locked.registry.get(session)
        try:
            while time.monotonic() - connected < 4.0:
                await asyncio.sleep(0.25)
                chain = peer.chain
                heard_s = 0.0 if chain is None else chain.pipeline.audio_ms / 1000
                # Never more than real time x 1.2 plus the burst allowance (measured from
                # before the first frame arrived, so the bound is generous).
                allowed_s = MAX_AUDIO_SPEED * (time.monotonic() - connected) + AUDIO_BURST_S
                assert heard_s <= allowed_s + 0.1, (heard_s, allowed_s)
            assert heard_s > 2.0  # it was heard, at the pace allowed
            assert _metric("live_interpreter_audio_dropped_seconds_total") - dropped_before \
                > 5.0  # the rest, at ~10x real time, was dropped
        finally:
            await pc.close()


@pytest.mark.parametrize(("field", "value", "code"), [
    ("name", "Ana\n\n00:00:01.000 --> 00:00:09.000\nForged", "bad_name"),
    ("name", "Ana\u202eevil", "bad_name"),
    ("name", "Bob\x00", "bad_name"),
    ("room", ".", "bad_room"),
    ("room", "..", "bad_room"),
    ("room", "st\u0430ndup", "bad_room"),  # a Cyrillic a: looks like "standup"
    ("room", "standup\n", "bad_room"),
    ("stt_model", "chirp_9", "bad_model"),
])
async def test_names_rooms_and_models_that_would_mislead_are_refused(
        server: Server, http: aiohttp.ClientSession, field: str, value: str,
        code: str) -> None:
    body = {"room": "standup", "name": "Ana", field: value}
    async with http.post(server.url + "/api/sessions", json=body) as resp:
        assert resp.status == 400 and (await resp.json())["error"]["code"] == code
    assert len(server.registry) == 0


def test_exports_keep_each_cue_on_its_lines() -> None:
    forged = UtteranceRecord("s", "u1", "r", "p", "Ana\n\n00:00:01.000 --> 00:00:09.000",
                             "en", "Hello\nthere", 0, 1000)
    vtt = export.render("vtt", "r", records=[forged], sessions=[], lang=None)
    srt = export.render("srt", "r", records=[forged], sessions=[], lang=None)
    for text in (vtt, srt):  # one timing line: no cue forged by a name's line breaks
        assert len(re.findall(r"^\d\d:\d\d:\d\d[.,]\d{3} --> ", text, re.MULTILINE)) == 1
    assert "Hello there" in vtt and "Hello there" in srt


async def test_each_opening_of_a_room_is_a_meeting_read_with_its_own_claim(
        locked: Server, jfk48: np.ndarray) -> None:
    room = f"minutes-{secrets.token_hex(4)}"  # a room no other test has held
    meetings = []
    for _ in range(2):  # the room opens, someone speaks, everyone leaves: twice
        async with aiohttp.ClientSession(headers=bearer(room)) as http:
            client = CaptionClient(locked.url, http)
            await client.start(bursts(jfk48, 1), room=room)
            await client.wait_for(lambda m: m["type"] == "caption" and m["status"] == "final"
                                  and bool(m["text"]))
            async with http.get(f"{locked.url}/api/sessions/{client.session_id}") as resp:
                meetings.append((await resp.json())["meeting"])
            await client.close()
    first, second = meetings
    assert first != second
    base = f"{locked.url}/api/rooms/{room}"
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/transcript?format=json", headers=bearer(room)) as resp:
            assert resp.status == 403  # in the room is not enough
        everything = bearer(room, "listener", transcript=True)
        async with http.get(base + "/meetings", headers=everything) as resp:
            listed = (await resp.json())["meetings"]
            assert [m["meeting"] for m in listed] == [first, second]
            assert all(m["ended_at"] is not None for m in listed)
        said = {}
        for meeting in (first, second):
            async with http.get(f"{base}/transcript?format=json&meeting={meeting}",
                                headers=everything) as resp:
                assert resp.status == 200
                said[meeting] = [u["text"] for u in (await resp.json())["utterances"]]
        assert said[first] and said[second] and not set(said[first]) & set(said[second])
        async with http.get(base + "/transcript?format=json", headers=everything) as resp:
            assert [u["text"] for u in (await resp.json())["utterances"]] == said[second]
        only_first = bearer(room, "listener", transcript=True, meeting=first)
        async with http.get(base + "/meetings", headers=only_first) as resp:
            assert [m["meeting"] for m in (await resp.json())["meetings"]] == [first]
        async with http.get(base + "/transcript?format=json", headers=only_first) as resp:
            assert [u["text"] for u in (await resp.json())["utterances"]] == said[first]
        async with http.get(f"{base}/transcript?meeting={second}", headers=only_first) as resp:
            assert resp.status == 404
            assert (await resp.json())["error"]["code"] == "unknown_meeting"
    assert json.dumps(listed)
