"""WHIP (RFC 9725) ingest and WHEP playback, spoken exactly as the protocols say, by
real aiortc peers: a WHIP speaker is captioned for the room, a WHEP player hears
the interpretation, and bad requests get the RFC's status codes."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator

import aiohttp
import av
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from media_server.engines.loader import Engines
from media_server.settings import Settings
from signaling import tokens
from signaling.whip import _link_headers
from tests.conftest import JFK_TEXT, Server, start_server, wer
from tests.rtc_client import CaptionClient, PcmTrack

ROOM = "stage"
SDP = {"Content-Type": "application/sdp"}
FRAGMENT = {"Content-Type": "application/trickle-ice-sdpfrag"}


class Player:
    """A WHEP player: receives the room's interpretation and measures its loudness."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTransceiver("audio", direction="recvonly")
        self.levels: list[tuple[float, float]] = []
        self._tasks: list[asyncio.Future[None]] = []
        self.pc.on("track", lambda track: self._tasks.append(
            asyncio.ensure_future(self._record(track))))

    async def _record(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.AudioFrame)
                samples = frame.to_ndarray().astype(np.float64) / 32768
                self.levels.append((time.monotonic(), float(np.sqrt(np.mean(samples**2)))))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.pc.close()


async def _offer(pc: RTCPeerConnection) -> str:
    await pc.setLocalDescription(await pc.createOffer())
    return str(pc.localDescription.sdp)


def _fragment(sdp: str, ufrag: str | None = None) -> str:
    """An RFC 8840 fragment re-sending the offer's first candidate."""
    lines = sdp.splitlines()
    own_ufrag = next(x for x in lines if x.startswith("a=ice-ufrag:")).split(":", 1)[1]
    candidate = next(x for x in lines if x.startswith("a=candidate:"))
    return "\r\n".join([f"a=ice-ufrag:{ufrag or own_ufrag}", "a=ice-pwd:whatever",
                        "m=audio 9 UDP/TLS/RTP/SAVPF 0", "a=mid:0", candidate,
                        "a=end-of-candidates", ""])


@pytest.fixture
async def speaker() -> AsyncIterator[RTCPeerConnection]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    yield pc
    await pc.close()


async def test_a_whip_speaker_is_captioned_and_a_whep_player_hears_the_interpretation(
        server: Server, http: aiohttp.ClientSession, jfk48: np.ndarray,
        speaker: RTCPeerConnection) -> None:
    reader = CaptionClient(server.url, http)
    await reader.start(None, room=ROOM, name="Lia", target_lang="pt", speak=False)
    player = Player()
    async with http.post(f"{server.url}/whep/{ROOM}?lang=pt", data=await _offer(player.pc),
                         headers=SDP) as resp:
        assert resp.status == 201, await resp.text()
        assert resp.headers["Content-Type"] == "application/sdp"
        player_location = resp.headers["Location"]
        await player.pc.setRemoteDescription(RTCSessionDescription(await resp.text(), "answer"))

    speaker.addTransceiver(PcmTrack(jfk48, 0.3), direction="sendonly")
    offer = await _offer(speaker)
    async with http.post(f"{server.url}/whip/{ROOM}?lang=en&name=Stage", data=offer,
                         headers=SDP) as resp:
        assert resp.status == 201, await resp.text()
        assert resp.headers["Content-Type"] == "application/sdp"
        location, etag = resp.headers["Location"], resp.headers["ETag"]
        assert location.startswith(f"/whip/{ROOM}/") and etag.startswith('"')
        answer = await resp.text()
    assert "a=recvonly" in answer  # we only receive from a WHIP client
    await speaker.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    # Trickle ICE: a fragment with the session's ufrag is taken (204).
    async with http.patch(server.url + location, data=_fragment(offer),
                          headers={**FRAGMENT, "If-Match": etag}) as resp:
        assert resp.status == 204

    last = await reader.wait_for(lambda m: m["type"] == "caption" and m["status"] == "final"
                                 and "for your country" in m["text"].lower(), within=25)
    assert last["speaker"] == "Stage" and last["translation"]["lang"] == "pt"
    assert wer(JFK_TEXT, " ".join(f["text"] for f in reader.finals())) <= 0.15
    # The WHEP player hears the Portuguese clips.
    await reader.wait_for(lambda m: m["type"] == "speech"
                          and m["utterance_id"] == last["utterance_id"], within=10)
    await asyncio.sleep(1.5)
    assert sum(level > 0.01 for _, level in player.levels) > 50  # over a second of speech

    async with http.delete(server.url + location) as resp:
        assert resp.status == 200
    left = await reader.wait_for(lambda m: m["type"] == "participant" and m["event"] == "left")
    assert left["participant"]["name"] == "Stage"
    for method in (http.delete, http.patch):
        async with method(server.url + location, data=_fragment(offer),
                          headers=FRAGMENT) as resp:
            assert resp.status == 404
    async with http.delete(server.url + player_location) as resp:
        assert resp.status == 200
    await player.close()
    await reader.close()


async def test_bad_whip_and_whep_requests_get_the_rfc_errors(
        server: Server, http: aiohttp.ClientSession, jfk48: np.ndarray,
        speaker: RTCPeerConnection) -> None:
    url = f"{server.url}/whip/{ROOM}"
    speaker.addTransceiver(PcmTrack(jfk48), direction="sendonly")
    offer = await _offer(speaker)
    sessions = len(server.registry)

    async def status(method: str, target: str, *, body: str, headers: dict[str, str]) -> int:
        async with http.request(method, target, data=body, headers=headers) as resp:
            if resp.status >= 400:
                assert (await resp.json())["error"]["code"]  # a clear error, always
            return resp.status

    assert await status("POST", url, body=offer, headers={"Content-Type": "text/plain"}) == 415
    assert await status("POST", url, body=offer,
                        headers={"Content-Type": "application/json"}) == 415
    assert await status("POST", url, body="hello", headers=SDP) == 400
    broken = re.sub(r"m=audio \d+", "m=audio nine", offer)
    assert await status("POST", url, body=broken, headers=SDP) == 400
    assert await status("POST", url + "?lang=xx", body=offer, headers=SDP) == 400
    assert await status("POST", url + "?lang=not a language", body=offer, headers=SDP) == 400
    assert await status("POST", f"{server.url}/whip/bad%20room", body=offer, headers=SDP) == 400
    assert await status("POST", f"{server.url}/whep/{ROOM}?lang=pt",
                        body=offer.replace("m=audio", "m=video"), headers=SDP) == 400
    assert len(server.registry) == sessions  # refused offers leave no session behind

    async with http.post(url, data=offer, headers=SDP) as resp:
        assert resp.status == 201
        location, etag = resp.headers["Location"], resp.headers["ETag"]
    resource = server.url + location
    fragment = _fragment(offer)
    assert await status("PATCH", resource, body=fragment, headers=SDP) == 415
    assert await status("PATCH", resource, body=fragment, headers={**FRAGMENT,
                                                                   "If-Match": '"stale"'}) == 412
    # ICE restarts are not supported: 422, as RFC 9725 says when only trickle is.
    assert await status("PATCH", resource, body=fragment, headers={**FRAGMENT,
                                                                   "If-Match": "*"}) == 422
    assert await status("PATCH", resource, body=_fragment(offer, "newufrag"),
                        headers=FRAGMENT) == 422
    assert await status("PATCH", resource, body="garbage line", headers=FRAGMENT) == 400
    assert await status("PATCH", resource, body=fragment, headers={**FRAGMENT,
                                                                   "If-Match": etag}) == 204
    session_id = location.rsplit("/", 1)[1]
    for wrong in (f"/whip/other/{session_id}", f"/whep/{ROOM}/{session_id}",
                  f"/whip/{ROOM}/no-such-session"):
        assert await status("DELETE", server.url + wrong, body="", headers={}) == 404
    assert await status("PUT", resource, body="", headers={}) == 405
    assert await status("DELETE", resource, body="", headers={}) == 200
    assert len(server.registry) == sessions


async def test_whip_needs_a_speakers_token_for_the_room(
        settings: Settings, engines: Engines, http: aiohttp.ClientSession,
        jfk48: np.ndarray, speaker: RTCPeerConnection) -> None:
    secret = b"whip-test-secret-0f3a9c2e7b1d4865a0c3"
    server, runner = await start_server(settings.replace(auth_secret=secret.decode()), engines,
                                        dev=False)
    try:
        speaker.addTransceiver(PcmTrack(jfk48), direction="sendonly")
        offer = await _offer(speaker)
        url = f"{server.url}/whip/{ROOM}"

        def bearer(token: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {token}"}

        def mint(room: str = ROOM, role: str = "speaker", *, ttl_s: int = 60,
                 key: bytes = secret) -> str:
            return tokens.mint(key, room, role=role, ttl_s=ttl_s)

        refused = [
            ({}, 401, "token_missing"),
            (bearer("not.a.token"), 401, "token_invalid"),
            ({"Authorization": "Basic " + mint()}, 401, "token_missing"),
            (bearer(mint(key=b"another secret")), 401, "token_invalid"),
            (bearer(mint(ttl_s=-1)), 401, "token_expired"),
            (bearer(mint("other-room")), 403, "token_wrong_room"),
            (bearer(mint(role="listener")), 403, "role_forbidden"),
        ]
        for headers, status, code in refused:
            async with http.post(url, data=offer, headers={**SDP, **headers}) as resp:
                assert (resp.status, (await resp.json())["error"]["code"]) == (status, code)
                if status == 401:
                    assert resp.headers["WWW-Authenticate"] == "Bearer"
        assert len(server.registry) == 0
        good = bearer(mint())
        async with http.post(url, data=offer, headers={**SDP, **good}) as resp:
            assert resp.status == 201
            location = resp.headers["Location"]
        async with http.delete(server.url + location) as resp:
            assert resp.status == 401  # the resource needs it too
        async with http.delete(server.url + location, headers=good) as resp:
            assert resp.status == 200
    finally:
        await runner.cleanup()


def test_ice_servers_go_in_link_headers() -> None:
    links = _link_headers([
        {"urls": ["stun:stun.example.net"]},
        {"urls": ["turn:turn.example.net?transport=udp", "turns:turn.example.net:5349"],
         "username": "1700000000:abc", "credential": "c3VwZXI="},
    ])
    assert links == [
        '<stun:stun.example.net>; rel="ice-server"',
        '<turn:turn.example.net?transport=udp>; rel="ice-server"; username="1700000000:abc"; '
        'credential="c3VwZXI="; credential-type="password"',
        '<turns:turn.example.net:5349>; rel="ice-server"; username="1700000000:abc"; '
        'credential="c3VwZXI="; credential-type="password"',
    ]
