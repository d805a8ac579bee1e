"""The HTTP API and data channel with a real aiortc peer: captions end to end, bad input."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web

from media_server.engines.loader import Engines, load_engines
from media_server.settings import Settings
from signaling.app import create_app
from tests.conftest import JFK_SECONDS, JFK_TEXT, Server, start_server, wer
from tests.rtc_client import CaptionClient

LEAD_S = 0.3


def _last_final(message: dict[str, Any]) -> bool:
    return (message["type"] == "caption" and message["status"] == "final"
            and "country" in message["text"].lower() and message["end_ms"] > 9000)


async def test_health_endpoints(server: Server, http: aiohttp.ClientSession) -> None:
    for path in ("/healthz", "/readyz"):
        async with http.get(server.url + path) as resp:
            assert resp.status == 200
    async with http.get(server.url + "/") as resp:
        assert resp.status == 200 and "live-interpreter" in await resp.text()
    async with http.get(server.url + "/sdk/interpreter.js") as resp:
        assert resp.status == 200 and "export async function connect" in await resp.text()
    for page, expected in (("/sdk/", "live-interpreter SDK"), ("/viewer.html", "viewer.js")):
        async with http.get(server.url + page) as resp:
            assert resp.status == 200 and expected in await resp.text()


async def test_readyz_waits_for_the_engines(settings: Settings,
                                            http: aiohttp.ClientSession) -> None:
    release = asyncio.Event()

    async def slow_loader(s: Settings) -> Engines:
        await release.wait()
        return await load_engines(s)

    runner = web.AppRunner(create_app(settings, load_engines=slow_loader, dev=True))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with http.get(url + "/readyz") as resp:
            assert resp.status == 503
        async with http.get(url + "/healthz") as resp:
            assert resp.status == 200
        async with http.post(url + "/api/sessions", json={}) as resp:
            assert resp.status == 503
            assert _error(await resp.json()) == "not_ready"
        release.set()
        for _ in range(300):
            async with http.get(url + "/readyz") as resp:
                if resp.status == 200:
                    break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("/readyz never became ready")
    finally:
        await runner.cleanup()


async def test_captions_arrive_over_the_data_channel(client: CaptionClient,
                                                     jfk48: np.ndarray) -> None:
    await client.start(jfk48, lead_silence_s=LEAD_S)
    await client.wait_for(_last_final, within=JFK_SECONDS + 10)
    captions = client.captions()
    finals = client.captions("final")
    assert wer(JFK_TEXT, " ".join(f["text"] for f in finals)) <= 0.15, finals
    # An interim arrives before the first final.
    assert captions.index(next(c for c in captions if c["status"] == "interim")) < \
        captions.index(finals[0])
    by_utterance: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in captions:
        by_utterance[c["utterance_id"]].append(c)
    for messages in by_utterance.values():
        revisions = [m["revision"] for m in messages]
        assert revisions == sorted(set(revisions)), revisions  # strictly increasing
        assert [m["status"] for m in messages].count("final") == 1
        assert messages[-1]["status"] == "final"
    span_ms = (LEAD_S + JFK_SECONDS) * 1000
    for c in captions:
        assert 0 <= c["start_ms"] < c["end_ms"] <= span_ms + 100, c
        assert c["speaker"] == "Tester" and c["lang"] == "en"
    states = [m["state"] for m in client.of_type("state")]
    assert "listening" in states and "idle" in states


def _error(data: dict[str, Any]) -> str:
    assert set(data) == {"error"} and set(data["error"]) == {"code", "message"}
    assert data["error"]["message"]
    return str(data["error"]["code"])


@pytest.mark.parametrize("body,status,code", [
    (b"{not json", 400, "bad_json"),
    (b"[1,2,3]", 400, "bad_json"),
    (b'{"room": 5}', 400, "bad_field"),
    (b'{"speak": "yes"}', 400, "bad_field"),
    (b'{"room": "../etc"}', 400, "bad_room"),
    (b'{"name": ""}', 400, "bad_name"),
    (b'{"source_lang": "klingon"}', 400, "bad_language"),
    (b'{"source_lang": "tlh"}', 400, "unsupported_language"),
    (b'{"source_lang": "en", "target_lang": "vi"}', 400, "unsupported_language_pair"),
    (b'{"source_lang": "pt", "target_lang": "es"}', 400, "unsupported_language_pair"),
    (b'{"monitor": "on"}', 400, "bad_field"),
    (b"x" * 70_000, 413, "body_too_large"),
])
async def test_bad_session_requests(server: Server, http: aiohttp.ClientSession, body: bytes,
                                    status: int, code: str) -> None:
    async with http.post(server.url + "/api/sessions", data=body,
                         headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == status
        assert _error(await resp.json()) == code


async def test_unknown_ids_and_routes(server: Server, http: aiohttp.ClientSession) -> None:
    unknown = server.url + "/api/sessions/nope"
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", unknown, {}),
        ("POST", unknown + "/offer", {"json": {"sdp": "v=0", "type": "offer"}}),
        ("PATCH", unknown + "/ice", {"json": {"candidates": []}}),
        ("DELETE", unknown, {}),
        ("GET", server.url + "/api/nothing-here", {}),
    ]
    for method, url, kwargs in requests:
        async with http.request(method, url, **kwargs) as resp:
            assert resp.status == 404, (method, url)
            assert _error(await resp.json()) in ("unknown_session", "not_found")
    async with http.put(server.url + "/api/sessions") as resp:
        assert resp.status == 405
        assert _error(await resp.json()) == "method_not_allowed"


async def test_bad_offers_then_a_good_one(server: Server, http: aiohttp.ClientSession,
                                          jfk48: np.ndarray) -> None:
    client = CaptionClient(server.url, http)
    resp = await client.create()
    session = (await resp.json())["session_id"]
    offer_url = f"{server.url}/api/sessions/{session}/offer"
    ice_url = f"{server.url}/api/sessions/{session}/ice"
    async with http.patch(ice_url, json={"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host"}
                          ) as resp:
        assert resp.status == 409 and _error(await resp.json()) == "no_offer"
    for body, code in [
        ({"sdp": "this is not sdp", "type": "offer"}, "bad_sdp"),
        ({"sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", "type": "offer"}, "bad_sdp"),
        ({"sdp": "v=0\r\n", "type": "answer"}, "bad_sdp"),
        ({"sdp": 42, "type": "offer"}, "bad_field"),
        ({"type": "offer"}, "bad_field"),
        ({"sdp": "v=0\r\nm=application 9 DTLS/SCTP 5000\r\n", "type": "offer"}, "no_audio"),
    ]:
        async with http.post(offer_url, json=body) as resp:
            assert resp.status == 400, body
            assert _error(await resp.json()) == code
    # The same session still takes a well-formed offer afterwards...
    await client.connect(session, jfk48)
    assert client.pc is not None
    # ...and only one.
    async with http.post(offer_url, json={"sdp": client.pc.localDescription.sdp,
                                          "type": "offer"}) as resp:
        assert resp.status == 409 and _error(await resp.json()) == "offer_exists"
    async with http.patch(ice_url, json={"candidates": [{"candidate": "garbage"}]}) as resp:
        assert resp.status == 400 and _error(await resp.json()) == "bad_candidate"
    async with http.patch(ice_url, json={"candidates": "nope"}) as resp:
        assert resp.status == 400 and _error(await resp.json()) == "bad_candidate"
    await client.wait_for(lambda m: m["type"] == "caption" and m["status"] == "final")
    await client.close()


async def test_data_channel_garbage_gets_errors_and_the_session_goes_on(
        client: CaptionClient, jfk48: np.ndarray) -> None:
    await client.start(jfk48)
    client.send("not json at all")
    client.channel.send(b"\x00\x01binary")
    client.send({"type": "ping", "padding": "x" * 10_000})
    client.send({"type": "hack_the_planet"})
    client.send({"type": "set_language", "target": "vi"})  # nobody serves en->vi
    client.send({"type": "set_language", "target": 7})
    client.send({"type": "ping"})
    # The server answers in order: once the last bad message's error is here, all are.
    await client.wait_for(lambda m: m["type"] == "error" and "'target'" in m["message"])
    await client.wait_for(lambda m: m["type"] == "pong")
    codes = [m["code"] for m in client.of_type("error")]
    assert codes.count("bad_message") == 3
    assert {"message_too_large", "unknown_type", "unsupported_language_pair"} <= set(codes)
    # A second data channel with another label is refused without harm.
    assert client.pc is not None
    extra = client.pc.createDataChannel("something-else")
    await client.wait_for(_last_final, within=JFK_SECONDS + 10)
    assert extra.readyState in ("closing", "closed")


async def test_session_and_speaker_limits(settings: Settings, engines: Engines,
                                          http: aiohttp.ClientSession,
                                          jfk48: np.ndarray) -> None:
    srv, runner = await start_server(settings.replace(max_speakers=1, max_sessions=3), engines)
    try:
        url = srv.url + "/api/sessions"
        first = CaptionClient(srv.url, http)
        await first.start(jfk48, room="r")  # its offer took the one speaker slot
        async with http.post(url, json={"room": "r"}) as resp:
            assert resp.status == 503 and _error(await resp.json()) == "stt_capacity"
        async with http.post(url, json={"room": "r", "speak": False}) as resp:
            assert resp.status == 201  # listeners cost no recognition
        await first.close()
        async with http.post(url, json={"room": "r"}) as resp:
            assert resp.status == 201  # the slot came back
        async with http.post(url, json={"room": "r", "speak": False}) as resp:
            assert resp.status == 201
        async with http.post(url, json={"room": "r", "speak": False}) as resp:
            assert resp.status == 503 and _error(await resp.json()) == "too_many_sessions"
    finally:
        await runner.cleanup()
