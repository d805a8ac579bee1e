"""Participants over a WebSocket (`GET /ws/{room}`), with the `websockets` library as
the client: speech in as raw PCM or µ-law, captions and the spoken translation back
on the same socket; a WebSocket and a WebRTC participant in one room; bad input."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import numpy as np
import pytest
import websockets

from media_server.engines.loader import Engines
from media_server.settings import Settings
from media_server.socket_audio import SocketAudio, mulaw_decode, mulaw_encode
from media_server.socket_writer import SEND_STALL_S
from signaling import tokens
from signaling.sockets import MAX_FRAME_BYTES
from tests.conftest import JFK_TEXT, Server, start_server, wer
from tests.rtc_client import CaptionClient
from tests.socket_client import SocketClient, encoded, small_receive_buffer, socket_url


def test_mulaw_is_g711() -> None:
    # The table's ends and middle, as G.711 has them.
    assert mulaw_decode(bytes([0xFF, 0x7F, 0x00, 0x80])) == np.array(
        [0, 0, -32124, 32124], dtype="<i2").tobytes()
    assert mulaw_encode(np.array([0, 32767, -32768], dtype="<i2").tobytes()) == bytes(
        [0xFF, 0x80, 0x00])
    # A tone through it keeps telephone quality (G.711's ~38 dB SNR).
    tone = (np.sin(np.arange(8000) * 2 * np.pi * 440 / 8000) * 12000).astype("<i2")
    back = np.frombuffer(mulaw_decode(mulaw_encode(tone.tobytes())), dtype="<i2")
    noise = (back.astype(np.float64) - tone) ** 2
    assert 10 * np.log10(np.mean(tone.astype(np.float64) ** 2) / np.mean(noise)) > 35
    assert all(mulaw_decode(mulaw_encode(mulaw_decode(bytes([b])))) == mulaw_decode(bytes([b]))
               for b in range(256) if b != 0x7F)  # (0x7F is -0, decoded as 0 = 0xFF)


def _spoken_until_idle(client: SocketClient) -> bool:
    """Every final said, its translation spoken and played out."""
    speaker = [m["state"] for m in client.of_type("speaker_state")]
    playout = [m["state"] for m in client.of_type("playout_state")]
    return (bool(client.finals()) and bool(client.of_type("speech"))
            and speaker[-1:] == ["idle"] and playout[-1:] == ["idle"])


def _check_paced(client: SocketClient) -> None:
    """Clips arrive as they play: never more than a moment ahead of real time."""
    start, sent_s = client.clips[0][0], 0.0
    for arrived, payload in client.clips:
        assert arrived - start >= sent_s - 0.5, (arrived - start, sent_s)
        sent_s += client.audio.seconds(payload)


@pytest.mark.parametrize(("audio", "declared"), [
    (SocketAudio("pcm16", 16000), "query"), (SocketAudio("mulaw", 8000), "message")],
    ids=["pcm16-16k-query", "mulaw-8k-message"])
async def test_a_socket_speaker_gets_captions_and_spoken_translation(
        server: Server, jfk48: np.ndarray, audio: SocketAudio, declared: str) -> None:
    query = {"name": "Bridge", "source_lang": "en", "target_lang": "pt"}
    if declared == "query":
        query |= {"encoding": audio.encoding, "rate": str(audio.rate)}
    client = await SocketClient.open(socket_url(server.url, "phones", **query), audio)
    if declared == "message":
        await client.ws.send(json.dumps({"type": "audio_format", "encoding": audio.encoding,
                                         "rate": audio.rate}))
    try:
        await client.speak(encoded(jfk48, audio), silence_after_s=2.0)
        await client.until(lambda: _spoken_until_idle(client), 60, "spoken")
        text = " ".join(f["text"] for f in client.finals())
        assert wer(JFK_TEXT, text) <= 0.15, text
        assert all(f["translation"] for f in client.finals())
        pcm = client.pcm().astype(np.float64) / 32768
        played_s = len(pcm) / audio.rate
        spoken_s = sum(m["duration_ms"] for m in client.of_type("speech")
                       if m["complete"]) / 1000
        assert played_s >= 0.9 * spoken_s > 3.0, (played_s, spoken_s)
        assert float(np.sqrt(np.mean(pcm**2))) > 0.02  # audible, in the declared format
        frame_bytes = round(0.02 * audio.rate) * audio.sample_bytes
        assert {len(p) for _, p in client.clips} == {frame_bytes}  # 20 ms frames
        _check_paced(client)
    finally:
        await client.close()
    await _until_gone(server)


async def _until_gone(server: Server, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while len(server.registry):
        assert time.monotonic() < deadline, "a closed socket's session is still open"
        await asyncio.sleep(0.05)


async def test_a_socket_and_a_webrtc_participant_read_and_hear_each_other(
        server: Server, http: aiohttp.ClientSession, jfk48: np.ndarray,
        morning48: np.ndarray) -> None:
    audio = SocketAudio("pcm16", 16000)
    phone = await SocketClient.open(socket_url(
        server.url, "mixed", name="Phone", source_lang="en", target_lang="es"), audio)
    browser = CaptionClient(server.url, http)
    try:
        await browser.start(morning48, room="mixed", name="Browser", target_lang="pt")
        await phone.speak(encoded(jfk48, audio), silence_after_s=2.0)
        [me] = {m["participant"]["id"] for m in phone.of_type("participant")
                if m["participant"]["name"] == "Phone"}
        await browser.wait_for(lambda m: m["type"] == "speech" and m["speaker_id"] == me, 60)
        await phone.until(lambda: any(m["speaker_id"] != me for m in phone.of_type("speech")),
                          60, "the browser's words spoken to the phone")
        heard = [f for f in browser.finals() if f["speaker_id"] == me]
        assert wer(JFK_TEXT, " ".join(f["text"] for f in heard)) <= 0.15
        assert all(f["lang"] == "pt" or f.get("translation") for f in heard)
        others = [f for f in phone.finals() if f["speaker_id"] != me]
        assert others and all(f["translation"] for f in others)
        assert max(rms for _, rms in browser.return_audio) > 0.02
        assert float(np.abs(phone.pcm()).max()) / 32768 > 0.05
    finally:
        await phone.close()
        await browser.close()


SECRET = "socket-test-secret-5d1e8c2a9f3b7064c1e2"


async def test_bad_input_gets_a_clear_answer_and_the_server_goes_on(
        settings: Settings, engines: Engines, http: aiohttp.ClientSession) -> None:
    server, runner = await start_server(settings.replace(auth_secret=SECRET), engines,
                                        dev=False)
    speaker = tokens.mint(SECRET.encode(), "calls", role="speaker", ttl_s=60)
    listener = tokens.mint(SECRET.encode(), "calls", role="listener", ttl_s=60)
    bearer = {"Authorization": f"Bearer {speaker}"}
    try:
        refused = [
            ("calls", {}, {}, 401),
            ("other", {}, bearer, 403),
            ("calls", {}, {"Authorization": f"Bearer {listener}"}, 403),
            ("calls", {"encoding": "opus"}, bearer, 400),
            ("calls", {"rate": "44100"}, bearer, 400),
            ("calls", {"speak": "maybe"}, bearer, 400),
            ("calls", {"source_lang": "xx"}, bearer, 400),
        ]
        for room, query, headers, status in refused:
            with pytest.raises(websockets.InvalidStatus) as refusal:
                await websockets.connect(socket_url(server.url, room, **query),
                                         additional_headers=headers)
            assert refusal.value.response.status_code == status, (room, query)
        async with http.get(f"{server.url}/ws/calls", headers=bearer) as plain:
            assert plain.status == 400
            assert (await plain.json())["error"]["code"] == "not_websocket"

        # A browser's way: the token as a subprotocol.
        audio = SocketAudio()
        client = await SocketClient.open(
            socket_url(server.url, "calls"), audio,
            subprotocols=["live-interpreter", f"bearer.{speaker}"])
        assert client.ws.subprotocol == "live-interpreter"
        await client.ws.send("not json")
        await client.ws.send(b"\x00\x01\x02")  # half a sample
        await client.ws.send('{"type": "audio_format", "encoding": "mulaw"}')  # too late
        await client.ws.send('{"type": "ping"}')
        await client.until(lambda: client.of_type("pong"), 10, "pong")
        codes = [m["code"] for m in client.of_type("error")]
        assert codes[:3] == ["bad_message", "bad_audio", "audio_format_late"], codes
        for _ in range(10):  # 10 s at once: past real time and its allowance
            await client.ws.send(bytes(16000 * 2))
        await client.until(lambda: any(m["code"] == "too_fast"
                                       for m in client.of_type("error")), 10, "too_fast")
        # A frame past the size limit ends the socket (RFC 6455's 1009), and only it.
        await client.ws.send(bytes(MAX_FRAME_BYTES + 2))
        await client.until(lambda: client.ws.close_code is not None, 10, "closed")
        assert client.ws.close_code == 1009
        await _until_gone(server)

        listening = await SocketClient.open(
            socket_url(server.url, "calls", speak="false"), audio,
            additional_headers={"Authorization": f"Bearer {listener}"})
        await listening.ws.send('{"type": "audio_format", "rate": 44100}')
        await listening.ws.send(bytes(3200))
        await listening.until(lambda: len(listening.of_type("error")) >= 2, 10, "refusals")
        assert [m["code"] for m in listening.of_type("error")] == ["bad_rate", "not_a_speaker"]
        await listening.close()
    finally:
        await runner.cleanup()


async def test_a_client_that_never_reads_is_closed_and_others_go_on(
        server: Server, jfk48: np.ndarray, caplog: pytest.LogCaptureFixture) -> None:
    audio = SocketAudio("pcm16", 48000)
    host, port = server.url.removeprefix("http://").split(":")
    # Alone in its room, it hears its own words translated, and reads none of it.
    deaf = await SocketClient.open(
        socket_url(server.url, "deaf", source_lang="en", target_lang="pt", rate="48000"),
        audio, read=False, sock=small_receive_buffer(host, int(port)), max_queue=1)
    payload = encoded(jfk48, audio)
    started = time.monotonic()
    speaking = asyncio.create_task(deaf.speak(payload, silence_after_s=30.0))
    try:
        deadline = started + 60
        while len(server.registry):
            assert time.monotonic() < deadline, "a client that never reads is still served"
            await asyncio.sleep(0.1)
        assert time.monotonic() - started >= SEND_STALL_S
        assert any("not reading" in r.getMessage() for r in caplog.records)
    finally:
        speaking.cancel()
        await asyncio.gather(speaking, return_exceptions=True)
        await deaf.close()
    other = await SocketClient.open(socket_url(server.url, "deaf"), SocketAudio())
    await other.ws.send('{"type": "ping"}')
    await other.until(lambda: other.of_type("pong"), 10, "pong")
    await other.close()
