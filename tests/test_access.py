"""Access control with tokens on (as `serve` runs, unless `--dev`): every session call
needs a room token for its room, speaking needs the speaker role, transcripts and
rosters need a token of their room; origins are checked with correct CORS headers;
each client address is rate-limited; session ids are unguessable; TURN credentials
are minted per session in coturn's REST API scheme."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from media_server.engines.loader import Engines
from media_server.settings import Settings
from signaling import tokens
from tests.conftest import Server, start_server
from tests.rtc_client import CaptionClient
from tests.scripted_speech import scripted_engines
from tests.test_durability import bursts

SECRET = b"access-test-secret-5e8d1b7c2a9f4036e1b2"
CLI = str(Path(sys.executable).parent / "live-interpreter")


def bearer(room: str, role: str = "speaker", ttl_s: int = 60, **claims: Any) -> dict[str, str]:
    token = tokens.mint(SECRET, room, role=role, ttl_s=ttl_s, **claims)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def locked(settings: Settings, engines: Engines) -> AsyncIterator[Server]:
    """A server with tokens on, scripted recognition (fast finals) and TURN configured."""
    scripted = scripted_engines(engines, ["Only with a token"], min_silence_ms=250)
    configured = settings.replace(auth_secret=SECRET.decode(), turn_host="turn.example.net",
                                  turn_secret="turn-secret", turn_credential_ttl_s=600,
                                  allowed_origins=("https://meet.example.com",))
    server, runner = await start_server(configured, scripted, dev=False)
    yield server
    await runner.cleanup()
    await scripted.close()


async def _error(response: aiohttp.ClientResponse) -> tuple[int, str]:
    return response.status, (await response.json())["error"]["code"]


async def test_creating_a_session_needs_a_token_for_the_room_and_role(
        locked: Server, http: aiohttp.ClientSession) -> None:
    url = f"{locked.url}/api/sessions"
    body = {"room": "board", "name": "Ana", "source_lang": "en"}
    cases = [
        ({}, body, (401, "token_missing")),
        ({"Authorization": "Bearer x.y.z"}, body, (401, "token_invalid")),
        (bearer("board", ttl_s=-5), body, (401, "token_expired")),
        (bearer("other-room"), body, (403, "token_wrong_room")),
        (bearer("board", "listener"), body, (403, "role_forbidden")),  # a listener speaking
    ]
    for headers, sent, expected in cases:
        async with http.post(url, json=sent, headers=headers) as resp:
            assert await _error(resp) == expected
            if resp.status == 401:
                assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert len(locked.registry) == 0  # nothing was created
    async with http.post(url, json={**body, "speak": False},
                         headers=bearer("board", "listener")) as resp:
        assert resp.status == 201  # a listener listening
    async with http.post(url, json=body, headers=bearer("board")) as resp:
        assert resp.status == 201


async def test_every_session_call_checks_the_token(
        locked: Server, jfk48: np.ndarray) -> None:
    """A real aiortc peer, every call with the room's token; the same calls without it,
    or with another room's, are refused; transcripts and rosters likewise."""
    async with aiohttp.ClientSession(headers=bearer("board")) as authorised, \
            aiohttp.ClientSession() as anonymous:
        client = CaptionClient(locked.url, authorised)
        await client.start(bursts(jfk48, 3), room="board", target_lang="pt")
        await client.wait_for(lambda m: m["type"] == "caption" and m["status"] == "final")
        session = f"{locked.url}/api/sessions/{client.session_id}"
        calls: list[tuple[str, str, dict[str, object] | None]] = [
                 ("GET", session, None),
                 ("POST", session + "/offer", {"sdp": "v=0", "type": "offer"}),
                 ("PATCH", session + "/ice", {"candidates": []}), ("DELETE", session, None),
                 ("GET", f"{locked.url}/api/rooms/board", None),
                 ("GET", f"{locked.url}/api/rooms/board/transcript", None),
                 ("POST", f"{locked.url}/api/sessions", {"resume": client.session_id})]
        for method, url, body in calls:
            async with anonymous.request(method, url, json=body) as resp:
                assert await _error(resp) == (401, "token_missing"), (method, url)
            async with anonymous.request(method, url, json=body,
                                         headers=bearer("other-room")) as resp:
                assert await _error(resp) == (403, "token_wrong_room"), (method, url)
        # A token of the room, but not of the session's owner (another token without a
        # subject, or another subject): the session is not theirs to see, end or resume.
        for stranger in (bearer("board"), bearer("board", subject="mallory")):
            for method, url, body in calls[:4] + calls[-1:]:
                async with anonymous.request(method, url, json=body, headers=stranger) as resp:
                    assert await _error(resp) == (403, "session_forbidden"), (method, url)
        async with authorised.get(session) as resp:
            assert resp.status == 200 and (await resp.json())["connection_state"] == "connected"
        transcript = f"{locked.url}/api/rooms/board/transcript"
        async with authorised.get(transcript) as resp:  # being in the room is not enough
            assert await _error(resp) == (403, "transcript_forbidden")
        async with authorised.get(transcript, headers=bearer("board", transcript=True)) as resp:
            assert resp.status == 200
        async with authorised.get(f"{locked.url}/api/rooms/board",
                                  headers=bearer("board", "listener")) as resp:
            assert resp.status == 200  # a listener may see who is there
        await client.close()


async def test_origins_are_checked_and_cors_headers_are_right(
        locked: Server, http: aiohttp.ClientSession) -> None:
    url = f"{locked.url}/api/sessions"
    evil = {"Origin": "https://evil.example.org"}
    async with http.post(url, json={"room": "board"}, headers={**evil, **bearer("board")}
                         ) as resp:
        assert await _error(resp) == (403, "origin_forbidden")
        assert "Access-Control-Allow-Origin" not in resp.headers
    async with http.options(url, headers={**evil, "Access-Control-Request-Method": "POST"}
                            ) as resp:
        assert resp.status == 403
    meet = {"Origin": "https://meet.example.com"}
    async with http.options(url, headers={**meet, "Access-Control-Request-Method": "POST",
                                          "Access-Control-Request-Headers": "authorization"}
                            ) as resp:
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == "https://meet.example.com"
        assert "POST" in resp.headers["Access-Control-Allow-Methods"]
        assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]
        assert resp.headers["Vary"] == "Origin"
    async with http.post(url, json={"room": "board", "speak": False},
                         headers={**meet, **bearer("board", "listener")}) as resp:
        assert resp.status == 201
        assert resp.headers["Access-Control-Allow-Origin"] == "https://meet.example.com"
        assert "Location" in resp.headers["Access-Control-Expose-Headers"]
    own = {"Origin": locked.url}  # the demo page served by the server itself
    async with http.get(f"{locked.url}/api/languages", headers=own) as resp:
        assert resp.status == 200
    async with http.get(f"{locked.url}/healthz", headers=evil) as resp:
        assert resp.status == 200  # not the API: no origin check


async def test_each_client_address_is_rate_limited(
        settings: Settings, engines: Engines) -> None:
    server, runner = await start_server(settings.replace(rate_limit_per_s=2.0,
                                                         rate_limit_burst=5), engines)
    other = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))  # a second client address
    try:
        async with aiohttp.ClientSession() as first, \
                aiohttp.ClientSession(connector=other) as second:
            statuses = []
            for _ in range(8):
                async with first.get(f"{server.url}/api/languages") as resp:
                    statuses.append(resp.status)
                    if resp.status == 429:
                        assert (await resp.json())["error"]["code"] == "rate_limited"
                        assert int(resp.headers["Retry-After"]) >= 1
            assert statuses[:5] == [200] * 5 and statuses[5:] == [429] * 3
            async with second.get(f"{server.url}/api/languages") as resp:
                assert resp.status == 200  # another address has its own bucket
            async with first.get(f"{server.url}/healthz") as resp:
                assert resp.status == 200  # health checks are not limited
            await asyncio.sleep(1.0)  # 2 a second come back
            async with first.get(f"{server.url}/api/languages") as resp:
                assert resp.status == 200
    finally:
        await runner.cleanup()


async def test_session_ids_are_unguessable_and_turn_credentials_are_minted(
        locked: Server, http: aiohttp.ClientSession) -> None:
    ids, answers = set(), []
    for n in range(20):
        async with http.post(f"{locked.url}/api/sessions", json={"room": f"ids{n}",
                             "speak": False},
                             headers=bearer(f"ids{n}", "listener", ttl_s=3600)) as resp:
            answer = await resp.json()
        ids.add(answer["session_id"])
        answers.append(answer)
    assert len(ids) == 20
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{24}", i) for i in ids)  # 144 random bits
    servers = answers[0]["ice_servers"]
    turn = next(s for s in servers if "username" in s)
    assert turn["urls"] == ["turn:turn.example.net:3478?transport=udp",
                            "turn:turn.example.net:3478?transport=tcp",
                            "turns:turn.example.net:5349?transport=tcp"]
    assert {"urls": ["stun:turn.example.net:3478"]} in servers
    # Good while the session connects (OFFER_TIMEOUT_S 30 + a 60 s margin), not the
    # configured 600 s: coturn checks them only as a client allocates.
    expiry, user = turn["username"].split(":")
    assert abs(int(expiry) - (time.time() + 90)) < 5
    assert user == answers[0]["participant_id"]
    async with http.post(f"{locked.url}/api/sessions", json={"room": "brief", "speak": False},
                         headers=bearer("brief", "listener", ttl_s=20)) as resp:
        servers = (await resp.json())["ice_servers"]
    expiry = next(s for s in servers if "username" in s)["username"].split(":")[0]
    assert abs(int(expiry) - (time.time() + 20)) < 5  # never past the token
    expected = base64.b64encode(hmac.new(b"turn-secret", turn["username"].encode(),
                                         hashlib.sha1).digest()).decode()
    assert turn["credential"] == expected


async def test_the_token_command_mints_what_the_server_accepts(
        settings: Settings, engines: Engines, tmp_path: Path,
        http: aiohttp.ClientSession) -> None:
    data = tmp_path / "data"  # no AUTH_SECRET: the server and the CLI share the file
    server, runner = await start_server(settings.replace(data_dir=str(data)), engines,
                                        dev=False)
    try:
        env = {**os.environ, "LIVE_INTERPRETER_DATA_DIR": str(data)}
        made = await asyncio.create_subprocess_exec(
            CLI, "token", "standup", "--role", "listener", "--ttl", "60", env=env,
            stdout=subprocess.PIPE)
        output, _ = await made.communicate()
        assert made.returncode == 0
        token = output.decode().strip()
        assert oct((data / "auth-secret").stat().st_mode & 0o777) == "0o600"
        async with http.post(f"{server.url}/api/sessions", json={"room": "standup",
                             "speak": False}, headers={"Authorization": f"Bearer {token}"}
                             ) as resp:
            assert resp.status == 201
    finally:
        await runner.cleanup()


def test_dev_mode_serves_on_loopback_only() -> None:
    result = subprocess.run([CLI, "serve", "--dev", "--host", "0.0.0.0"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "loopback only" in result.stderr
